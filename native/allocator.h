// Carves 64-byte-aligned blocks out of one segment's offset space. Pure bookkeeping: it never
// touches memory. Best fit over a size-ordered set, coalescing with both neighbours on free;
// allocate and free are O(log n) in the number of free ranges.
#pragma once
#include <napi.h>

#include <cstddef>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

namespace trellis {

constexpr size_t kBlobAlignment = 64;

class FreeList {
 public:
  explicit FreeList(size_t capacity);
  // Returns the offset, or SIZE_MAX when no free range is large enough.
  size_t Allocate(size_t size);
  // Returns the bytes released, or 0 when offset is not an allocated block.
  size_t Free(size_t offset);
  // Cuts the allocated block at `offset` in two allocated blocks: its first AlignUp(length) bytes,
  // and the rest (at the returned offset), each freed on its own later. Nothing is freed or
  // taken. Returns SIZE_MAX when offset is no block or the front would be the whole block.
  size_t SplitFront(size_t offset, size_t length);
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  size_t LargestFree() const;

 private:
  void InsertFree(size_t offset, size_t length);
  void EraseFree(std::map<size_t, size_t>::iterator it);

  size_t capacity_;
  size_t used_ = 0;
  std::map<size_t, size_t> freeByOffset_;             // offset -> length
  std::set<std::pair<size_t, size_t>> freeBySize_;    // (length, offset)
  std::unordered_map<size_t, size_t> allocated_;      // offset -> length
};

class Allocator : public Napi::ObjectWrap<Allocator> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Allocator(const Napi::CallbackInfo& info);  // new Allocator(capacity)

 private:
  Napi::Value Allocate(const Napi::CallbackInfo& info);  // -> offset, or -1 when full
  Napi::Value Free(const Napi::CallbackInfo& info);      // -> bytes released
  Napi::Value Split(const Napi::CallbackInfo& info);     // (offset, length) -> rest's offset, or -1
  Napi::Value Used(const Napi::CallbackInfo& info);
  Napi::Value Capacity(const Napi::CallbackInfo& info);
  Napi::Value LargestFree(const Napi::CallbackInfo& info);

  FreeList list_{0};
};

}  // namespace trellis
