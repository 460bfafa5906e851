#include "checksum.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "errors.h"

namespace trellis {

namespace {

constexpr uint64_t kPrime1 = 11400714785074694791ULL;
constexpr uint64_t kPrime2 = 14029467366897019727ULL;
constexpr uint64_t kPrime3 = 1609587929392839161ULL;
constexpr uint64_t kPrime4 = 9650029242287828579ULL;
constexpr uint64_t kPrime5 = 2870177450012600261ULL;
constexpr size_t kStripe = 32;

inline uint64_t RotateLeft(uint64_t value, int bits) { return (value << bits) | (value >> (64 - bits)); }

// Little-endian loads (x86-64 and arm64 are little-endian; memcpy lets the compiler emit one mov).
inline uint64_t Load64(const uint8_t* p) {
  uint64_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}
inline uint32_t Load32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

inline uint64_t Round(uint64_t lane, uint64_t input) {
  lane += input * kPrime2;
  return RotateLeft(lane, 31) * kPrime1;
}

inline uint64_t MergeRound(uint64_t hash, uint64_t lane) {
  hash ^= Round(0, lane);
  return hash * kPrime1 + kPrime4;
}

bool IsByteView(const Napi::Value& value) { return value.IsTypedArray() || value.IsDataView() || value.IsBuffer(); }

// The bytes of a Uint8Array, Buffer or other ArrayBufferView.
void ViewBytes(const Napi::Value& value, const uint8_t** data, size_t* length) {
  napi_value raw = value;
  napi_env env = value.Env();
  void* pointer = nullptr;
  size_t byteLength = 0;
  if (value.IsDataView()) {
    napi_get_dataview_info(env, raw, &byteLength, &pointer, nullptr, nullptr);
  } else {
    napi_typedarray_type type;
    size_t elements = 0;
    napi_get_typedarray_info(env, raw, &type, &elements, &pointer, nullptr, nullptr);
    byteLength = Napi::TypedArray(env, raw).ByteLength();
  }
  *data = static_cast<const uint8_t*>(pointer);
  *length = byteLength;
}

}  // namespace

Xxh64State::Xxh64State() {
  lanes[0] = kPrime1 + kPrime2;
  lanes[1] = kPrime2;
  lanes[2] = 0;
  lanes[3] = 0 - kPrime1;
}

void Xxh64State::Update(const uint8_t* data, size_t length) {
  total += length;
  if (pendingSize + length < kStripe) {
    std::memcpy(pending + pendingSize, data, length);
    pendingSize += length;
    return;
  }
  const uint8_t* p = data;
  const uint8_t* end = data + length;
  if (pendingSize > 0) {
    const size_t fill = kStripe - pendingSize;
    std::memcpy(pending + pendingSize, p, fill);
    for (int lane = 0; lane < 4; lane++) lanes[lane] = Round(lanes[lane], Load64(pending + 8 * lane));
    p += fill;
    pendingSize = 0;
  }
  uint64_t v1 = lanes[0], v2 = lanes[1], v3 = lanes[2], v4 = lanes[3];
  while (end - p >= static_cast<ptrdiff_t>(kStripe)) {
    v1 = Round(v1, Load64(p));
    v2 = Round(v2, Load64(p + 8));
    v3 = Round(v3, Load64(p + 16));
    v4 = Round(v4, Load64(p + 24));
    p += kStripe;
  }
  lanes[0] = v1, lanes[1] = v2, lanes[2] = v3, lanes[3] = v4;
  pendingSize = static_cast<size_t>(end - p);
  std::memcpy(pending, p, pendingSize);
}

uint64_t Xxh64State::Digest() const {
  uint64_t hash;
  if (total >= kStripe) {
    hash = RotateLeft(lanes[0], 1) + RotateLeft(lanes[1], 7) + RotateLeft(lanes[2], 12) + RotateLeft(lanes[3], 18);
    for (int lane = 0; lane < 4; lane++) hash = MergeRound(hash, lanes[lane]);
  } else {
    hash = lanes[2] + kPrime5;  // the seed (0) + prime 5
  }
  hash += total;
  const uint8_t* p = pending;
  const uint8_t* end = pending + pendingSize;
  while (end - p >= 8) {
    hash ^= Round(0, Load64(p));
    hash = RotateLeft(hash, 27) * kPrime1 + kPrime4;
    p += 8;
  }
  if (end - p >= 4) {
    hash ^= static_cast<uint64_t>(Load32(p)) * kPrime1;
    hash = RotateLeft(hash, 23) * kPrime2 + kPrime3;
    p += 4;
  }
  while (p < end) {
    hash ^= (*p++) * kPrime5;
    hash = RotateLeft(hash, 11) * kPrime1;
  }
  hash ^= hash >> 33;
  hash *= kPrime2;
  hash ^= hash >> 29;
  hash *= kPrime3;
  hash ^= hash >> 32;
  return hash;
}

// Hashes one view on the threadpool, holding references to it and to its Checksum meanwhile.
class ChecksumWorker : public Napi::AsyncWorker {
 public:
  ChecksumWorker(Napi::Env env, Checksum* checksum, Napi::Object owner, Napi::Value view)
      : Napi::AsyncWorker(env, "trellis:checksum"), checksum_(checksum), deferred_(Napi::Promise::Deferred::New(env)) {
    owner_ = Napi::Persistent(owner);
    view_ = Napi::Persistent(view.As<Napi::Object>());
    ViewBytes(view, &data_, &length_);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { checksum_->state_.Update(data_, length_); }

  void OnOK() override {
    checksum_->busy_ = false;
    deferred_.Resolve(Env().Undefined());
  }

 private:
  Checksum* checksum_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Napi::ObjectReference view_;
  const uint8_t* data_ = nullptr;
  size_t length_ = 0;
};

Napi::Function Checksum::Init(Napi::Env env) {
  return DefineClass(env, "Checksum",
                     {InstanceMethod<&Checksum::Update>("update"), InstanceMethod<&Checksum::UpdateSync>("updateSync"),
                      InstanceMethod<&Checksum::Digest>("digest")});
}

Checksum::Checksum(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Checksum>(info) {}

bool Checksum::CheckIdle(Napi::Env env) {
  if (!busy_) return true;
  MakeError(env, "InvalidArgument", "checksum: wait for update() to settle first").ThrowAsJavaScriptException();
  return false;
}

Napi::Value Checksum::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !IsByteView(info[0])) {
    MakeError(env, "InvalidArgument", "checksum.update(view): expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!CheckIdle(env)) return env.Undefined();
  busy_ = true;
  auto* worker = new ChecksumWorker(env, this, info.This().As<Napi::Object>(), info[0]);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Checksum::UpdateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !IsByteView(info[0])) {
    MakeError(env, "InvalidArgument", "checksum.updateSync(view): expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!CheckIdle(env)) return env.Undefined();
  const uint8_t* data;
  size_t length;
  ViewBytes(info[0], &data, &length);
  state_.Update(data, length);
  return env.Undefined();
}

Napi::Value Checksum::Digest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckIdle(env)) return env.Undefined();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(state_.Digest()));
  return Napi::String::New(env, hex);
}

}  // namespace trellis
