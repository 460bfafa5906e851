#include "segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "mapping.h"

#ifndef MADV_COLLAPSE
// Linux 6.1 added it; older headers lack it, and older kernels answer EINVAL.
#define MADV_COLLAPSE 25
#endif

namespace trellis {

namespace {

// Makes each whole 2 MiB of the empty, sized file one huge page. Best effort: the caller's
// fallocate then reserves every page still missing. MADV_COLLAPSE turns a 2 MiB range into a
// huge page only if the range holds a page, so each gets a 4 KiB seed first; the kernel then
// allocates the huge page zeroed and copies the seed in (cheaper than collapsing 512 pages).
// Done before the segment is handed out: collapsing under a client that is filling it made the
// kernel take the client's pages away as it wrote (measured: 260,000 faults, a 1 GiB fill 20 s).
void MakeHugePages(int fd, size_t size) {
  const size_t whole = size / kHugePageBytes * kHugePageBytes;
  if (whole == 0) return;
  const off_t page = static_cast<off_t>(sysconf(_SC_PAGESIZE));
  for (size_t offset = 0; offset < whole; offset += kHugePageBytes)
    if (fallocate(fd, 0, static_cast<off_t>(offset), page) != 0) return;
  void* address = MapHugeAligned(fd, whole, PROT_READ, MAP_SHARED);
  if (address == MAP_FAILED) return;
  madvise(address, whole, MADV_COLLAPSE);
  munmap(address, whole);
}

// A reserved segment file, or why there is none (errno and what was being done).
struct Reserved {
  int fd = -1;
  int err = 0;
  std::string what;
};

// Creates the file and reserves its pages: the blocking part of a new segment, safe on any thread.
// `hugePages`: collapse the pages into 2 MiB ones first (MakeHugePages); only off the event loop.
Reserved ReserveFile(size_t size, const std::string& name, const std::string& dir, bool hugePages) {
  Reserved result;
  // An unnamed file on a tmpfs (O_TMPFILE) counts against that file system's size, so asking
  // for more than it holds fails at once with ENOSPC. A memfd has no such bound: fallocate on
  // one keeps allocating until the OOM killer steps in. memfd is the fallback without a dir.
  int fd = dir.empty() ? memfd_create(name.c_str(), MFD_CLOEXEC)
                       : open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    result.err = errno;
    result.what = dir.empty() ? "memfd_create(" + name + ")" : "cannot create a segment in " + dir;
    return result;
  }
  // Not on a tmpfs too small for the segment: the fallocate below fails at once, where seeding
  // every 2 MiB first would go on until the tmpfs is full. MADV_COLLAPSE needs a mapping, and a
  // mapping needs the file's size.
  struct statfs space;
  const bool fits = fstatfs(fd, &space) == 0 &&
                    (space.f_blocks == 0 || static_cast<double>(space.f_bavail) * space.f_bsize >= size);
  if (hugePages && fits && ftruncate(fd, static_cast<off_t>(size)) == 0) MakeHugePages(fd, size);
  // fallocate reserves the pages now; ftruncate alone would defer failure to a SIGBUS.
  if (fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) {
    result.err = errno;
    result.what = "cannot reserve a " + std::to_string(size) + "-byte segment";
    close(fd);
    return result;
  }
  result.fd = fd;
  return result;
}

// Checks Segment(size, name, dir?) / reserve(size, name, dir?) arguments; false after throwing.
bool ParseArguments(const Napi::CallbackInfo& info, size_t* size, std::string* name, std::string* dir) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    MakeError(env, "InvalidArgument", "Segment(size, name): expected a number and a string")
        .ThrowAsJavaScriptException();
    return false;
  }
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested > 0) || requested > static_cast<double>(SIZE_MAX)) {
    MakeError(env, "InvalidArgument", "Segment size must be positive, got " + std::to_string(requested))
        .ThrowAsJavaScriptException();
    return false;
  }
  *size = static_cast<size_t>(requested);
  *name = info[1].As<Napi::String>().Utf8Value();
  *dir = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  return true;
}

// Segment.reserve: ReserveFile on a libuv worker thread, then a Segment over the file.
class ReserveWorker : public Napi::AsyncWorker {
 public:
  ReserveWorker(Napi::Env env, Napi::Function constructor, size_t size, std::string name, std::string dir)
      : Napi::AsyncWorker(env, "trellis.Segment.reserve"),
        deferred_(Napi::Promise::Deferred::New(env)),
        constructor_(Napi::Persistent(constructor)),
        size_(size),
        name_(std::move(name)),
        dir_(std::move(dir)) {}
  ~ReserveWorker() override {
    // Never handed over (the promise was not resolved with it): give the pages back.
    if (reserved_.fd >= 0) close(reserved_.fd);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { reserved_ = ReserveFile(size_, name_, dir_, true); }

  void OnOK() override {
    Napi::Env env = Env();
    if (reserved_.fd < 0) {
      deferred_.Reject(MakeErrnoError(env, reserved_.err, reserved_.what).Value());
      return;
    }
    // The constructor adopts the fd it is handed in an External (which JS cannot forge).
    Napi::Object segment = constructor_.New({Napi::Number::New(env, static_cast<double>(size_)),
                                             Napi::String::New(env, name_), Napi::String::New(env, dir_),
                                             Napi::External<int>::New(env, &reserved_.fd)});
    if (env.IsExceptionPending()) {
      deferred_.Reject(env.GetAndClearPendingException().Value());
      return;
    }
    deferred_.Resolve(segment);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference constructor_;
  size_t size_;
  std::string name_;
  std::string dir_;
  Reserved reserved_;
};

}  // namespace

Napi::Function Segment::Init(Napi::Env env) {
  return DefineClass(env, "Segment",
                     {InstanceAccessor<&Segment::Fd>("fd"), InstanceAccessor<&Segment::Size>("size"),
                      InstanceMethod<&Segment::Close>("close"),
                      InstanceMethod<&Segment::Release>("release"), StaticMethod<&Segment::Reserve>("reserve")});
}

Segment::Segment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Segment>(info) {
  Napi::Env env = info.Env();
  size_t size = 0;
  std::string name, dir;
  if (!ParseArguments(info, &size, &name, &dir)) return;
  if (info.Length() > 3 && info[3].IsExternal()) {
    // From ReserveWorker::OnOK: the file is reserved already; take it over.
    int* fd = info[3].As<Napi::External<int>>().Data();
    fd_ = *fd;
    *fd = -1;
  } else {
    Reserved reserved = ReserveFile(size, name, dir, false);
    if (reserved.fd < 0) {
      MakeErrnoError(env, reserved.err, reserved.what).ThrowAsJavaScriptException();
      return;
    }
    fd_ = reserved.fd;
  }
  size_ = size;
}

Napi::Value Segment::Reserve(const Napi::CallbackInfo& info) {
  size_t size = 0;
  std::string name, dir;
  if (!ParseArguments(info, &size, &name, &dir)) return info.Env().Undefined();
  auto* worker = new ReserveWorker(info.Env(), info.This().As<Napi::Function>(), size, name, dir);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Segment::~Segment() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value Segment::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value Segment::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(size_));
}

void Segment::Close(const Napi::CallbackInfo&) {
  // Clients that mapped the segment keep their pages; the memory goes when the last mapping does.
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace trellis

namespace trellis {

void Segment::Release(const Napi::CallbackInfo& info) {
  if (fd_ >= 0 && fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size_)) != 0) {
    // Not fatal: the pages go anyway once every client has dropped its mapping.
  }
  Close(info);
}

}  // namespace trellis
