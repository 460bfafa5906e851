// A shared-memory segment: an unnamed tmpfs file (O_TMPFILE in /dev/shm, or a memfd) whose
// pages are reserved up front with fallocate, so that running out of memory is an error at
// creation rather than a SIGBUS on first touch. Nothing is left behind in the file system.
// The daemon owns segments and hands their fds to clients; it maps them only for sessions that
// copy bytes through the socket, and for a moment at reservation to ask for huge pages (below).
//
// Huge pages: a segment reserved with Segment.reserve gets 2 MiB pages (MADV_COLLAPSE, Linux
// 6.1+, which works even where /dev/shm and memfds get no huge pages by default:
// shmem_enabled=never). A process then maps 1 GiB with 512 page-table entries instead of
// 262,144; on a VM with shadow paging, where each first touch of a 4 KiB entry traps to the
// hypervisor, a new reader's first scan of 1 GiB gets ~20x faster (docs/troubleshooting.md).
// Allocating huge pages can cost seconds per GiB on such a VM, so only the worker thread of
// Segment.reserve asks for them; `new Segment` (on the event loop) keeps 4 KiB pages.
#pragma once
#include <napi.h>


namespace trellis {

class Segment : public Napi::ObjectWrap<Segment> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Segment(const Napi::CallbackInfo& info);  // new Segment(size, name, dir?)
  // Segment.reserve(size, name, dir?): a promise of a new Segment, whose file is created and its
  // pages reserved on a worker thread, so the daemon's event loop goes on serving meanwhile
  // (fallocate of 1 GiB takes ~0.1 to 0.7 s here). Rejects with the error the constructor throws.
  static Napi::Value Reserve(const Napi::CallbackInfo& info);
  ~Segment() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  // Gives the pages back now, even while clients still map the segment (they hold no blob in
  // it: the daemon releases only empty segments), then closes.
  void Release(const Napi::CallbackInfo& info);

  int fd_ = -1;
  size_t size_ = 0;
};

}  // namespace trellis
