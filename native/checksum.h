// Checksums of persisted blobs: XXH64 (xxHash's 64-bit hash), computed here rather than in JS
// for two reasons. Speed: it runs at 8 to 18 GB/s on one core of this machine kind, about as
// fast as memcpy, where node's sha256 runs at 1 to 1.7 GB/s and zlib.crc32 at 4 to 6 GB/s; a
// first get after a restart reads from the page cache at memcpy speed. Place: the bytes are
// views of shared memory that no worker thread can see, so JS could only hash them on the event
// loop; here `update` hashes on libuv's threadpool while the event loop (and the pool threads
// reading or writing the next chunks) carry on. src/daemon/durable/checksum.ts has the numbers.
//
// The digest is standard XXH64 with seed 0 over all the bytes in order, so `xxhsum -H1 FILE`
// prints the same 16 hex digits for a blob file.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace trellis {

// XXH64's streaming state, as in the reference implementation (xxhash.h, XXH64_state_t).
struct Xxh64State {
  uint64_t total = 0;
  uint64_t lanes[4] = {};
  uint8_t pending[32] = {};
  size_t pendingSize = 0;

  Xxh64State();
  void Update(const uint8_t* data, size_t length);
  uint64_t Digest() const;
};

class Checksum : public Napi::ObjectWrap<Checksum> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Checksum()
  explicit Checksum(const Napi::CallbackInfo& info);

 private:
  // update(view): Promise<void>. Hashes on the threadpool; the view must stay unchanged and
  // alive until the promise settles (the worker keeps a reference to it). One at a time.
  Napi::Value Update(const Napi::CallbackInfo& info);
  // updateSync(view): hashes on the calling thread; for small buffers.
  Napi::Value UpdateSync(const Napi::CallbackInfo& info);
  // digest(): 16 lowercase hex digits of the bytes so far.
  Napi::Value Digest(const Napi::CallbackInfo& info);

  bool CheckIdle(Napi::Env env);

  Xxh64State state_;
  bool busy_ = false;

  friend class ChecksumWorker;
};

}  // namespace trellis
