#include "errors.h"

#include <cerrno>
#include <cstring>

namespace trellis {

namespace {
// One constructor per process (the addon is loaded once, by src/native.ts).
Napi::FunctionReference& ErrorConstructor() {
  static Napi::FunctionReference ctor;
  return ctor;
}
}  // namespace

void SetErrorConstructor(Napi::Env, Napi::Function ctor) {
  ErrorConstructor() = Napi::Persistent(ctor);
  ErrorConstructor().SuppressDestruct();
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::FunctionReference& ctor = ErrorConstructor();
  if (ctor.IsEmpty()) {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    return error;
  }
  Napi::Object error = ctor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  return Napi::Error(env, error);
}

const char* CodeForErrno(int err) {
  switch (err) {
    case ENOMEM:
    case ENOSPC:
    case EFBIG:
      return "OutOfMemory";
    case EACCES:
    case EPERM:
      return "PermissionDenied";
    case EINVAL:
    case EBADF:
    case ENOTSOCK:
      return "InvalidArgument";
    case ETIMEDOUT:
    case EAGAIN:
      return "Unavailable";
    case EPIPE:
    case ECONNRESET:
    case ECONNREFUSED:
    case ENOENT:
      return "ConnectionClosed";
    default:
      return "IOError";
  }
}

Napi::Error MakeErrnoError(Napi::Env env, int err, const std::string& what) {
  return MakeError(env, CodeForErrno(err), what + ": " + std::strerror(err));
}

}  // namespace trellis
