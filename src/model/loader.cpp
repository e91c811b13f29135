// load_model: picks the GGUF or Hugging Face loader, then the steps they share: config checks,
// dtype conversion / on-load quantization / device placement of the weights, weight checks.
#include <cmath>
#include <filesystem>
#include <map>

#include "flagos/error.h"
#include "flagos/ops.h"
#include "model/loaders.h"

namespace flagos::model {

namespace loaders {
namespace {

// Linear-layer weights (quantized by LoadOptions::quant); embeddings, norms and the MoE router stay.
bool is_linear_weight(const std::string& n) {
  return n.ends_with("_proj.weight") || n == "lm_head.weight" || n.ends_with(".mlp.experts.gate_proj") ||
         n.ends_with(".mlp.experts.up_proj") || n.ends_with(".mlp.experts.down_proj");
}

int64_t source_bytes(const SourceWeight& w) {
  if (w.expert_parts.empty()) return static_cast<int64_t>(w.tensor.nbytes());
  int64_t b = 0;
  for (const auto& p : w.expert_parts) b += static_cast<int64_t>(p.nbytes());
  return b;
}

Tensor stack_experts(const SourceWeight& w, DType target, const std::string& source) {
  const Tensor& first = w.expert_parts[0];
  for (const auto& p : w.expert_parts)
    if (p.dim() != 2 || p.shape() != first.shape() || !is_float(p.dtype()))
      fail<InvalidArgument>(source, ": experts of '", w.name, "' must be float matrices of one shape; found ",
                            p.describe(), " and ", first.describe());
  const int64_t experts = static_cast<int64_t>(w.expert_parts.size());
  Tensor stacked = Tensor::empty({experts, first.size(0), first.size(1)}, target);
  for (int64_t e = 0; e < experts; ++e) {
    Tensor dst = stacked.select(0, e);
    ops::copy(dst, w.expert_parts[static_cast<size_t>(e)]);
  }
  return stacked;
}

Tensor plus_one(const Tensor& w, DType target) {
  Tensor f = Tensor::empty(w.shape(), DType::f32);
  ops::copy(f, w);  // always a fresh buffer: the source may be a read-only mapping
  float* p = f.data_as<float>();
  for (int64_t i = 0; i < f.numel(); ++i) p[i] += 1.0f;
  return target == DType::f32 ? f : ops::cast(f, target);
}

}  // namespace

void finish_weights(std::vector<SourceWeight>& src, const LoadOptions& opts, std::optional<DType> default_dtype,
                    WeightStore& out) {
  if (opts.dtype && *opts.dtype != DType::f32 && *opts.dtype != DType::bf16 && *opts.dtype != DType::f16)
    fail<InvalidArgument>("load_model: dtype ", *opts.dtype, " is not a weight dtype (f32, bf16, f16)");
  if (opts.quant && !is_quant(*opts.quant))
    fail<InvalidArgument>("load_model: quant ", *opts.quant, " is not a block-quantized dtype (e.g. q8_0)");
  int64_t total = 0, done = 0;
  for (const auto& w : src) total += source_bytes(w);
  if (opts.progress) opts.progress(0, total);
  for (auto& w : src) {
    Tensor t;
    const DType own = w.expert_parts.empty() ? w.tensor.dtype() : w.expert_parts[0].dtype();
    const DType target = opts.dtype ? *opts.dtype : default_dtype ? *default_dtype : own;
    if (!w.expert_parts.empty()) {
      t = stack_experts(w, is_float(own) ? target : own, out.source);
    } else if (!is_float(w.tensor.dtype())) {
      t = w.tensor;  // block-quantized or integer: as stored
    } else if (w.add_one) {
      t = plus_one(w.tensor, target);
    } else {
      t = target == w.tensor.dtype() ? w.tensor : ops::cast(w.tensor, target);
    }
    if (opts.quant && is_linear_weight(w.name) && is_float(t.dtype()) && t.dim() >= 2 &&
        t.size(-1) % static_cast<int64_t>(dtype_info(*opts.quant).block_elems) == 0)
      t = ops::quantize(t.dtype() == DType::f32 ? t : ops::cast(t, DType::f32), *opts.quant);
    if (!(opts.device == Device::cpu())) t = t.to(opts.device);
    done += source_bytes(w);
    const std::string name = std::move(w.name);
    w = SourceWeight{};  // drop the source (frees converted copies early)
    out.add(name, std::move(t));
    if (opts.progress) opts.progress(done, total);
  }
}

void validate_config(const ModelConfig& c, const std::string& path) {
  auto check = [&](bool ok, auto&&... what) {
    if (!ok) fail<InvalidArgument>(path, ": ", what...);
  };
  check(std::find(supported_architectures().begin(), supported_architectures().end(), c.arch) !=
            supported_architectures().end(),
        "architecture '", c.arch, "' is not supported");
  check(c.vocab_size >= 1 && c.vocab_size <= (1 << 24), "vocab size ", c.vocab_size, " is outside 1..2^24");
  check(c.hidden_size >= 1 && c.hidden_size <= (1 << 18), "hidden size ", c.hidden_size, " is outside 1..2^18");
  check(c.num_layers >= 1 && c.num_layers <= 4096, "layer count ", c.num_layers, " is outside 1..4096");
  check(c.num_heads >= 1 && c.num_heads <= (1 << 16), "head count ", c.num_heads, " is invalid");
  check(c.num_kv_heads >= 1 && c.num_heads % c.num_kv_heads == 0, "kv head count ", c.num_kv_heads,
        " must be >= 1 and divide the head count ", c.num_heads);
  check(c.head_dim >= 2 && c.head_dim <= 4096 && c.head_dim % 2 == 0, "head dim ", c.head_dim,
        " must be even and in 2..4096");
  check(c.rope.rotary_dim >= 2 && c.rope.rotary_dim <= c.head_dim && c.rope.rotary_dim % 2 == 0, "rotary dim ",
        c.rope.rotary_dim, " must be even and in 2..head_dim");
  check(c.max_position >= 0, "context length ", c.max_position, " is negative");
  check(std::isfinite(c.rms_eps) && c.rms_eps > 0, "rms eps ", c.rms_eps, " must be finite and > 0");
  check(std::isfinite(c.rope.theta) && c.rope.theta > 0, "rope theta ", c.rope.theta, " must be finite and > 0");
  check(std::isfinite(c.rope.factor) && c.rope.factor > 0, "rope scaling factor ", c.rope.factor, " must be > 0");
  check(c.rope_local_theta >= 0 && std::isfinite(c.rope_local_theta), "local rope theta ", c.rope_local_theta,
        " is invalid");
  const bool all_moe = c.num_experts > 0 && c.layer_is_moe.empty();
  const bool any_dense = !all_moe && (c.layer_is_moe.empty() ||
                                      std::find(c.layer_is_moe.begin(), c.layer_is_moe.end(), false) != c.layer_is_moe.end());
  check(!any_dense || (c.intermediate_size >= 1 && c.intermediate_size <= (1 << 20)), "intermediate size ",
        c.intermediate_size, " is outside 1..2^20");
  if (c.num_experts > 0 || !c.layer_is_moe.empty()) {
    check(c.num_experts >= 1 && c.num_experts <= 4096, "expert count ", c.num_experts, " is outside 1..4096");
    check(c.num_experts_per_tok >= 1 && c.num_experts_per_tok <= c.num_experts, "experts per token ",
          c.num_experts_per_tok, " is outside 1..", c.num_experts);
    check(c.moe_intermediate_size >= 1 && c.moe_intermediate_size <= (1 << 20), "expert intermediate size ",
          c.moe_intermediate_size, " is outside 1..2^20");
  }
  check(c.layer_is_moe.empty() || static_cast<int64_t>(c.layer_is_moe.size()) == c.num_layers,
        "per-layer MoE flags: ", c.layer_is_moe.size(), " for ", c.num_layers, " layers");
  check(c.layer_is_sliding.empty() || static_cast<int64_t>(c.layer_is_sliding.size()) == c.num_layers,
        "per-layer sliding-window flags: ", c.layer_is_sliding.size(), " for ", c.num_layers, " layers");
  check(c.sliding_window >= 0, "sliding window ", c.sliding_window, " is negative");
  check(c.layer_is_sliding.empty() || c.sliding_window > 0, "sliding-window layers need a window > 0");
  check(c.query_pre_attn_scalar >= 0 && c.attn_logit_softcap >= 0 && c.final_logit_softcap >= 0,
        "query_pre_attn_scalar and softcaps must be >= 0");
  check(c.bos_token_id >= -1 && c.bos_token_id < c.vocab_size, "bos token id ", c.bos_token_id,
        " is outside the vocabulary of ", c.vocab_size);
  for (int64_t id : c.eos_token_ids)
    check(id >= 0 && id < c.vocab_size, "eos token id ", id, " is outside the vocabulary of ", c.vocab_size);
}

}  // namespace loaders

LoadedModel load_model(const std::string& path, const LoadOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LoadedModel lm;
  if (fs::is_directory(path, ec)) {
    lm = loaders::load_hf_dir(path, opts);
  } else if (fs::is_regular_file(path, ec)) {
    lm = loaders::load_gguf(path, opts);
  } else {
    fail<InvalidArgument>(path, ": no such file or directory (expected a .gguf file or a Hugging Face model directory)");
  }
  validate_weights(lm.config, lm.weights);
  // The dtype most weight bytes are in.
  std::map<DType, int64_t> bytes;
  for (const auto& n : lm.weights.names()) {
    const Tensor& t = lm.weights.get(n);
    bytes[t.dtype()] += static_cast<int64_t>(t.nbytes());
  }
  int64_t best = -1;
  for (const auto& [d, b] : bytes)
    if (b > best) best = b, lm.config.weight_dtype = d;
  return lm;
}

}  // namespace flagos::model
