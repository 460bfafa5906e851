// A client's mapping of a segment fd. Each segment is mapped once per process and mapped at
// most twice: read-only for everything the process reads, and read-write only when the
// process writes its own unsealed blobs. JS sees external ArrayBuffers over the mapping; the
// memory is unmapped when the Mapping and every ArrayBuffer over it are gone, so a view that
// outlives a closed client stays valid.
#pragma once
#include <napi.h>

#include <memory>

namespace trellis {

struct MappedRegion {
  void* address = nullptr;
  size_t length = 0;
  ~MappedRegion();
};

class Mapping : public Napi::ObjectWrap<Mapping> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Mapping(fd, size, writable, populate)
  explicit Mapping(const Napi::CallbackInfo& info);

 private:
  // The whole mapping as one ArrayBuffer (created once). Only handed out for read-only mappings.
  Napi::Value Buffer(const Napi::CallbackInfo& info);
  // slice(offset, length, prefault?): an ArrayBuffer over exactly these bytes, so that neither a view nor
  // its .buffer reaches a neighbour. Used for a writer's unsealed blob; detached at seal.
  Napi::Value Slice(const Napi::CallbackInfo& info);

  Napi::ArrayBuffer External(Napi::Env env, size_t offset, size_t length);

  std::shared_ptr<MappedRegion> region_;
  Napi::Reference<Napi::ArrayBuffer> whole_;
  bool writable_ = false;
};

// detach(arrayBuffer): makes every view over it zero-length, so a writer cannot touch a blob
// after sealing it.
Napi::Value Detach(const Napi::CallbackInfo& info);

}  // namespace trellis
