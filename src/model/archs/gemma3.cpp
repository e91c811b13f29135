// Gemma 3 (text): embeddings scaled by sqrt(hidden); per layer norms before and after both the
// attention and the MLP; QK-norm; attention scale query_pre_attn_scalar^-0.5; sliding-window
// (local) layers with their own rope base and no rope scaling, interleaved with global layers
// (config.layer_is_sliding; the 5 local : 1 global pattern when the config gives none); GeGLU MLP
// with tanh gelu; tied embeddings; optional final logit softcap. Norm weights arrive with Gemma's
// +1 already added by the loaders.
#include <vector>

#include "flagos/error.h"
#include "flagos/ops.h"
#include "model/archs/archs.h"
#include "model/layers.h"

namespace flagos::model::archs {
namespace {

class Gemma3 final : public CausalLM {
 public:
  Gemma3(const ModelConfig& cfg, const WeightStore& w, const ArchOptions& o) : config_(cfg), dtype_(o.compute_dtype) {
    ModelConfig& c = config_;
    if (c.layer_is_sliding.empty() && c.sliding_window > 0)
      for (int64_t i = 0; i < c.num_layers; ++i) c.layer_is_sliding.push_back((i + 1) % 6 != 0);
    embed_ = layers::embedding_table(w, c);
    embed_scale_ = layers::gemma_embed_scale(c, embed_);
    const layers::Activation act = layers::activation_of(c);
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = layers::layer_prefix(i);
      Layer l;
      l.input_norm = layers::vector_param(w, p + "input_layernorm.weight", c.hidden_size);
      l.post_attn_norm = layers::vector_param(w, p + "post_attention_layernorm.weight", c.hidden_size);
      l.pre_mlp_norm = layers::vector_param(w, p + "pre_feedforward_layernorm.weight", c.hidden_size);
      l.post_mlp_norm = layers::vector_param(w, p + "post_feedforward_layernorm.weight", c.hidden_size);
      l.attn = layers::Attention::load(w, p + "self_attn", c, i,
                                       {.bias = c.attention_bias, .qk_norm = true, .fused_qkv = o.fused_qkv});
      if (layers::layer_is_sliding(c, i)) {
        if (c.rope_local_theta > 0) l.attn.rope.theta = c.rope_local_theta;
        l.attn.rope.scaling = RopeScaling::none;
        l.attn.rope.factor = 1.0;
      }
      l.mlp = layers::GatedMlp::load(w, p + "mlp", c.hidden_size, c.intermediate_size, act, o.fused_gate_up);
      layers_.push_back(std::move(l));
    }
    norm_ = layers::vector_param(w, "model.norm.weight", c.hidden_size);
    head_ = layers::output_weight(w, c, embed_);
  }

  Tensor forward(const ForwardBatch& batch) override {
    const double eps = config_.rms_eps;
    Tensor h = layers::embed(embed_, batch, dtype_, embed_scale_);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      Tensor a = l.attn.forward(ops::rms_norm(h, l.input_norm, eps), batch, static_cast<int64_t>(i));
      ops::rms_norm(a, l.post_attn_norm, eps, a);
      Tensor x = ops::add_rms_norm(a, h, l.pre_mlp_norm, eps, a);  // h += a; x = norm(h)
      Tensor m = l.mlp.forward(x);
      ops::rms_norm(m, l.post_mlp_norm, eps, m);
      ops::add(h, m, h);
    }
    return layers::output_logits(h, batch, norm_, eps, head_, config_.final_logit_softcap);
  }

  std::vector<int64_t> attention_windows() const override {
    std::vector<int64_t> w;
    for (const Layer& l : layers_) w.push_back(l.attn.params.window);
    return w;
  }

 private:
  struct Layer {
    Tensor input_norm, post_attn_norm, pre_mlp_norm, post_mlp_norm;
    layers::Attention attn;
    layers::GatedMlp mlp;
  };
  ModelConfig config_;
  DType dtype_;
  Tensor embed_, norm_, head_;
  double embed_scale_ = 1.0;
  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<CausalLM> create_gemma3(const ModelConfig& c, const WeightStore& w, const ArchOptions& o) {
  FLAGOS_CHECK(c.num_experts == 0, "gemma3: mixture-of-experts configs are not supported (", c.num_experts,
               " experts)");
  return std::make_unique<Gemma3>(c, w, o);
}

}  // namespace flagos::model::archs
