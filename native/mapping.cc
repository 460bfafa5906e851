#include "mapping.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include <cerrno>
#include <string>

#include "errors.h"

#ifdef TRELLIS_HAVE_V8
#include <node_version.h>
#include <v8.h>
#endif

namespace trellis {

MappedRegion::~MappedRegion() {
  if (address != nullptr && address != MAP_FAILED) munmap(address, length);
}

#ifndef MADV_POPULATE_READ
// Linux 5.14 added these; older headers lack them, and older kernels answer EINVAL.
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

void* MapHugeAligned(int fd, size_t length, int prot, int flags) {
  if (length < kHugePageBytes) return mmap(nullptr, length, prot, flags, fd, 0);
  // Reserve room for the mapping plus one huge page of slack, place the file at the first
  // aligned address inside it (MAP_FIXED replaces the reservation there), give back the rest.
  const size_t reserved = length + kHugePageBytes;
  void* room = mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (room == MAP_FAILED) return MAP_FAILED;
  const uintptr_t start = reinterpret_cast<uintptr_t>(room);
  const uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* address = mmap(reinterpret_cast<void*>(aligned), length, prot, flags | MAP_FIXED, fd, 0);
  if (address == MAP_FAILED) {
    const int err = errno;
    munmap(room, reserved);
    errno = err;
    return MAP_FAILED;
  }
  if (aligned > start) munmap(room, aligned - start);
  // The mapping covers whole pages: a length that is no multiple of the page size (the read
  // index's segment) ends at the next page boundary, and munmap refuses an unaligned start.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t end = (aligned + length + page - 1) / page * page;
  if (start + reserved > end) munmap(reinterpret_cast<void*>(end), start + reserved - end);
  return address;
}

PopulateResult Populate(void* address, size_t length, bool writable) {
  if (length == 0) return PopulateResult::kPopulated;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(address);
  const uintptr_t first = start / page * page;
  const uintptr_t end = start + length;
  if (madvise(reinterpret_cast<void*>(first), end - first, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
    return PopulateResult::kPopulated;
  // EINVAL: a kernel without MADV_POPULATE_*. EFAULT: part of the range lies past the end of the
  // file; the kernel stops there rather than raise the SIGBUS a read would.
  return errno == EINVAL ? PopulateResult::kUnsupported : PopulateResult::kFailed;
}

Napi::Function Mapping::Init(Napi::Env env) {
  return DefineClass(env, "Mapping",
                     {InstanceAccessor<&Mapping::Buffer>("buffer"),
                      InstanceAccessor<&Mapping::SharedBuffer>("sharedBuffer"),
                      InstanceAccessor<&Mapping::HugePages>("hugePages"),
                      InstanceMethod<&Mapping::Slice>("slice"), InstanceMethod<&Mapping::Write>("write"),
                      InstanceMethod<&Mapping::PopulateRange>("populate")});
}

Mapping::Mapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Mapping>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean()) {
    MakeError(env, "InvalidArgument", "Mapping(fd, size, writable, populate?): bad arguments")
        .ThrowAsJavaScriptException();
    return;
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const double size = info[1].As<Napi::Number>().DoubleValue();
  writable_ = info[2].As<Napi::Boolean>().Value();
  const bool populate = info.Length() > 3 && info[3].ToBoolean().Value();
  if (!(size > 0)) {
    MakeError(env, "InvalidArgument", "cannot map an empty segment").ThrowAsJavaScriptException();
    return;
  }
  const int prot = writable_ ? (PROT_READ | PROT_WRITE) : PROT_READ;
  const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* address = MapHugeAligned(fd, static_cast<size_t>(size), prot, flags);
  if (address == MAP_FAILED) {
    MakeErrnoError(env, errno, "mmap of a " + std::to_string(static_cast<size_t>(size)) + "-byte segment")
        .ThrowAsJavaScriptException();
    return;
  }
  region_ = std::make_shared<MappedRegion>();
  region_->address = address;
  region_->length = static_cast<size_t>(size);
  struct stat file;
  hugePages_ = fstat(fd, &file) == 0 && static_cast<size_t>(file.st_blksize) >= kHugePageBytes;
}

Napi::Value Mapping::HugePages(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), hugePages_); }

Napi::ArrayBuffer Mapping::External(Napi::Env env, size_t offset, size_t length) {
  // Each ArrayBuffer holds the region alive through its own shared_ptr, released by V8's finalizer.
  // V8 counts its bytes as external memory, and more than 64 MiB of those since the last full
  // collection starts one. Taking the bytes off the count first does not help: V8 lowers its
  // limit with the count. So a large view costs one collection, of a heap that is small when
  // the client has loaded little (see src/index.ts).
  auto* keepAlive = new std::shared_ptr<MappedRegion>(region_);
  void* data = static_cast<char*>(region_->address) + offset;
  return Napi::ArrayBuffer::New(
      env, data, length, [](Napi::Env, void*, std::shared_ptr<MappedRegion>* hint) { delete hint; }, keepAlive);
}

