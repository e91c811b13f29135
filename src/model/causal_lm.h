// What an architecture implements for the engine: a forward pass over a batch of token runs,
// one run per sequence, with the keys and values kept by the caller (KvAccess), and the registry
// that builds an architecture from a loaded model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "flagos/model.h"
#include "flagos/tensor.h"

namespace flagos::model {

// Where the keys and values of each batch item's sequence live. The engine's KV cache implements
// it; a paged cache can replace it without the architectures changing.
class KvAccess {
 public:
  virtual ~KvAccess() = default;
  // Stores k and v [n, Hkv, D] (the item's new tokens, after rope) for `layer` at the item's
  // positions and returns the item's keys and values of positions [first, past + n) as
  // [1, Hkv, past + n - first, D] tensors (views) for the attention op, oldest first. first is 0
  // unless the layer has an attention window, where it may be as late as past + 1 - window (the
  // op's causal/window rule counts from the last key, so the dropped keys are never needed).
  virtual std::pair<Tensor, Tensor> store(int64_t layer, size_t item, const Tensor& k, const Tensor& v) = 0;
};

// One run of new tokens of one sequence. Its rows are [row, row + count) of the batch.
struct BatchItem {
  int64_t row = 0;
  int64_t count = 0;
  int64_t past = 0;  // tokens the sequence held before; the run's positions are past .. past + count - 1
};

struct ForwardBatch {
  Tensor tokens;     // i32 [N] on the model's device, every item's tokens concatenated
  Tensor positions;  // i32 [N] on the model's device
  std::vector<BatchItem> items;
  Tensor logit_rows;  // i64 [R]: rows of N whose logits are returned (undefined: all N)
  KvAccess* kv = nullptr;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Logits [R, vocab] in the compute dtype (f32 on the CPU by default).
  virtual Tensor forward(const ForwardBatch& batch) = 0;
  // The attention window of each layer (0: the layer attends to every earlier position). A KV
  // cache only needs to keep the last window - 1 positions of a windowed layer before new tokens.
  virtual std::vector<int64_t> attention_windows() const = 0;
};

struct ArchOptions {
  Device device = Device::cpu();
  DType compute_dtype = DType::f32;
};

// Builds the architecture named by config.arch from the weights (which must be on opts.device).
// Throws InvalidArgument listing supported_architectures() for an unknown arch, and naming the
// tensor for a missing or mis-shaped weight.
std::unique_ptr<CausalLM> create_causal_lm(const ModelConfig& config, const WeightStore& weights,
                                           const ArchOptions& opts);

}  // namespace flagos::model
