// The weights each architecture needs, by HF name and shape, and the check against a WeightStore.
#include <algorithm>

#include "flagos/error.h"
#include "flagos/model.h"

namespace flagos::model {

std::vector<ExpectedWeight> expected_weights(const ModelConfig& c) {
  std::vector<ExpectedWeight> r;
  const int64_t h = c.hidden_size, hd = c.head_dim, q = c.num_heads * hd, kv = c.num_kv_heads * hd;
  auto add = [&](std::string name, Shape shape, bool required = true) {
    r.push_back({std::move(name), shape, required});
  };
  add("model.embed_tokens.weight", {c.vocab_size, h});
  add("model.norm.weight", {h});
  if (!c.tie_embeddings) add("lm_head.weight", {c.vocab_size, h});
  const bool gemma = c.arch == "gemma3";
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {h});
    add(p + "post_attention_layernorm.weight", {h});
    if (gemma) {
      add(p + "pre_feedforward_layernorm.weight", {h});
      add(p + "post_feedforward_layernorm.weight", {h});
    }
    add(p + "self_attn.q_proj.weight", {q, h});
    add(p + "self_attn.k_proj.weight", {kv, h});
    add(p + "self_attn.v_proj.weight", {kv, h});
    add(p + "self_attn.o_proj.weight", {h, q});
    add(p + "self_attn.q_proj.bias", {q}, c.attention_bias);
    add(p + "self_attn.k_proj.bias", {kv}, c.attention_bias);
    add(p + "self_attn.v_proj.bias", {kv}, c.attention_bias);
    add(p + "self_attn.o_proj.bias", {h}, false);
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {hd});
      add(p + "self_attn.k_norm.weight", {hd});
    }
    const bool moe = c.layer_is_moe.empty() ? c.num_experts > 0 : c.layer_is_moe[static_cast<size_t>(i)];
    if (moe) {
      const int64_t e = c.num_experts, m = c.moe_intermediate_size;
      add(p + "mlp.gate.weight", {e, h});
      add(p + "mlp.experts.gate_proj", {e, m, h});
      add(p + "mlp.experts.up_proj", {e, m, h});
      add(p + "mlp.experts.down_proj", {e, h, m});
    } else {
      add(p + "mlp.gate_proj.weight", {c.intermediate_size, h});
      add(p + "mlp.up_proj.weight", {c.intermediate_size, h});
      add(p + "mlp.down_proj.weight", {h, c.intermediate_size});
    }
  }
  return r;
}

void validate_weights(const ModelConfig& c, const WeightStore& w) {
  std::vector<std::string> missing;
  for (const auto& e : expected_weights(c)) {
    const Tensor* t = w.find(e.name);
    if (!t) {
      if (e.required) missing.push_back(e.name);
      continue;
    }
    if (t->shape() != e.shape)
      fail<InvalidArgument>(w.source, ": tensor '", e.name, "' has shape ", t->shape(), ", ", c.arch, " with this config needs ",
                            e.shape);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    fail<InvalidArgument>(w.source, ": missing tensors that ", c.arch, " needs: ", list, " (the file has ", w.size(),
                          " tensors)");
  }
}

}  // namespace flagos::model
