// GGUF -> LoadedModel: ModelConfig from "<arch>.*" metadata, TokenizerSource from
// "tokenizer.ggml.*", llama.cpp tensor names mapped onto Hugging Face names.
// Key names follow the GGUF spec / gguf-py constants; model facts follow llama.cpp's loader
// (gemma3: every 6th layer global, sliding-window layers use rope base 10000).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <set>

#include "flagos/error.h"
#include "model/loaders.h"

namespace flagos::model::loaders {
namespace {

struct ArchName {
  const char* gguf;
  const char* flagos;
};
constexpr ArchName kArchs[] = {
    {"llama", "llama"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"}, {"qwen3moe", "qwen3_moe"}, {"gemma3", "gemma3"},
};

std::string supported_list() {
  std::string s;
  for (const auto& a : supported_architectures()) s += (s.empty() ? "" : ", ") + a;
  return s;
}

// Typed metadata access with defaults; type errors name the file and key (from gguf::Value).
class Meta {
 public:
  Meta(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  const gguf::Value* find(const std::string& key) const { return f_.find(key); }
  const gguf::Value* arch_key(const std::string& suffix) const { return f_.find(arch_ + "." + suffix); }
  int64_t arch_int(const std::string& suffix) const { return per_layer_int(f_.get(arch_ + "." + suffix)); }
  int64_t arch_int(const std::string& suffix, int64_t def) const {
    const gguf::Value* v = arch_key(suffix);
    return v ? per_layer_int(*v) : def;
  }
  double arch_double(const std::string& suffix, double def) const {
    const gguf::Value* v = arch_key(suffix);
    return v ? v->as_double() : def;
  }
  int64_t int_or(const std::string& key, int64_t def) const {
    const gguf::Value* v = find(key);
    return v ? v->as_int() : def;
  }
  bool bool_or(const std::string& key, bool def) const {
    const gguf::Value* v = find(key);
    return v ? v->as_bool() : def;
  }
  std::string string_or(const std::string& key, const std::string& def) const {
    const gguf::Value* v = find(key);
    return v ? v->as_string() : def;
  }

 private:
  // Some keys (feed_forward_length, head_count) may be per-layer arrays; flagos needs them uniform.
  int64_t per_layer_int(const gguf::Value& v) const {
    if (v.type() != gguf::ValueType::array) return v.as_int();
    const std::vector<int64_t> xs = v.as_ints();
    if (xs.empty()) fail<InvalidArgument>(f_.path(), ": ", v.describe(), ": empty per-layer array");
    for (int64_t x : xs)
      if (x != xs[0])
        fail<NotSupported>(f_.path(), ": per-layer values that differ between layers are not supported (",
                           v.describe(), ")");
    return xs[0];
  }
  const gguf::File& f_;
  std::string arch_;
};

// Llama 3.x GGUF files carry the llama3 rope scaling as per-frequency factors (tensor rope_freqs):
// factor_i = 1 / ((1 - s_i) / factor + s_i), s_i = (orig / wavelen_i - low) / (high - low) clamped
// to [0, 1]. Recovers (factor, low, high, orig) with low = 1 (every Llama 3.x release) and checks
// that they reproduce every factor.
void rope_from_freq_factors(const gguf::File& f, const gguf::TensorInfo& ti, RopeParams& rope) {
  const std::string field = f.path() + ": tensor 'rope_freqs.weight'";
  if (ti.dtype != DType::f32 || ti.shape.size() != 1 || ti.shape[0] * 2 != rope.rotary_dim)
    fail<InvalidArgument>(field, ": expected f32[", rope.rotary_dim / 2, "], found ", dtype_name(ti.dtype), ti.shape);
  const std::vector<float> fac = f.tensor(ti).to_vector<float>();
  const int64_t n = static_cast<int64_t>(fac.size());
  auto wavelen = [&](int64_t i) {
    return 2.0 * std::numbers::pi * std::pow(rope.theta, 2.0 * static_cast<double>(i) / static_cast<double>(rope.rotary_dim));
  };
  const double factor = *std::max_element(fac.begin(), fac.end());
  if (!(factor >= 1.0) || !std::isfinite(factor)) fail<InvalidArgument>(field, ": factors must be finite and >= 1");
  if (factor == 1.0) return;  // no scaling
  // s as a linear function of 1/wavelen over the entries strictly between the two plateaus.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double fi = fac[static_cast<size_t>(i)];
    if (fi > 1.0 + 1e-6 && fi < factor * (1 - 1e-6)) {
      const double s = (1.0 / fi - 1.0 / factor) / (1.0 - 1.0 / factor);
      const double x = 1.0 / wavelen(i);
      sx += x, sy += s, sxx += x * x, sxy += x * s, ++m;
    }
  }
  const double det = m * sxx - sx * sx;
  if (m < 2 || det <= 0)
    fail<NotSupported>(field, ": rope frequency factors that do not follow the llama3 rule are not supported");
  const double a = (m * sxy - sx * sy) / det, b = (sy - a * sx) / m;  // s = a / wavelen + b
  const double low = 1.0, high = 1.0 - 1.0 / b, orig = -a / b;
  if (!(b < 0) || !(a > 0))
    fail<NotSupported>(field, ": rope frequency factors that do not follow the llama3 rule are not supported");
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::clamp((orig / wavelen(i) - low) / (high - low), 0.0, 1.0);
    const double expect = 1.0 / ((1.0 - s) / factor + s);
    if (std::abs(expect - fac[static_cast<size_t>(i)]) > 1e-3 * expect)
      fail<NotSupported>(field, ": factor ", i, " is ", fac[static_cast<size_t>(i)], " but the llama3 rule gives ",
                         expect, "; other rope frequency factors are not supported");
  }
  rope.scaling = RopeScaling::llama3;
  rope.factor = factor;
  rope.llama3_low_freq_factor = low;
  rope.llama3_high_freq_factor = std::round(high * 1e6) / 1e6;
  rope.original_max_position = std::llround(orig);
}

}  // namespace

ModelConfig config_from_gguf(const gguf::File& f) {
  const std::string& path = f.path();
  const std::string garch = f.get("general.architecture").as_string();
  ModelConfig c;
  for (const auto& a : kArchs)
    if (garch == a.gguf) c.arch = a.flagos;
  if (c.arch.empty())
    fail<InvalidArgument>(path, ": general.architecture: '", garch, "' is not supported (supported: ", supported_list(),
                          ")");
  Meta m(f, garch);
  c.name = m.string_or("general.name", std::filesystem::path(path).stem().string());
  c.num_layers = m.arch_int("block_count");
  c.hidden_size = m.arch_int("embedding_length");
  c.intermediate_size = m.arch_int("feed_forward_length", 0);
  c.num_heads = m.arch_int("attention.head_count");
  c.num_kv_heads = m.arch_int("attention.head_count_kv", c.num_heads);
  c.head_dim = m.arch_int("attention.key_length", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
  const int64_t value_dim = m.arch_int("attention.value_length", c.head_dim);
  if (value_dim != c.head_dim)
    fail<NotSupported>(path, ": ", garch, ".attention.value_length ", value_dim, " differs from key_length ", c.head_dim);
  c.max_position = m.arch_int("context_length", 0);
  c.rms_eps = m.arch_double("attention.layer_norm_rms_epsilon", 1e-6);

  // Vocabulary: the embedding table is authoritative (it may be padded past the token list).
  if (const gguf::TensorInfo* e = f.find_tensor("token_embd.weight"); e && e->shape.size() == 2)
    c.vocab_size = e->shape[0];
  else if (const gguf::Value* v = m.arch_key("vocab_size"))
    c.vocab_size = v->as_int();
  else if (const gguf::Value* t = m.find("tokenizer.ggml.tokens"))
    c.vocab_size = static_cast<int64_t>(t->array_size());

  // Rope.
  c.rope.head_dim = c.head_dim;
  c.rope.rotary_dim = m.arch_int("rope.dimension_count", c.head_dim);
  c.rope.theta = m.arch_double("rope.freq_base", 10000.0);
  c.rope.layout = c.arch == "llama" ? RopeLayout::gptj : RopeLayout::neox;  // llama.cpp permutes Llama q/k
  std::string scaling = m.string_or(garch + ".rope.scaling.type", "");
  double factor = m.arch_double("rope.scaling.factor", 0.0);
  if (scaling.empty() && m.arch_key("rope.scale_linear")) {  // older files
    scaling = "linear";
    factor = m.arch_double("rope.scale_linear", 1.0);
  }
  if (scaling == "linear") {
    c.rope.scaling = RopeScaling::linear;
    c.rope.factor = factor;
  } else if (scaling == "yarn") {
    c.rope.scaling = RopeScaling::yarn;
    c.rope.factor = factor;
    c.rope.original_max_position = m.arch_int("rope.scaling.original_context_length", 0);
    c.rope.yarn_beta_fast = m.arch_double("rope.scaling.yarn_beta_fast", c.rope.yarn_beta_fast);
    c.rope.yarn_beta_slow = m.arch_double("rope.scaling.yarn_beta_slow", c.rope.yarn_beta_slow);
    c.rope.yarn_attn_factor = m.arch_double("rope.scaling.attn_factor", 0.0);  // <= 0: default mscale
  } else if (!scaling.empty() && scaling != "none") {
    fail<NotSupported>(path, ": ", garch, ".rope.scaling.type '", scaling, "' is not supported (none, linear, yarn)");
  }
  if (c.rope.scaling != RopeScaling::none && !(c.rope.factor > 0))
    fail<InvalidArgument>(path, ": ", garch, ".rope.scaling.factor: ", c.rope.factor, " must be > 0");
  if (const gguf::TensorInfo* rf = f.find_tensor("rope_freqs.weight")) rope_from_freq_factors(f, *rf, c.rope);

  const gguf::TensorInfo* q_bias = f.find_tensor("blk.0.attn_q.bias");
  c.attention_bias = q_bias != nullptr;
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;

  if (c.arch == "qwen3_moe") {
    c.num_experts = m.arch_int("expert_count");
    c.num_experts_per_tok = m.arch_int("expert_used_count");
    c.moe_intermediate_size = m.arch_int("expert_feed_forward_length", 0);
    if (c.moe_intermediate_size == 0) {  // older files: the expert tensors say it
      if (const gguf::TensorInfo* g = f.find_tensor("blk.0.ffn_gate_exps.weight"); g && g->shape.size() == 3)
        c.moe_intermediate_size = g->shape[1];
    }
    c.norm_topk_prob = m.bool_or(garch + ".expert_weights_norm", true);  // llama.cpp normalizes for qwen3moe
  }
  if (c.arch == "gemma3") {
    c.hidden_act = "gelu_tanh";
    c.embed_scale_sqrt_hidden = true;
    c.sliding_window = m.arch_int("attention.sliding_window", 0);
    if (c.sliding_window > 0) {
      c.layer_is_sliding.resize(static_cast<size_t>(std::clamp<int64_t>(c.num_layers, 0, 4096)));
      for (size_t i = 0; i < c.layer_is_sliding.size(); ++i) c.layer_is_sliding[i] = (i + 1) % 6 != 0;
      c.rope_local_theta = m.arch_double("rope.freq_base_swa", 10000.0);
    }
    // Gemma 3 27B (62 layers) scales queries by hidden/heads, the others by head_dim (as llama.cpp).
    c.query_pre_attn_scalar = c.num_layers == 62 && c.num_heads > 0 ? static_cast<double>(c.hidden_size / c.num_heads)
                                                                     : static_cast<double>(c.head_dim);
    c.attn_logit_softcap = m.arch_double("attn_logit_softcapping", 0.0);
    c.final_logit_softcap = m.arch_double("final_logit_softcapping", 0.0);
  }
  c.bos_token_id = m.int_or("tokenizer.ggml.bos_token_id", -1);
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int64_t id = m.int_or(k, -1);
    if (id >= 0 && std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(id);
  }
  validate_config(c, path);
  return c;
}

std::shared_ptr<TokenizerSource> tokenizer_from_gguf(const gguf::File& f) {
  const std::string& path = f.path();
  Meta m(f, "");
  auto t = std::make_shared<TokenizerSource>();
  t->json_path = path;
  const std::string model = f.get("tokenizer.ggml.model").as_string();
  if (model == "gpt2") {
    t->kind = TokenizerSource::Kind::bpe;
  } else if (model == "llama") {
    t->kind = TokenizerSource::Kind::spm;
  } else {
    fail<NotSupported>(path, ": tokenizer.ggml.model '", model, "' is not supported (gpt2 = BPE, llama = SentencePiece)");
  }
  t->tokens = f.get("tokenizer.ggml.tokens").as_strings();
  const size_t n = t->tokens.size();
  if (n == 0) fail<InvalidArgument>(path, ": tokenizer.ggml.tokens: empty vocabulary");
  if (const gguf::Value* s = f.find("tokenizer.ggml.scores")) {
    const std::vector<double> d = s->as_doubles();
    if (d.size() != n)
      fail<InvalidArgument>(path, ": tokenizer.ggml.scores: ", d.size(), " scores for ", n, " tokens");
    t->scores.assign(d.begin(), d.end());
  }
  if (const gguf::Value* s = f.find("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> d = s->as_ints();
    if (d.size() != n)
      fail<InvalidArgument>(path, ": tokenizer.ggml.token_type: ", d.size(), " types for ", n, " tokens");
    t->token_types.reserve(n);
    for (int64_t x : d) {
      if (x < 0 || x > 6) fail<InvalidArgument>(path, ": tokenizer.ggml.token_type: unknown type ", x);
      t->token_types.push_back(static_cast<int32_t>(x));
    }
  }
  if (const gguf::Value* mv = f.find("tokenizer.ggml.merges")) {
    std::vector<std::string> merges = mv->as_strings();
    t->merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const size_t sp = merges[i].find(' ', 1);  // a merge is "left right"; left is never empty
      if (sp == std::string::npos || sp + 1 >= merges[i].size())
        fail<InvalidArgument>(path, ": tokenizer.ggml.merges[", i, "]: '", merges[i], "' is not \"left right\"");
      t->merges.emplace_back(merges[i].substr(0, sp), merges[i].substr(sp + 1));
    }
  }
  t->pre = m.string_or("tokenizer.ggml.pre", "");
  auto id = [&](const char* key) -> int32_t {
    const int64_t v = m.int_or(key, -1);
    if (v < -1 || v >= static_cast<int64_t>(n))
      fail<InvalidArgument>(path, ": ", key, ": id ", v, " is outside the vocabulary of ", n, " tokens");
    return static_cast<int32_t>(v);
  };
  t->bos_id = id("tokenizer.ggml.bos_token_id");
  t->eos_id = id("tokenizer.ggml.eos_token_id");
  t->unk_id = id("tokenizer.ggml.unknown_token_id");
  t->pad_id = id("tokenizer.ggml.padding_token_id");
  auto add_eog = [&](int32_t v) {
    if (v >= 0 && std::find(t->eos_ids.begin(), t->eos_ids.end(), v) == t->eos_ids.end()) t->eos_ids.push_back(v);
  };
  add_eog(t->eos_id);
  add_eog(id("tokenizer.ggml.eot_token_id"));
  add_eog(id("tokenizer.ggml.eom_token_id"));
  // Chat models end turns with control tokens the metadata may not name as eos/eot.
  static const std::set<std::string> kEndOfTurn = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>",
                                                    "<end_of_turn>", "<|endoftext|>"};
  if (t->token_types.size() == n)
    for (size_t i = 0; i < n; ++i)
      if (t->token_types[i] == 3 && kEndOfTurn.count(t->tokens[i])) add_eog(static_cast<int32_t>(i));
  const bool spm = t->kind == TokenizerSource::Kind::spm;
  t->add_bos = m.bool_or("tokenizer.ggml.add_bos_token", spm);
  t->add_eos = m.bool_or("tokenizer.ggml.add_eos_token", false);
  t->add_space_prefix = m.bool_or("tokenizer.ggml.add_space_prefix", spm);
  t->byte_fallback = spm;
  return t;
}

std::string hf_name_from_gguf(const std::string& g, const std::string& arch) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  if (g.rfind("blk.", 0) != 0) return g;
  const size_t dot = g.find('.', 4);
  if (dot == std::string::npos) return g;
  const std::string layer = g.substr(4, dot - 4);
  if (layer.empty() || !std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return g;
  const std::string rest = g.substr(dot + 1);  // "attn_q.weight"
  const size_t d2 = rest.rfind('.');
  if (d2 == std::string::npos) return g;
  const std::string base = rest.substr(0, d2), suffix = rest.substr(d2);  // "attn_q", ".weight"
  const bool gemma = arch == "gemma3";
  static const std::pair<const char*, const char*> kCommon[] = {
      {"attn_q", "self_attn.q_proj"},       {"attn_k", "self_attn.k_proj"},        {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},  {"attn_q_norm", "self_attn.q_norm"},   {"attn_k_norm", "self_attn.k_norm"},
      {"attn_norm", "input_layernorm"},     {"post_attention_norm", "post_attention_layernorm"},
      {"post_ffw_norm", "post_feedforward_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},        {"ffn_up", "mlp.up_proj"},             {"ffn_down", "mlp.down_proj"},
      {"ffn_gate_inp", "mlp.gate"},
  };
  std::string hf;
  if (base == "ffn_norm") {
    hf = gemma ? "pre_feedforward_layernorm" : "post_attention_layernorm";
  } else if (base == "ffn_gate_exps" || base == "ffn_up_exps" || base == "ffn_down_exps") {
    // Stacked experts [E, out, in]: "model.layers.N.mlp.experts.gate_proj" (no ".weight").
    if (suffix != ".weight") return g;
    const std::string which = base.substr(4, base.size() - 9);  // gate / up / down
    return "model.layers." + layer + ".mlp.experts." + which + "_proj";
  } else {
    for (const auto& [from, to] : kCommon)
      if (base == from) hf = to;
  }
  if (hf.empty()) return g;
  return "model.layers." + layer + "." + hf + suffix;
}

LoadedModel load_gguf(const std::string& path, const LoadOptions& opts) {
  return load_gguf(gguf::File::open(path), opts);
}

LoadedModel load_gguf(const gguf::File& f, const LoadOptions& opts) {
  const std::string& path = f.path();
  if (const gguf::Value* split = f.find("split.count"); split && split->as_int() > 1)
    fail<NotSupported>(path, ": split.count: a GGUF split into ", split->as_int(),
                       " files is not supported; merge it into one file first (llama-gguf-split --merge)");
  LoadedModel lm;
  lm.path = path;
  lm.format = "gguf";
  lm.config = config_from_gguf(f);
  if (f.find("tokenizer.ggml.model")) lm.tokenizer = tokenizer_from_gguf(f);
  if (const gguf::Value* ct = f.find("tokenizer.chat_template")) lm.chat_template = ct->as_string();
  std::vector<SourceWeight> src;
  src.reserve(f.tensors().size());
  std::set<std::string> names;
  for (const auto& ti : f.tensors()) {
    if (ti.name == "rope_freqs.weight") continue;  // folded into config.rope
    SourceWeight w;
    w.name = hf_name_from_gguf(ti.name, lm.config.arch);
    if (!names.insert(w.name).second)
      fail<InvalidArgument>(path, ": tensor '", ti.name, "' maps to '", w.name, "', which another tensor also maps to");
    w.tensor = f.tensor(ti);
    src.push_back(std::move(w));
  }
  lm.weights.source = path;
  finish_weights(src, opts, std::nullopt, lm.weights);
  return lm;
}

}  // namespace flagos::model::loaders
