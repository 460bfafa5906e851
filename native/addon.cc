// Module init: wires the native classes together. Nothing here knows about the protocol.
#include <napi.h>

#include "allocator.h"
#include "checksum.h"
#include "errors.h"
#include "fd-passing.h"
#include "file-lock.h"
#include "mapping.h"
#include "segment.h"

namespace trellis {

namespace {

// initialize(TrellisError): called once by src/native.ts so native errors carry trellis codes.
Napi::Value Initialize(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "initialize(TrellisError): expected a constructor").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  SetErrorConstructor(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("initialize", Napi::Function::New(env, Initialize));
  exports.Set("Segment", Segment::Init(env));
  exports.Set("Mapping", Mapping::Init(env));
  exports.Set("Allocator", Allocator::Init(env));
  exports.Set("Checksum", Checksum::Init(env));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix));
  exports.Set("sendBytes", Napi::Function::New(env, SendBytes));
  exports.Set("sendFd", Napi::Function::New(env, SendFd));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials));
  exports.Set("lockFile", Napi::Function::New(env, LockFile));
  return exports;
}

}  // namespace trellis

static Napi::Object InitTrellis(Napi::Env env, Napi::Object exports) { return trellis::InitAll(env, exports); }

NODE_API_MODULE(trellis, InitTrellis)
