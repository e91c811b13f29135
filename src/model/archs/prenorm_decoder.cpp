// The Llama-style pre-norm decoder: see prenorm_decoder.h.
#include "model/archs/prenorm_decoder.h"

#include "flagos/ops.h"

namespace flagos::model::archs {

PreNormDecoder::PreNormDecoder(const ModelConfig& c, const WeightStore& w, const ArchOptions& o,
                               layers::AttentionFlags flags)
    : config_(c), dtype_(o.compute_dtype) {
  const layers::Activation act = layers::activation_of(c);
  flags.fused_qkv = o.fused_qkv;
  embed_ = layers::embedding_table(w, c);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = layers::layer_prefix(i);
    Layer l;
    l.attn_norm = layers::vector_param(w, p + "input_layernorm.weight", c.hidden_size);
    l.mlp_norm = layers::vector_param(w, p + "post_attention_layernorm.weight", c.hidden_size);
    l.attn = layers::Attention::load(w, p + "self_attn", c, i, flags);
    if (layers::layer_is_moe(c, i))
      l.moe = layers::MoeMlp::load(w, p + "mlp", c, act);
    else
      l.mlp = layers::GatedMlp::load(w, p + "mlp", c.hidden_size, c.intermediate_size, act, o.fused_gate_up);
    layers_.push_back(std::move(l));
  }
  norm_ = layers::vector_param(w, "model.norm.weight", c.hidden_size);
  head_ = layers::output_weight(w, c, embed_);
}

Tensor PreNormDecoder::forward(const ForwardBatch& batch) {
  const double eps = config_.rms_eps;
  Tensor h = layers::embed(embed_, batch, dtype_);
  Tensor x = ops::rms_norm(h, layers_.front().attn_norm, eps);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    Tensor a = l.attn.forward(x, batch, static_cast<int64_t>(i));
    x = ops::add_rms_norm(a, h, l.mlp_norm, eps, a);  // h += a; x = norm(h)
    Tensor m = l.moe ? l.moe->forward(x) : l.mlp->forward(x);
    if (i + 1 < layers_.size())
      x = ops::add_rms_norm(m, h, layers_[i + 1].attn_norm, eps, m);
    else
      ops::add(h, m, h);
  }
  return layers::output_logits(h, batch, norm_, eps, head_, config_.final_logit_softcap);
}

std::vector<int64_t> PreNormDecoder::attention_windows() const {
  std::vector<int64_t> w;
  for (const Layer& l : layers_) w.push_back(l.attn.params.window);
  return w;
}

bool PreNormDecoder::graph_capturable() const {
  for (const Layer& l : layers_)
    if (l.moe) return false;
  return true;
}

}  // namespace flagos::model::archs
