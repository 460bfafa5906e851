#include "segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "errors.h"
#include "mapping.h"

#ifndef MADV_COLLAPSE
// Linux 6.1 added it; older headers lack it, and older kernels answer EINVAL.
#define MADV_COLLAPSE 25
#endif

namespace trellis {

namespace {

// Collapses this many bytes per system call, so that a released segment stops soon.
constexpr size_t kCollapseChunk = 32 * 1024 * 1024;

// One collapse at a time in the process: two would only compete for the same cores and memory.
std::mutex collapsing;

// Runs on its own thread: collapses the whole 2 MiB pages of the segment behind `fd` (a copy of
// the segment's, closed here) into huge pages, unless `stop` is set first.
void CollapseToHugePages(int fd, size_t size, std::shared_ptr<std::atomic<bool>> stop) {
  // The lowest priority (nice applies per thread on Linux): requests and clients come first.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
  std::lock_guard<std::mutex> one(collapsing);
  const size_t whole = size / kHugePageBytes * kHugePageBytes;
  void* address = stop->load() ? MAP_FAILED : MapHugeAligned(fd, whole, PROT_READ, MAP_SHARED);
  close(fd);
  if (address == MAP_FAILED) return;
  for (size_t offset = 0; offset < whole && !stop->load(); offset += kCollapseChunk) {
    const size_t length = std::min(kCollapseChunk, whole - offset);
    // EINVAL: no MADV_COLLAPSE here; ENOMEM: no huge pages to be had now. Either would repeat.
    // EAGAIN (a page busy for a moment) only skips the chunk.
    if (madvise(static_cast<char*>(address) + offset, length, MADV_COLLAPSE) != 0 && errno != EAGAIN) break;
  }
  munmap(address, whole);
}

}  // namespace

Napi::Function Segment::Init(Napi::Env env) {
  return DefineClass(env, "Segment",
                     {InstanceAccessor<&Segment::Fd>("fd"), InstanceAccessor<&Segment::Size>("size"),
                      InstanceMethod<&Segment::Close>("close"),
                      InstanceMethod<&Segment::Release>("release")});
}

Segment::Segment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Segment>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    MakeError(env, "InvalidArgument", "Segment(size, name): expected a number and a string")
        .ThrowAsJavaScriptException();
    return;
  }
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested > 0) || requested > static_cast<double>(SIZE_MAX)) {
    MakeError(env, "InvalidArgument", "Segment size must be positive, got " + std::to_string(requested))
        .ThrowAsJavaScriptException();
    return;
  }
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  const std::string dir = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  const size_t size = static_cast<size_t>(requested);

  // An unnamed file on a tmpfs (O_TMPFILE) counts against that file system's size, so asking
  // for more than it holds fails at once with ENOSPC. A memfd has no such bound: fallocate on
  // one keeps allocating until the OOM killer steps in. memfd is the fallback without a dir.
  int fd = dir.empty() ? memfd_create(name.c_str(), MFD_CLOEXEC) : open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    MakeErrnoError(env, errno, dir.empty() ? "memfd_create(" + name + ")" : "cannot create a segment in " + dir)
        .ThrowAsJavaScriptException();
    return;
  }
  // fallocate reserves the pages now; ftruncate alone would defer failure to a SIGBUS.
  int rc = fallocate(fd, 0, 0, static_cast<off_t>(size));
  if (rc != 0) {
    const int err = errno;
    close(fd);
    MakeErrnoError(env, err, "cannot reserve a " + std::to_string(size) + "-byte segment")
        .ThrowAsJavaScriptException();
    return;
  }
  fd_ = fd;
  size_ = size;
  if (size < kHugePageBytes) return;
  // Best effort: without a thread or a second fd the segment keeps its 4 KiB pages.
  const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  try {
    std::thread(CollapseToHugePages, copy, size, stop).detach();
    stopHugePages_ = stop;
  } catch (const std::system_error&) {
    close(copy);
  }
}

void Segment::StopHugePages() {
  if (stopHugePages_) stopHugePages_->store(true);
  stopHugePages_.reset();
}

Segment::~Segment() {
  StopHugePages();
  if (fd_ >= 0) close(fd_);
}

Napi::Value Segment::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value Segment::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(size_));
}

void Segment::Close(const Napi::CallbackInfo&) {
  // Clients that mapped the segment keep their pages; the memory goes when the last mapping does.
  StopHugePages();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace trellis

namespace trellis {

void Segment::Release(const Napi::CallbackInfo& info) {
  StopHugePages();
  if (fd_ >= 0 && fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size_)) != 0) {
    // Not fatal: the pages go anyway once every client has dropped its mapping.
  }
  Close(info);
}

}  // namespace trellis
