// What an architecture implements for the engine: a forward pass over a batch of token runs,
// one run per sequence, with the keys and values in the caller's paged KV cache (PagedKv), and
// the registry that builds an architecture from a loaded model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flagos/model.h"
#include "flagos/tensor.h"

namespace flagos::model {

// One run of new tokens of one sequence. Its rows are [row, row + count) of the batch.
struct BatchItem {
  int64_t row = 0;
  int64_t count = 0;
  int64_t past = 0;  // tokens the sequence held before; the run's positions are past .. past + count - 1
};

// The paged KV cache of a forward pass (the engine's, src/engine/kv_cache.h): per layer K and V
// pools [num_blocks, Hkv, block_size, D] and the batch's metadata as device tensors, the layout
// ops::kv_cache_store / ops::paged_attention take. Item b's query rows are
// [q_start[b], q_start[b+1]); it holds seq_lens[b] keys after the pass (its new ones included);
// its position p lives in block block_table[b][p / block_size]; row i of the batch is written to
// slot slots[i] (block * block_size + offset; -1: a padding row, not written).
struct PagedKv {
  const std::vector<Tensor>* k = nullptr;  // per layer
  const std::vector<Tensor>* v = nullptr;
  Tensor slots;        // i32 [N]
  Tensor block_table;  // i32 [B, max_blocks]
  Tensor seq_lens;     // i32 [B]
  Tensor q_start;      // i32 [B + 1]
};

struct ForwardBatch {
  Tensor tokens;     // i32 [N] on the model's device, every item's tokens concatenated
  Tensor positions;  // i32 [N] on the model's device
  std::vector<BatchItem> items;  // the items on the host (padding rows of a graph bucket have none)
  Tensor logit_rows;  // i64 [R]: rows of N whose logits are returned (undefined: all N)
  PagedKv kv;
  // One item with no past: attention runs on the fresh keys and values (ops::attention, the
  // dense prefill kernel) instead of reading them back from the cache (they are stored all the same).
  bool dense_prefill = false;
  // The caller checked every token id against the vocabulary on the host: the embedding skips
  // its device read of the ids (needed inside a CUDA graph capture).
  bool tokens_checked = false;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Logits [R, vocab] in the compute dtype (f32 on the CPU by default).
  virtual Tensor forward(const ForwardBatch& batch) = 0;
  // The attention window of each layer (0: the layer attends to every earlier position).
  virtual std::vector<int64_t> attention_windows() const = 0;
  // Whether forward() can be captured into a CUDA graph: no host reads of device data and no
  // host synchronization (mixture-of-experts routing reads the router's choice on the host).
  virtual bool graph_capturable() const { return true; }
};

struct ArchOptions {
  Device device = Device::cpu();
  DType compute_dtype = DType::f32;
  // One linear for the q/k/v projections and one for gate/up (stacked weights, layers.h) where
  // their weights share dtype and layout. Free when the store was laid out by
  // layers::fuse_projection_weights (the engine does it), else the stacked weights are copies.
  bool fused_qkv = true;
  bool fused_gate_up = true;
};

// Builds the architecture named by config.arch from the weights (which must be on opts.device).
// Throws InvalidArgument listing supported_architectures() for an unknown arch, and naming the
// tensor for a missing or mis-shaped weight.
std::unique_ptr<CausalLM> create_causal_lm(const ModelConfig& config, const WeightStore& weights,
                                           const ArchOptions& opts);

}  // namespace flagos::model
