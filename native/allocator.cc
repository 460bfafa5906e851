#include "allocator.h"

#include <cstdint>
#include <string>

#include "errors.h"

namespace trellis {

namespace {
size_t AlignUp(size_t n) { return (n + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment; }
}  // namespace

FreeList::FreeList(size_t capacity) : capacity_(capacity / kBlobAlignment * kBlobAlignment) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void FreeList::InsertFree(size_t offset, size_t length) {
  freeByOffset_.emplace(offset, length);
  freeBySize_.emplace(length, offset);
}

void FreeList::EraseFree(std::map<size_t, size_t>::iterator it) {
  freeBySize_.erase({it->second, it->first});
  freeByOffset_.erase(it);
}

size_t FreeList::Allocate(size_t size) {
  // A zero-byte blob still gets its own block, so that every blob has a distinct offset.
  const size_t length = AlignUp(size == 0 ? 1 : size);
  if (length < size) return SIZE_MAX;  // overflow
  auto fit = freeBySize_.lower_bound({length, 0});
  if (fit == freeBySize_.end()) return SIZE_MAX;
  const size_t offset = fit->second;
  const size_t available = fit->first;
  EraseFree(freeByOffset_.find(offset));
  if (available > length) InsertFree(offset + length, available - length);
  allocated_.emplace(offset, length);
  used_ += length;
  return offset;
}

size_t FreeList::Free(size_t offset) {
  auto block = allocated_.find(offset);
  if (block == allocated_.end()) return 0;
  size_t start = offset;
  const size_t released = block->second;
  size_t length = released;
  allocated_.erase(block);
  used_ -= released;

  auto next = freeByOffset_.lower_bound(start);
  if (next != freeByOffset_.end() && next->first == start + length) {
    length += next->second;
    EraseFree(next);
  }
  auto after = freeByOffset_.lower_bound(start);
  if (after != freeByOffset_.begin()) {
    auto previous = std::prev(after);
    if (previous->first + previous->second == start) {
      start = previous->first;
      length += previous->second;
      EraseFree(previous);
    }
  }
  InsertFree(start, length);
  return released;
}

size_t FreeList::SplitFront(size_t offset, size_t length) {
  auto block = allocated_.find(offset);
  if (block == allocated_.end()) return SIZE_MAX;
  const size_t front = AlignUp(length == 0 ? 1 : length);
  if (front < length || front >= block->second) return SIZE_MAX;
  const size_t rest = block->second - front;
  block->second = front;
  allocated_.emplace(offset + front, rest);
  return offset + front;
}

size_t FreeList::LargestFree() const { return freeBySize_.empty() ? 0 : freeBySize_.rbegin()->first; }

Napi::Function Allocator::Init(Napi::Env env) {
  return DefineClass(env, "Allocator",
                     {InstanceMethod<&Allocator::Allocate>("allocate"), InstanceMethod<&Allocator::Free>("free"),
                      InstanceMethod<&Allocator::Split>("split"),
                      InstanceAccessor<&Allocator::Used>("used"), InstanceAccessor<&Allocator::Capacity>("capacity"),
                      InstanceAccessor<&Allocator::LargestFree>("largestFree")});
}

Allocator::Allocator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Allocator>(info) {
  if (info.Length() < 1 || !info[0].IsNumber() || !(info[0].As<Napi::Number>().DoubleValue() > 0)) {
    MakeError(info.Env(), "InvalidArgument", "Allocator(capacity): expected a positive number")
        .ThrowAsJavaScriptException();
    return;
  }
  list_ = FreeList(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()));
}

Napi::Value Allocator::Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    MakeError(env, "InvalidArgument", "allocate(size): expected a non-negative number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t offset = list_.Allocate(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()));
  return Napi::Number::New(env, offset == SIZE_MAX ? -1.0 : static_cast<double>(offset));
}

Napi::Value Allocator::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    MakeError(env, "InvalidArgument", "free(offset): expected a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(list_.Free(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()))));
}

Napi::Value Allocator::Split(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 0) {
    MakeError(env, "InvalidArgument", "split(offset, length): expected two non-negative numbers")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t rest = list_.SplitFront(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()),
                                       static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()));
  return Napi::Number::New(env, rest == SIZE_MAX ? -1.0 : static_cast<double>(rest));
}

Napi::Value Allocator::Used(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(list_.used()));
}
Napi::Value Allocator::Capacity(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(list_.capacity()));
}
Napi::Value Allocator::LargestFree(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(list_.LargestFree()));
}

}  // namespace trellis
