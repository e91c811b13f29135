// Llama 1/2/3: the pre-norm decoder with GQA, rope (Llama 3.1 frequency scaling arrives in the
// config's RopeParams) and a SiLU-gated MLP; attention biases when the config asks for them.
#include "flagos/error.h"
#include "model/archs/archs.h"
#include "model/archs/prenorm_decoder.h"

namespace flagos::model::archs {

std::unique_ptr<CausalLM> create_llama(const ModelConfig& c, const WeightStore& w, const ArchOptions& o) {
  FLAGOS_CHECK(c.num_experts == 0, "llama: mixture-of-experts configs are not supported (", c.num_experts,
               " experts)");
  return std::make_unique<PreNormDecoder>(c, w, o, layers::AttentionFlags{.bias = c.attention_bias, .qk_norm = false});
}

}  // namespace flagos::model::archs
