#include "fd-passing.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "errors.h"

namespace trellis {

namespace {

bool ArgsAreNumbers(const Napi::CallbackInfo& info, size_t count, const char* usage) {
  for (size_t i = 0; i < count; i++) {
    if (info.Length() <= i || !info[i].IsNumber()) {
      MakeError(info.Env(), "InvalidArgument", std::string(usage) + ": expected numbers").ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

int FdArg(const Napi::CallbackInfo& info, size_t index) { return info[index].As<Napi::Number>().Int32Value(); }

}  // namespace

Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    MakeError(env, "InvalidArgument", "connectUnix(path): expected a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    MakeError(env, "InvalidArgument", "socket path is longer than " + std::to_string(sizeof(address.sun_path) - 1) +
                                          " bytes: " + path)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    MakeErrnoError(env, errno, "socket()").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int err = errno;
    close(fd);
    MakeErrnoError(env, err, "connect(" + path + ")").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SendBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgsAreNumbers(info, 1, "sendBytes(socketFd, bytes)")) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    MakeError(env, "InvalidArgument", "sendBytes(socketFd, bytes): expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  const uint8_t* data = bytes.Data();
  size_t remaining = bytes.ByteLength();
  while (remaining > 0) {
    ssize_t n = send(FdArg(info, 0), data, remaining, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      MakeErrnoError(env, errno, "send on the fd channel").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    data += n;
    remaining -= static_cast<size_t>(n);
  }
  return env.Undefined();
}

Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgsAreNumbers(info, 3, "sendFd(socketFd, fd, tag)")) return env.Undefined();
  const int socketFd = FdArg(info, 0);
  int fd = FdArg(info, 1);
  // The tag (a segment id) rides along so the receiver can check it got the fd it expected.
  uint64_t tag = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());

  iovec payload{&tag, sizeof(tag)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &payload;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));

  ssize_t n;
  do {
    // MSG_DONTWAIT: a client that never reads its fd channel must not stall the daemon.
    n = sendmsg(socketFd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(tag))) {
    MakeErrnoError(env, n < 0 ? errno : EIO, "sending a segment fd").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgsAreNumbers(info, 2, "recvFd(socketFd, timeoutMs)")) return env.Undefined();
  const int socketFd = FdArg(info, 0);
  const int timeoutMs = FdArg(info, 1);

  pollfd waitFor{socketFd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&waitFor, 1, timeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    MakeError(env, "Unavailable", "no segment fd arrived within " + std::to_string(timeoutMs) + " ms")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }

  uint64_t tag = 0;
  iovec payload{&tag, sizeof(tag)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &payload;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(socketFd, &message, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    MakeErrnoError(env, n < 0 ? errno : ECONNRESET, "receiving a segment fd").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (n != static_cast<ssize_t>(sizeof(tag)) || header == nullptr || header->cmsg_type != SCM_RIGHTS ||
      (message.msg_flags & MSG_CTRUNC) != 0) {
    MakeError(env, "ProtocolError", "the fd channel carried a message without a file descriptor")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("tag", Napi::Number::New(env, static_cast<double>(tag)));
  return result;
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgsAreNumbers(info, 1, "closeFd(fd)")) return env.Undefined();
  close(FdArg(info, 0));
  return env.Undefined();
}

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgsAreNumbers(info, 1, "peerCredentials(socketFd)")) return env.Undefined();
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (getsockopt(FdArg(info, 0), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    MakeErrnoError(env, errno, "SO_PEERCRED").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, credentials.pid));
  result.Set("uid", Napi::Number::New(env, credentials.uid));
  result.Set("gid", Napi::Number::New(env, credentials.gid));
  return result;
}

}  // namespace trellis
