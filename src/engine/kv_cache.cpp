// The paged KV cache: see kv_cache.h.
#include "engine/kv_cache.h"

#include <algorithm>
#include <limits>

#include "flagos/error.h"
#include "flagos/ops.h"

namespace flagos::engine {

KvPool::KvPool(const KvLayout& layout) : layout_(layout) {
  FLAGOS_CHECK(layout.block_size >= 1 && layout.initial_blocks >= 1, "kv cache: block_size (", layout.block_size,
               ") and initial_blocks (", layout.initial_blocks, ") must be >= 1");
}

int64_t KvPool::block_bytes() const {
  return 2 * layout_.layers * layout_.kv_heads * layout_.block_size * layout_.head_dim *
         static_cast<int64_t>(element_size(layout_.dtype));
}

void KvPool::grow(int64_t min_blocks) {
  const KvLayout& L = layout_;
  const int64_t old = num_blocks_;
  const int64_t n = std::max({min_blocks, 2 * old, L.initial_blocks});
  FLAGOS_CHECK(n * L.block_size <= std::numeric_limits<int32_t>::max(), "kv cache: a pool of ", n, " blocks of ",
               L.block_size, " positions exceeds the i32 slot range");
  std::vector<Tensor> k, v;
  k.reserve(static_cast<size_t>(L.layers));
  v.reserve(static_cast<size_t>(L.layers));
  for (int64_t l = 0; l < L.layers; ++l) {
    k.push_back(Tensor::empty({n, L.kv_heads, L.block_size, L.head_dim}, L.dtype, L.device));
    v.push_back(Tensor::empty({n, L.kv_heads, L.block_size, L.head_dim}, L.dtype, L.device));
    if (old > 0) {
      Tensor kd = k.back().narrow(0, 0, old), vd = v.back().narrow(0, 0, old);
      ops::copy(kd, k_[static_cast<size_t>(l)]);
      ops::copy(vd, v_[static_cast<size_t>(l)]);
    }
  }
  k_ = std::move(k);
  v_ = std::move(v);
  // New ids pushed highest first, so the lowest is handed out first.
  for (int64_t b = n - 1; b >= old; --b) free_.push_back(static_cast<int32_t>(b));
  num_blocks_ = n;
  ++generation_;
  if (old > 0) ++growths_;
}

void KvPool::reserve(int64_t n) {
  if (free_blocks() < n) grow(num_blocks_ + (n - free_blocks()));
}

void KvPool::take(int64_t n, std::vector<int32_t>& into) {
  reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    into.push_back(free_.back());
    free_.pop_back();
  }
}

void KvPool::give_back(const int32_t* blocks, int64_t n) {
  // Reverse order: the sequence's first block is reused first.
  for (int64_t i = n - 1; i >= 0; --i) free_.push_back(blocks[i]);
}

SequenceKv::~SequenceKv() { pool_->give_back(blocks_.data(), static_cast<int64_t>(blocks_.size())); }

void SequenceKv::reserve(int64_t n) {
  const KvLayout& L = pool_->layout();
  FLAGOS_CHECK(n >= 0 && length_ + n <= L.max_tokens, "kv cache: ", length_, " + ", n, " tokens exceed the limit of ",
               L.max_tokens);
  const int64_t need = (length_ + n + L.block_size - 1) / L.block_size - static_cast<int64_t>(blocks_.size());
  if (need > 0) pool_->take(need, blocks_);
}

void SequenceKv::truncate(int64_t length) {
  FLAGOS_CHECK(length >= 0 && length <= length_, "kv cache: cannot truncate a sequence of ", length_, " tokens to ",
               length);
  length_ = length;
  const size_t keep = static_cast<size_t>((length + pool_->block_size() - 1) / pool_->block_size());
  if (keep < blocks_.size()) {
    pool_->give_back(blocks_.data() + keep, static_cast<int64_t>(blocks_.size() - keep));
    blocks_.resize(keep);
  }
}

void SequenceKv::commit(int64_t n) {
  FLAGOS_CHECK(n >= 0 && length_ + n <= static_cast<int64_t>(blocks_.size()) * pool_->block_size(),
               "kv cache: commit of ", n, " tokens after ", length_, " exceeds the reserved blocks");
  length_ += n;
}

}  // namespace flagos::engine
