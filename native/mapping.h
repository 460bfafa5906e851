// A client's mapping of a segment fd. Each segment is mapped once per process and mapped at
// most twice: read-only for everything the process reads, and read-write only when the
// process writes its own unsealed blobs. JS sees external ArrayBuffers over the mapping; the
// memory is unmapped when the Mapping and every ArrayBuffer over it are gone, so a view that
// outlives a closed client stays valid.
#pragma once
#include <napi.h>

#include <memory>

namespace trellis {

struct MappedRegion {
  void* address = nullptr;
  size_t length = 0;
  ~MappedRegion();
};

// What populate() did: the kernel mapped the pages now, cannot on this kernel (before Linux 5.14),
// or refused for part of the range (pages past the end of the file, which a read would SIGBUS on).
enum class PopulateResult { kPopulated, kUnsupported, kFailed };

// The size of a huge page (a PMD entry on x86-64 and arm64 with 4 KiB pages).
constexpr size_t kHugePageBytes = 2 * 1024 * 1024;

// mmap(fd) of `length` bytes at an address aligned to kHugePageBytes, so that the kernel can map
// each 2 MiB huge page the file holds with one page-table entry (it cannot when the address and
// the file offset disagree modulo 2 MiB, and shmem aligns only on tmpfs mounted with huge=).
// Returns MAP_FAILED with errno set, as mmap does.
void* MapHugeAligned(int fd, size_t length, int prot, int flags);

// Maps the pages of [address, address + length) into this process's page tables in one system
// call (MADV_POPULATE_READ or _WRITE) instead of one fault per page on first use. Never faults.
PopulateResult Populate(void* address, size_t length, bool writable);

class Mapping : public Napi::ObjectWrap<Mapping> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Mapping(fd, size, writable, populate)
  explicit Mapping(const Napi::CallbackInfo& info);

 private:
  // The whole mapping as one ArrayBuffer (created once). Only handed out for read-only mappings.
  Napi::Value Buffer(const Napi::CallbackInfo& info);
  // sharedBuffer: the whole read-only mapping as one SharedArrayBuffer (created once), which V8
  // does not count as external memory, so mapping a large segment starts no garbage collection
  // (see src/client/mappings.ts). undefined when the addon was built without V8's headers or runs
  // under another Node major than it was built for: the caller then uses buffer.
  Napi::Value SharedBuffer(const Napi::CallbackInfo& info);
  // hugePages: whether the file lies on huge pages (its tmpfs reports a block size of at least
  // kHugePageBytes, as shmem does for huge= mounts), read by fstat when mapped: from JS,
  // fs.fstatSync cost a fresh process's first get of a segment ~0.05 ms.
  Napi::Value HugePages(const Napi::CallbackInfo& info);
  // slice(offset, length, prefault?): an ArrayBuffer over exactly these bytes, so that neither a view nor
  // its .buffer reaches a neighbour. Used for a writer's unsealed blob; detached at seal.
  Napi::Value Slice(const Napi::CallbackInfo& info);
  // write(offset, bytes, prefault?): copies a TypedArray's bytes into a writable mapping at
  // offset, with no ArrayBuffer over the target: V8 counts every external ArrayBuffer's bytes and
  // collects garbage each few dozen MiB of them, which a stream writer of 1 MiB chunks paid.
  Napi::Value Write(const Napi::CallbackInfo& info);
  // populate(offset, length): 'populated', 'unsupported' or 'failed' (see PopulateResult). Best
  // effort: whatever it answers, the bytes read the same; only the cost of first touch differs.
  Napi::Value PopulateRange(const Napi::CallbackInfo& info);
  // Checks that [offset, offset + length) lies in the mapping; throws InvalidArgument if not.
  bool CheckRange(Napi::Env env, double offset, double length);

  Napi::ArrayBuffer External(Napi::Env env, size_t offset, size_t length);

  std::shared_ptr<MappedRegion> region_;
  Napi::Reference<Napi::ArrayBuffer> whole_;
  Napi::Reference<Napi::Object> shared_;
  bool writable_ = false;
  bool hugePages_ = false;
};

// detach(arrayBuffer): makes every view over it zero-length, so a writer cannot touch a blob
// after sealing it.
Napi::Value Detach(const Napi::CallbackInfo& info);

}  // namespace trellis
