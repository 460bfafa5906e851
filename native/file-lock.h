// An exclusive lock on an open file, for "one daemon per data dir". flock(2) rather than a pid
// file: the kernel drops the lock when the holder's last fd to the file closes, which happens
// when the process exits however it exits (SIGKILL, a crash, power loss), so there is never a
// stale lock to detect, no pid that may have been reused, and no race between two processes
// that both decide an old lock is stale. The fd should be close-on-exec (Node opens files so)
// so that child processes do not keep the lock alive.
#pragma once
#include <napi.h>

namespace trellis {

// (fd) -> true when this fd now holds the exclusive lock, false when another holder has it.
// Never blocks. Other failures (EBADF, ENOLCK, ...) throw.
Napi::Value LockFile(const Napi::CallbackInfo& info);

}  // namespace trellis
