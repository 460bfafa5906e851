// The only place native code builds JS errors. src/native.ts hands the addon the TrellisError
// constructor at load time; every native failure becomes one with a code from the table below.
#pragma once
#include <napi.h>
#include <string>

namespace trellis {

// Remembers the TrellisError constructor passed to initialize().
void SetErrorConstructor(Napi::Env env, Napi::Function ctor);

// Builds a TrellisError(code, message). Falls back to a plain Error before initialize().
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);

// Maps errno to a trellis code (ENOMEM -> OutOfMemory, EACCES -> PermissionDenied, ...) and
// appends strerror(err) to the message.
Napi::Error MakeErrnoError(Napi::Env env, int err, const std::string& what);

const char* CodeForErrno(int err);

}  // namespace trellis
