#include "file-lock.h"

#include <sys/file.h>

#include <cerrno>

#include "errors.h"

namespace trellis {

Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    MakeError(env, "InvalidArgument", "lockFile(fd): expected a file descriptor").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  int result;
  do {
    result = flock(fd, LOCK_EX | LOCK_NB);
  } while (result != 0 && errno == EINTR);
  if (result == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  MakeErrnoError(env, errno, "flock").ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace trellis
