// The Llama-style pre-norm decoder shared by llama, qwen2, qwen3 and qwen3_moe:
//   h = embed(tokens); per layer: h += attn(norm(h)); h += mlp(norm(h)); logits = head(norm(h)).
// The MLP of a layer is gated (SiLU) or a mixture of experts (config.layer_is_moe).
#pragma once
#include <optional>
#include <vector>

#include "model/causal_lm.h"
#include "model/layers.h"

namespace flagos::model::archs {

class PreNormDecoder final : public CausalLM {
 public:
  PreNormDecoder(const ModelConfig& c, const WeightStore& w, const ArchOptions& o, layers::AttentionFlags flags);
  Tensor forward(const ForwardBatch& batch) override;
  std::vector<int64_t> attention_windows() const override;
  bool graph_capturable() const override;  // false with MoE layers (routing reads the host)

 private:
  struct Layer {
    Tensor attn_norm, mlp_norm;
    layers::Attention attn;
    std::optional<layers::GatedMlp> mlp;
    std::optional<layers::MoeMlp> moe;
  };
  ModelConfig config_;
  DType dtype_;
  Tensor embed_, norm_, head_;
  std::vector<Layer> layers_;
};

}  // namespace flagos::model::archs