Napi::Value Mapping::Buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (writable_) {
    MakeError(env, "PermissionDenied", "a writable mapping is only handed out in per-blob slices")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (whole_.IsEmpty()) whole_ = Napi::Persistent(External(env, 0, region_->length));
  return whole_.Value();
}

Napi::Value Mapping::SharedBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (writable_) {
    MakeError(env, "PermissionDenied", "a writable mapping is only handed out in per-blob slices")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!shared_.IsEmpty()) return shared_.Value();
#ifdef TRELLIS_HAVE_V8
  // The V8 calls below are ABI-bound to the Node major whose headers built the addon (N-API is
  // not); a prebuild run by another major answers undefined and the client uses buffer instead.
  const napi_node_version* running = nullptr;
  if (napi_get_node_version(env, &running) != napi_ok || running->major != NODE_MAJOR_VERSION) return env.Undefined();
  // V8 counts a SharedArrayBuffer's bytes as nobody's external memory (they may be shared by
  // many isolates), so creating one never starts a collection, whatever its size. Its backing
  // store holds the region alive and may be freed on any thread: munmap is thread-safe.
  auto* keepAlive = new std::shared_ptr<MappedRegion>(region_);
  std::shared_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      region_->address, region_->length,
      [](void*, size_t, void* hint) { delete static_cast<std::shared_ptr<MappedRegion>*>(hint); }, keepAlive);
  v8::Local<v8::SharedArrayBuffer> shared = v8::SharedArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store));
  // A napi_value is a v8::Local's slot, as Node's own js_native_api_v8.h converts it.
  napi_value value = reinterpret_cast<napi_value>(*shared);
  shared_ = Napi::Persistent(Napi::Object(env, value));
  return shared_.Value();
#else
  return env.Undefined();
#endif
}

Napi::Value Mapping::Slice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    MakeError(env, "InvalidArgument", "slice(offset, length): expected two numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double offset = info[0].As<Napi::Number>().DoubleValue();
  const double length = info[1].As<Napi::Number>().DoubleValue();
  if (!CheckRange(env, offset, length)) return env.Undefined();
  const bool prefault = info.Length() > 2 && info[2].ToBoolean().Value();
  if (prefault && writable_) {
    // Fault the pages in with one system call instead of one page fault per 4 KiB while the
    // writer fills the blob. Best effort: without it the writes fault the pages in themselves.
    Populate(static_cast<char*>(region_->address) + static_cast<size_t>(offset), static_cast<size_t>(length), true);
  }
  return External(env, static_cast<size_t>(offset), static_cast<size_t>(length));
}

Napi::Value Mapping::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!writable_) {
    MakeError(env, "PermissionDenied", "write(): this mapping is read-only").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsTypedArray()) {
    MakeError(env, "InvalidArgument", "write(offset, bytes, prefault?): expected a number and a TypedArray")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double offset = info[0].As<Napi::Number>().DoubleValue();
  Napi::TypedArray bytes = info[1].As<Napi::TypedArray>();
  const size_t length = bytes.ByteLength();
  if (!CheckRange(env, offset, static_cast<double>(length))) return env.Undefined();
  char* target = static_cast<char*>(region_->address) + static_cast<size_t>(offset);
  // As slice(): one system call maps the pages instead of one fault per 4 KiB as the copy goes.
  if (info.Length() > 2 && info[2].ToBoolean().Value()) Populate(target, length, true);
  if (length > 0)
    std::memcpy(target, static_cast<const char*>(bytes.ArrayBuffer().Data()) + bytes.ByteOffset(), length);
  return env.Undefined();
}

Napi::Value Mapping::PopulateRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    MakeError(env, "InvalidArgument", "populate(offset, length): expected two numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double offset = info[0].As<Napi::Number>().DoubleValue();
  const double length = info[1].As<Napi::Number>().DoubleValue();
  if (!CheckRange(env, offset, length)) return env.Undefined();
  switch (Populate(static_cast<char*>(region_->address) + static_cast<size_t>(offset), static_cast<size_t>(length),
                   writable_)) {
    case PopulateResult::kPopulated:
      return Napi::String::New(env, "populated");
    case PopulateResult::kUnsupported:
      return Napi::String::New(env, "unsupported");
    case PopulateResult::kFailed:
      break;
  }
  return Napi::String::New(env, "failed");
}

bool Mapping::CheckRange(Napi::Env env, double offset, double length) {
  if (offset >= 0 && length >= 0 && offset + length <= static_cast<double>(region_->length)) return true;
  MakeError(env, "InvalidArgument",
            "range [" + std::to_string(offset) + ", +" + std::to_string(length) + ") is outside a " +
                std::to_string(region_->length) + "-byte mapping")
      .ThrowAsJavaScriptException();
  return false;
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    MakeError(env, "InvalidArgument", "detach(arrayBuffer): expected an ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  info[0].As<Napi::ArrayBuffer>().Detach();
  return env.Undefined();
}

}  // namespace trellis
