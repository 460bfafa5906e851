// A shared-memory segment: an unnamed tmpfs file (O_TMPFILE in /dev/shm, or a memfd) whose
// pages are reserved up front with fallocate, so that running out of memory is an error at
// creation rather than a SIGBUS on first touch. Nothing is left behind in the file system.
// The daemon owns segments and hands their fds to clients; it never maps them.
#pragma once
#include <napi.h>

namespace trellis {

class Segment : public Napi::ObjectWrap<Segment> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Segment(const Napi::CallbackInfo& info);  // new Segment(size, name, dir?)
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
