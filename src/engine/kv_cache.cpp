// The per-sequence KV cache: see kv_cache.h.
#include "engine/kv_cache.h"

#include <algorithm>

#include "flagos/error.h"
#include "flagos/ops.h"

namespace flagos::engine {

namespace {
int64_t round_up(int64_t x, int64_t step) { return (x + step - 1) / step * step; }
}  // namespace

SequenceKv::SequenceKv(const KvLayout& layout) : layout_(&layout), layers_(static_cast<size_t>(layout.layers)) {}

int64_t SequenceKv::bytes() const {
  int64_t b = 0;
  for (const Layer& l : layers_) b += static_cast<int64_t>(l.k.nbytes() + l.v.nbytes());
  return b;
}

void SequenceKv::reserve(int64_t n) {
  const KvLayout& L = *layout_;
  FLAGOS_CHECK(n >= 0 && length_ + n <= L.max_tokens, "kv cache: ", length_, " + ", n, " tokens exceed the limit of ",
               L.max_tokens);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    if (length_ + n - l.first <= l.capacity) continue;  // fits as it is
    const int64_t window = L.windows[i];
    // Oldest position still needed: all of them, or the last window - 1 before the new tokens.
    const int64_t keep_from = window > 0 ? std::max(l.first, length_ - (window - 1)) : l.first;
    const int64_t keep = length_ - keep_from;
    // Windowed layers get a growth step of slack so they reallocate at most once per step.
    const int64_t cap = std::min(L.max_tokens, window > 0 ? round_up(keep + n + L.grow_tokens, L.grow_tokens)
                                                          : round_up(length_ + n, L.grow_tokens));
    Layer fresh;
    fresh.k = Tensor::empty({L.kv_heads, cap, L.head_dim}, L.dtype, L.device);
    fresh.v = Tensor::empty({L.kv_heads, cap, L.head_dim}, L.dtype, L.device);
    fresh.first = keep_from;
    fresh.capacity = cap;
    if (keep > 0) {
      Tensor kd = fresh.k.narrow(1, 0, keep), vd = fresh.v.narrow(1, 0, keep);
      ops::copy(kd, l.k.narrow(1, keep_from - l.first, keep));
      ops::copy(vd, l.v.narrow(1, keep_from - l.first, keep));
    }
    l = std::move(fresh);
  }
}

bool SequenceKv::can_truncate(int64_t length) const {
  if (length < 0 || length > length_) return false;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const int64_t window = layout_->windows[i];
    const int64_t needed_from = window > 0 ? std::max<int64_t>(0, length - (window - 1)) : 0;
    if (length > 0 && layers_[i].first > needed_from) return false;
  }
  return true;
}

void SequenceKv::truncate(int64_t length) {
  FLAGOS_CHECK(can_truncate(length), "kv cache: cannot truncate a sequence of ", length_, " tokens to ", length,
               length >= 0 && length <= length_ ? " (its windowed layers no longer hold the positions that needs)" : "");
  length_ = length;
  if (length == 0)
    for (Layer& l : layers_) l.first = 0;
}

void SequenceKv::commit(int64_t n) {
  for (const Layer& l : layers_)
    FLAGOS_CHECK(n >= 0 && length_ + n - l.first <= l.capacity, "kv cache: commit of ", n, " tokens after ", length_,
                 " exceeds the reserved capacity");
  length_ += n;
}

std::pair<Tensor, Tensor> SequenceKv::write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v) {
  FLAGOS_CHECK(layer >= 0 && layer < layout_->layers, "kv cache: layer ", layer, " of ", layout_->layers);
  Layer& l = layers_[static_cast<size_t>(layer)];
  const int64_t n = k.size(0), at = pos - l.first;
  FLAGOS_CHECK(at >= 0 && at + n <= l.capacity, "kv cache: write of ", n, " tokens at position ", pos, " of layer ",
               layer, " is outside the reserved positions [", l.first, ", ", l.first + l.capacity, ")");
  Tensor kd = l.k.narrow(1, at, n), vd = l.v.narrow(1, at, n);
  ops::copy(kd, k.transpose(0, 1));
  ops::copy(vd, v.transpose(0, 1));
  return {l.k.narrow(1, 0, at + n).unsqueeze(0), l.v.narrow(1, 0, at + n).unsqueeze(0)};
}

std::pair<Tensor, Tensor> BatchKv::store(int64_t layer, size_t item, const Tensor& k, const Tensor& v) {
  FLAGOS_CHECK(item < items_.size(), "kv cache: batch item ", item, " of ", items_.size());
  auto& [kv, past] = items_[item];
  return kv->write(layer, past, k, v);
}

}  // namespace flagos::engine
