// The per-sequence KV cache: see kv_cache.h.
#include "engine/kv_cache.h"

#include <algorithm>

#include "flagos/error.h"
#include "flagos/ops.h"

namespace flagos::engine {

int64_t SequenceKv::bytes() const {
  int64_t b = 0;
  for (const Tensor& t : k_) b += static_cast<int64_t>(t.nbytes());
  for (const Tensor& t : v_) b += static_cast<int64_t>(t.nbytes());
  return b;
}

void SequenceKv::reserve(int64_t tokens) {
  const KvLayout& L = *layout_;
  FLAGOS_CHECK(tokens <= L.max_tokens, "kv cache: ", tokens, " tokens exceed the limit of ", L.max_tokens);
  if (tokens <= capacity_) return;
  const int64_t cap = std::min(L.max_tokens, (tokens + L.grow_tokens - 1) / L.grow_tokens * L.grow_tokens);
  std::vector<Tensor> k, v;
  k.reserve(static_cast<size_t>(L.layers));
  v.reserve(static_cast<size_t>(L.layers));
  for (int64_t l = 0; l < L.layers; ++l) {
    k.push_back(Tensor::empty({L.kv_heads, cap, L.head_dim}, L.dtype, L.device));
    v.push_back(Tensor::empty({L.kv_heads, cap, L.head_dim}, L.dtype, L.device));
    if (length_ > 0) {
      const size_t i = static_cast<size_t>(l);
      Tensor kd = k.back().narrow(1, 0, length_), vd = v.back().narrow(1, 0, length_);
      ops::copy(kd, k_[i].narrow(1, 0, length_));
      ops::copy(vd, v_[i].narrow(1, 0, length_));
    }
  }
  k_ = std::move(k);
  v_ = std::move(v);
  capacity_ = cap;
}

void SequenceKv::truncate(int64_t length) {
  FLAGOS_CHECK(length >= 0 && length <= length_, "kv cache: cannot truncate a sequence of ", length_, " tokens to ",
               length);
  length_ = length;
}

void SequenceKv::commit(int64_t n) {
  FLAGOS_CHECK(n >= 0 && length_ + n <= capacity_, "kv cache: commit of ", n, " tokens after ", length_,
               " exceeds the capacity ", capacity_);
  length_ += n;
}

std::pair<Tensor, Tensor> SequenceKv::write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v) {
  const int64_t n = k.size(0);
  FLAGOS_CHECK(layer >= 0 && layer < layout_->layers && pos >= 0 && pos + n <= capacity_, "kv cache: write of ", n,
               " tokens at position ", pos, " of layer ", layer, " is outside the capacity ", capacity_);
  const size_t l = static_cast<size_t>(layer);
  Tensor kd = k_[l].narrow(1, pos, n), vd = v_[l].narrow(1, pos, n);
  ops::copy(kd, k.transpose(0, 1));
  ops::copy(vd, v.transpose(0, 1));
  return {k_[l].narrow(1, 0, pos + n).unsqueeze(0), v_[l].narrow(1, 0, pos + n).unsqueeze(0)};
}

std::pair<Tensor, Tensor> BatchKv::store(int64_t layer, size_t item, const Tensor& k, const Tensor& v) {
  FLAGOS_CHECK(item < items_.size(), "kv cache: batch item ", item, " of ", items_.size());
  auto& [kv, past] = items_[item];
  return kv->write(layer, past, k, v);
}

}  // namespace flagos::engine
