// Per-op kernel registration and dispatch. Ops are declared once (src/ops); each backend
// registers kernels per (op, dtype key). A missing kernel is a NotSupported error naming the
// op, dtypes and backend: nothing silently falls back to another backend or dtype.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flagos/device.h"
#include "flagos/dtype.h"

namespace flagos {

class Tensor;

// What a kernel receives. `params` points at the op's parameter struct (declared next to
// the op in flagos/ops.h), or is null. Validation and shape inference are already done.
struct KernelArgs {
  std::span<const Tensor* const> in;
  std::span<Tensor* const> out;
  const void* params = nullptr;
  Stream stream;
  template <typename P>
  const P& p() const { return *static_cast<const P*>(params); }
};
using KernelFn = void (*)(const KernelArgs&);

// The dtype key of a kernel: usually the compute dtype; ops that mix types (cast, linear with
// quantized weights, embedding, gather indices) use a second dtype.
struct KernelKey {
  DType d0 = DType::f32;
  DType d1 = DType::count_;  // count_ = unused
};

struct OpInfo {
  std::string name;
  std::string category;  // "unary", "binary", "reduce", "llm", ...
};

class KernelRegistry {
 public:
  // Op ids are assigned on first declaration; declaring again returns the same id.
  uint16_t declare_op(std::string_view name, std::string_view category);
  int find_op(std::string_view name) const;
  const std::vector<OpInfo>& ops() const { return ops_; }

  void add(std::string_view op, uint16_t backend, KernelKey key, KernelFn fn);
  KernelFn find(uint16_t op, uint16_t backend, KernelKey key) const {
    auto it = kernels_.find(pack(op, backend, key));
    return it == kernels_.end() ? nullptr : it->second;
  }
  // Throws NotSupported naming op, dtypes and backend.
  KernelFn get(uint16_t op, uint16_t backend, KernelKey key) const {
    if (KernelFn f = find(op, backend, key)) [[likely]]
      return f;
    not_supported(op, backend, key);
  }
  // All keys a backend supports for an op (for `flagos ops --coverage`).
  std::vector<KernelKey> keys(uint16_t op, uint16_t backend) const;

 private:
  [[noreturn]] void not_supported(uint16_t op, uint16_t backend, KernelKey key) const;
  static uint64_t pack(uint16_t op, uint16_t backend, KernelKey k) {
    return (uint64_t{op} << 32) | (uint64_t{backend} << 16) | (uint64_t{static_cast<uint8_t>(k.d0)} << 8) |
           uint64_t{static_cast<uint8_t>(k.d1)};
  }
  std::vector<OpInfo> ops_;
  std::unordered_map<uint64_t, KernelFn> kernels_;
};

// The process-wide registry; backends are registered into it on first use.
KernelRegistry& kernels();

std::string key_to_string(KernelKey k);

// Runs the kernel of `op` for the device of the first output (or input when there is none).
void launch(uint16_t op, KernelKey key, Device device, std::initializer_list<const Tensor*> in,
            std::initializer_list<Tensor*> out, const void* params = nullptr);

}  // namespace flagos
