// The architecture registry: config.arch -> the architecture's factory, after checking the parts
// of the config every architecture relies on.
#include <utility>

#include "flagos/error.h"
#include "model/archs/archs.h"

namespace flagos::model {
namespace {

using Factory = std::unique_ptr<CausalLM> (*)(const ModelConfig&, const WeightStore&, const ArchOptions&);

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"llama", &archs::create_llama},         {"qwen2", &archs::create_qwen2},
      {"qwen3", &archs::create_qwen3},         {"qwen3_moe", &archs::create_qwen3_moe},
      {"gemma3", &archs::create_gemma3},
  };
  return r;
}

void check_config(const ModelConfig& c) {
  const char* a = c.arch.c_str();
  FLAGOS_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0, a, ": config needs vocab_size (",
               c.vocab_size, "), hidden_size (", c.hidden_size, ") and num_layers (", c.num_layers, ") > 0");
  FLAGOS_CHECK(c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0 && c.head_dim > 0, a,
               ": config has num_heads ", c.num_heads, ", num_kv_heads ", c.num_kv_heads, ", head_dim ", c.head_dim,
               " (need heads > 0, a multiple of kv heads, head_dim > 0)");
  FLAGOS_CHECK(c.rms_eps >= 0, a, ": rms_eps must be >= 0, got ", c.rms_eps);
  FLAGOS_CHECK(c.sliding_window >= 0, a, ": sliding_window must be >= 0, got ", c.sliding_window);
  const auto n = static_cast<size_t>(c.num_layers);
  FLAGOS_CHECK(c.layer_is_sliding.empty() || c.layer_is_sliding.size() == n, a, ": layer_is_sliding has ",
               c.layer_is_sliding.size(), " entries for ", n, " layers");
  FLAGOS_CHECK(c.layer_is_moe.empty() || c.layer_is_moe.size() == n, a, ": layer_is_moe has ", c.layer_is_moe.size(),
               " entries for ", n, " layers");
  FLAGOS_CHECK(c.attn_logit_softcap >= 0 && c.final_logit_softcap >= 0, a, ": softcaps must be >= 0, got ",
               c.attn_logit_softcap, " and ", c.final_logit_softcap);
}

}  // namespace

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> r;
    for (const auto& [name, f] : registry()) r.push_back(name);
    return r;
  }();
  return names;
}

std::unique_ptr<CausalLM> create_causal_lm(const ModelConfig& config, const WeightStore& weights,
                                           const ArchOptions& opts) {
  for (const auto& [name, factory] : registry()) {
    if (name != config.arch) continue;
    check_config(config);
    FLAGOS_CHECK(opts.compute_dtype == DType::f32 || opts.compute_dtype == DType::bf16 ||
                     opts.compute_dtype == DType::f16,
                 config.arch, ": compute dtype must be f32, bf16 or f16, got ", opts.compute_dtype);
    return factory(config, weights, opts);
  }
  std::string list;
  for (const auto& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
  fail<InvalidArgument>("model '", config.name, "' (", weights.source, "): architecture '", config.arch,
                        "' is not supported; supported architectures: ", list);
}

}  // namespace flagos::model
