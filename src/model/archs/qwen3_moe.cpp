// Qwen3-MoE: Qwen3 attention (QK-norm) with mixture-of-experts MLPs (softmax router, top-k,
// optional renormalization); layers listed as dense in config.layer_is_moe keep a gated MLP.
#include "flagos/error.h"
#include "model/archs/archs.h"
#include "model/archs/prenorm_decoder.h"

namespace flagos::model::archs {

std::unique_ptr<CausalLM> create_qwen3_moe(const ModelConfig& c, const WeightStore& w, const ArchOptions& o) {
  FLAGOS_CHECK(c.num_experts > 0 && c.num_experts_per_tok > 0, "qwen3_moe: the config needs num_experts (",
               c.num_experts, ") and num_experts_per_tok (", c.num_experts_per_tok, ") > 0");
  return std::make_unique<PreNormDecoder>(c, w, o, layers::AttentionFlags{.bias = c.attention_bias, .qk_norm = true});
}

}  // namespace flagos::model::archs
