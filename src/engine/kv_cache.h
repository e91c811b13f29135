// The KV cache: per sequence and layer, keys and values [kv_heads, capacity, head_dim] in the
// compute dtype. A layer attending to every earlier position keeps them all and grows in steps as
// the sequence gets longer (held tokens are copied over). A layer with an attention window W keeps
// only what later queries can see: before new tokens it drops positions older than the last W - 1,
// so its memory stays near W + the growth step however long the sequence gets. The architectures
// reach the cache through model::KvAccess (BatchKv below), so a paged cache can replace this one
// without them changing.
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
  int64_t grow_tokens = 256;     // capacity grows in multiples of this
  int64_t max_tokens = 0;        // a sequence never holds more (the engine's max_context)
  std::vector<int64_t> windows;  // per layer: attention window, 0 = none
};

class SequenceKv {
 public:
  explicit SequenceKv(const KvLayout& layout);
  int64_t length() const { return length_; }
  int64_t bytes() const;
  // Makes room in every layer for n tokens after length() (copying held tokens when a layer
  // reallocates; windowed layers drop the positions the new queries cannot see).
  void reserve(int64_t n);
  // Whether truncate(length) keeps every position a sequence of that length still needs
  // (windowed layers may have dropped them).
  bool can_truncate(int64_t length) const;
  void truncate(int64_t length);  // keeps the first `length` tokens; throws if !can_truncate
  void commit(int64_t n);         // the n tokens written after length() are now held
  // Writes k, v [n, kv_heads, head_dim] at positions [pos, pos + n) of `layer` (reserved before)
  // and returns the held keys and values of positions [first, pos + n) as
  // [1, kv_heads, pos + n - first, head_dim], first being the layer's oldest held position.
  std::pair<Tensor, Tensor> write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v);

 private:
  struct Layer {
    Tensor k, v;         // [kv_heads, capacity, head_dim]
    int64_t first = 0;   // position held at index 0
    int64_t capacity = 0;
  };
  const KvLayout* layout_;
  std::vector<Layer> layers_;
  int64_t length_ = 0;
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
