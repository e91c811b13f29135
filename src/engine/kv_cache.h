// The KV cache: per sequence and layer, keys and values [kv_heads, capacity, head_dim] in the
// compute dtype, grown in steps as the sequence gets longer (held tokens are copied over). The
// architectures reach it through model::KvAccess (BatchKv below), so a paged cache can replace
// this one without them changing.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "flagos/device.h"
#include "flagos/dtype.h"
#include "flagos/tensor.h"
#include "model/causal_lm.h"

namespace flagos::engine {

struct KvLayout {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  int64_t grow_tokens = 256;  // capacity grows in multiples of this
  int64_t max_tokens = 0;     // capacity never exceeds this (the engine's max_context)
};

class SequenceKv {
 public:
  explicit SequenceKv(const KvLayout& layout) : layout_(&layout) {}
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t bytes() const;
  // Makes room for `tokens` tokens in total (copies the held ones when it reallocates).
  void reserve(int64_t tokens);
  void truncate(int64_t length);  // keeps the first `length` tokens
  void commit(int64_t n);         // the n tokens written after length() are now held
  // Writes k, v [n, kv_heads, head_dim] at positions [pos, pos + n) of `layer` (within capacity)
  // and returns the keys and values of positions [0, pos + n) as [1, kv_heads, pos + n, head_dim].
  std::pair<Tensor, Tensor> write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v);

 private:
  const KvLayout* layout_;
  std::vector<Tensor> k_, v_;  // per layer [kv_heads, capacity, head_dim]
  int64_t length_ = 0, capacity_ = 0;
};

// The KvAccess of one forward pass: batch item i writes to its sequence after `past` tokens.
class BatchKv final : public model::KvAccess {
 public:
  void clear() { items_.clear(); }
  void add(SequenceKv* kv, int64_t past) { items_.emplace_back(kv, past); }
  std::pair<Tensor, Tensor> store(int64_t layer, size_t item, const Tensor& k, const Tensor& v) override;

 private:
  std::vector<std::pair<SequenceKv*, int64_t>> items_;
};

}  // namespace flagos::engine
