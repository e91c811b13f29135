// The paged KV cache. Per layer one K pool and one V pool [num_blocks, kv_heads, block_size,
// head_dim] in the compute dtype on the model's device; a block allocator hands out block ids; a
// sequence owns a list of blocks (its block table, shared by all layers): position p of the
// sequence lives in block blocks[p / block_size] at offset p % block_size of every layer's pools.
// Blocks go back to the free list when a sequence is truncated or freed. When the free list runs
// short the pools grow (new pools of at least twice the blocks, held blocks copied over), which
// changes the pools' addresses: anything that captured them (CUDA graphs) checks generation().
//
// Memory trade-off of windowed layers (gemma3 local layers, qwen2 sliding window): they keep
// every position like the global layers (the attention op masks by the window), so the cache
// costs layers x positions however small the windows are. The old per-sequence cache dropped
// positions a window no longer sees; with one block table shared by all layers, doing that would
// need per-layer tables (or recycling blocks only once every layer is past them). In exchange a
// sequence can always be truncated to any length (prefix reuse never recomputes from scratch).
#pragma once
#include <cstdint>
#include <vector>

#include "flagos/device.h"
#include "flagos/dtype.h"
#include "flagos/tensor.h"

namespace flagos::engine {

struct KvLayout {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  int64_t block_size = 16;      // positions per block
  int64_t initial_blocks = 16;  // blocks of the first pools (allocated on first use)
  int64_t max_tokens = 0;       // a sequence never holds more (the engine's max_context)
};

class KvPool {
 public:
  explicit KvPool(const KvLayout& layout);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  const KvLayout& layout() const { return layout_; }
  int64_t block_size() const { return layout_.block_size; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t block_bytes() const;  // K + V of one block over all layers
  // Bumped whenever the pools are (re)allocated: tensors and graphs holding them are stale.
  uint64_t generation() const { return generation_; }
  int64_t growths() const { return growths_; }
  // Per layer [num_blocks, kv_heads, block_size, head_dim].
  const std::vector<Tensor>& k() const { return k_; }
  const std::vector<Tensor>& v() const { return v_; }

  // Makes sure at least n blocks are free (growing the pools when needed).
  void reserve(int64_t n);
  // Appends n free block ids to `into` (growing the pools when needed).
  void take(int64_t n, std::vector<int32_t>& into);
  void give_back(const int32_t* blocks, int64_t n);

 private:
  void grow(int64_t min_blocks);
  KvLayout layout_;
  std::vector<Tensor> k_, v_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
  int64_t num_blocks_ = 0;
  uint64_t generation_ = 0;
  int64_t growths_ = 0;
};

class SequenceKv {
 public:
  explicit SequenceKv(KvPool& pool) : pool_(&pool) {}
  ~SequenceKv();
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  int64_t length() const { return length_; }
  int64_t bytes() const { return static_cast<int64_t>(blocks_.size()) * pool_->block_bytes(); }
  const std::vector<int32_t>& blocks() const { return blocks_; }
  // Blocks for the positions up to length() + n (taken from the pool, which may grow).
  void reserve(int64_t n);
  // Keeps the first `length` tokens and returns the blocks past them to the pool.
  void truncate(int64_t length);
  void commit(int64_t n);  // the n tokens written after length() are now held (reserved before)
  // Where position `pos` (reserved) lives in the pools: block * block_size + offset.
  int32_t slot(int64_t pos) const {
    const int64_t bs = pool_->block_size();
    return static_cast<int32_t>(blocks_[static_cast<size_t>(pos / bs)] * bs + pos % bs);
  }

 private:
  KvPool* pool_;
  std::vector<int32_t> blocks_;
  int64_t length_ = 0;
};

}  // namespace flagos::engine
