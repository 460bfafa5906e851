// Passing segment fds between processes. A file descriptor, unlike a file name, leaves nothing
// behind in the file system, cannot collide, and reaches exactly the process it is sent to.
// Node's net module drops SCM_RIGHTS data, so fds travel on a second socket that the client's
// addon owns: the daemon writes to it with sendFd, the client reads it with recvFd.
#pragma once
#include <napi.h>

namespace trellis {

Napi::Value ConnectUnix(const Napi::CallbackInfo& info);     // (path) -> fd, blocking, close-on-exec
Napi::Value SendBytes(const Napi::CallbackInfo& info);       // (socketFd, Uint8Array) -> undefined
Napi::Value SendFd(const Napi::CallbackInfo& info);          // (socketFd, fd, tag) -> undefined; never blocks
Napi::Value RecvFd(const Napi::CallbackInfo& info);          // (socketFd, timeoutMs) -> { fd, tag }
Napi::Value CloseFd(const Napi::CallbackInfo& info);         // (fd) -> undefined
Napi::Value PeerCredentials(const Napi::CallbackInfo& info); // (socketFd) -> { pid, uid, gid }

}  // namespace trellis
