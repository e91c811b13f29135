// Hugging Face model directory -> LoadedModel: config.json (+ generation_config.json) to
// ModelConfig, tokenizer.json/tokenizer_config.json through Tokenizer::source_from_hf_json, the
// chat template, and the weights of model.safetensors or a sharded checkpoint.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "flagos/error.h"
#include "model/json_brief.h"
#include "model/loaders.h"
#include "model/safetensors.h"

namespace flagos::model::loaders {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Typed field access on a JSON object; errors name the file and the key.
class Fields {
 public:
  Fields(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }
  const json& at(const char* k) const { return j_[k]; }
  int64_t integer(const char* k) const {
    if (!has(k)) fail<InvalidArgument>(path_, ": missing '", k, "'");
    return integer_of(j_[k], k);
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? integer_of(j_[k], k) : def; }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j_[k].is_number()) bad(k, "a number");
    return j_[k].get<double>();
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) bad(k, "true or false");
    return j_[k].get<bool>();
  }
  std::string string(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) bad(k, "a string");
    return j_[k].get<std::string>();
  }
  // An id or a list of ids.
  std::vector<int64_t> ids(const char* k) const {
    std::vector<int64_t> r;
    if (!has(k)) return r;
    if (j_[k].is_array()) {
      for (const auto& e : j_[k]) r.push_back(integer_of(e, k));
    } else {
      r.push_back(integer_of(j_[k], k));
    }
    return r;
  }
  [[noreturn]] void bad(const char* k, const char* wanted) const {
    fail<InvalidArgument>(path_, ": '", k, "': expected ", wanted, ", found ", json_brief(j_[k]));
  }

 private:
  int64_t integer_of(const json& v, const char* k) const {
    if (!v.is_number_integer())
      fail<InvalidArgument>(path_, ": '", k, "': expected an integer, found ", json_brief(v));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail<InvalidArgument>(path_, ": '", k, "': ", json_brief(v), " is out of range");
    return v.get<int64_t>();
  }
  const json& j_;
  std::string path_;
};

json parse_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>(path, ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail<InvalidArgument>(path, ": invalid JSON: ", e.what());
  }
}

void read_rope_scaling(const json& rs, const std::string& path, RopeParams& rope) {
  if (!rs.is_object()) fail<InvalidArgument>(path, ": rope_scaling: expected an object");
  Fields s(rs, path + ": rope_scaling");
  std::string type = s.string("rope_type", s.string("type", "default"));
  if (type == "default") return;
  rope.factor = s.number("factor", 1.0);
  if (!(rope.factor > 0)) fail<InvalidArgument>(path, ": rope_scaling: factor ", rope.factor, " must be > 0");
  if (type == "linear") {
    rope.scaling = RopeScaling::linear;
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::llama3;
    rope.llama3_low_freq_factor = s.number("low_freq_factor", 1.0);
    rope.llama3_high_freq_factor = s.number("high_freq_factor", 4.0);
    rope.original_max_position = s.integer("original_max_position_embeddings");
    if (!(rope.llama3_high_freq_factor > rope.llama3_low_freq_factor) || !(rope.llama3_low_freq_factor > 0))
      fail<InvalidArgument>(path, ": rope_scaling: need 0 < low_freq_factor < high_freq_factor");
  } else if (type == "yarn") {
    rope.scaling = RopeScaling::yarn;
    rope.original_max_position = s.integer("original_max_position_embeddings", 0);
    rope.yarn_beta_fast = s.number("beta_fast", rope.yarn_beta_fast);
    rope.yarn_beta_slow = s.number("beta_slow", rope.yarn_beta_slow);
    rope.yarn_attn_factor = s.number("attention_factor", 0.0);
  } else {
    fail<NotSupported>(path, ": rope_scaling: rope_type '", type, "' is not supported (default, linear, llama3, yarn)");
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>(path, ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Multimodal Gemma 3 checkpoints keep the text model under a prefix and add vision weights.
// Returns the text-model name, or "" for a tensor the text model does not use.
std::string text_model_name(const std::string& n) {
  for (const char* skip : {"vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                           "model.multi_modal_projector."})
    if (n.rfind(skip, 0) == 0) return "";
  if (n.rfind("language_model.", 0) == 0) return n.substr(15);
  if (n.rfind("model.language_model.", 0) == 0) return "model." + n.substr(21);
  return n;
}

bool is_rms_norm_weight(const std::string& n) {
  return n.size() > 12 && (n.ends_with("norm.weight") || n.ends_with("layernorm.weight"));
}

}  // namespace

ModelConfig config_from_hf_json(const std::string& text, const std::string& path) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail<InvalidArgument>(path, ": invalid JSON: ", e.what());
  }
  if (!root.is_object()) fail<InvalidArgument>(path, ": expected a JSON object");
  try {
    ModelConfig c;
    std::string model_type = Fields(root, path).string("model_type", "");
    const json* cfg = &root;
    if (model_type == "gemma3") {  // multimodal wrapper: the text model's config is text_config
      if (root.contains("text_config") && root["text_config"].is_object()) cfg = &root["text_config"];
      model_type = "gemma3_text";
    }
    static const std::map<std::string, std::string> kTypes = {
        {"llama", "llama"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"}, {"qwen3_moe", "qwen3_moe"}, {"gemma3_text", "gemma3"}};
    auto it = kTypes.find(model_type);
    if (it == kTypes.end()) {
      std::string s;
      for (const auto& a : supported_architectures()) s += (s.empty() ? "" : ", ") + a;
      fail<InvalidArgument>(path, ": model_type '", model_type, "' is not supported (supported: ", s,
                            "; gemma3 also as gemma3_text)");
    }
    c.arch = it->second;
    const bool gemma = c.arch == "gemma3";
    Fields f(*cfg, path);
    c.name = fs::path(path).parent_path().filename().string();
    c.vocab_size = f.integer("vocab_size");
    c.hidden_size = f.integer("hidden_size");
    c.intermediate_size = f.integer("intermediate_size", 0);
    c.num_layers = f.integer("num_hidden_layers");
    c.num_heads = f.integer("num_attention_heads");
    c.num_kv_heads = f.integer("num_key_value_heads", c.num_heads);
    c.head_dim = f.integer("head_dim", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
    c.max_position = f.integer("max_position_embeddings", 0);
    c.rms_eps = f.number("rms_norm_eps", 1e-6);
    c.rope.head_dim = c.head_dim;
    c.rope.rotary_dim = c.head_dim;
    if (f.has("partial_rotary_factor"))
      c.rope.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * f.number("partial_rotary_factor", 1.0));
    c.rope.layout = RopeLayout::neox;
    c.rope.theta = f.number("rope_theta", gemma ? 1000000.0 : 10000.0);
    if (f.has("rope_scaling")) read_rope_scaling(f.at("rope_scaling"), path, c.rope);
    c.tie_embeddings = f.boolean("tie_word_embeddings", gemma);  // transformers' per-model defaults
    c.attention_bias = c.arch == "qwen2" ? true : f.boolean("attention_bias", false);
    c.qk_norm = c.arch == "qwen3" || c.arch == "qwen3_moe" || gemma;
    const std::string act = f.string(gemma ? "hidden_activation" : "hidden_act", gemma ? "gelu_pytorch_tanh" : "silu");
    if (act == "silu") {
      c.hidden_act = "silu";
    } else if (act == "gelu_pytorch_tanh" || act == "gelu_tanh") {
      c.hidden_act = "gelu_tanh";
    } else {
      fail<NotSupported>(path, ": activation '", act, "' is not supported (silu, gelu_pytorch_tanh)");
    }
    const int64_t layers = std::clamp<int64_t>(c.num_layers, 0, 4096);  // validated below
    if (c.arch == "qwen3_moe") {
      c.num_experts = f.integer("num_experts");
      c.num_experts_per_tok = f.integer("num_experts_per_tok");
      c.moe_intermediate_size = f.integer("moe_intermediate_size");
      c.norm_topk_prob = f.boolean("norm_topk_prob", false);
      const int64_t step = f.integer("decoder_sparse_step", 1);
      if (step < 1) fail<InvalidArgument>(path, ": decoder_sparse_step ", step, " must be >= 1");
      std::set<int64_t> dense;
      if (f.has("mlp_only_layers")) {
        if (!f.at("mlp_only_layers").is_array()) f.bad("mlp_only_layers", "a list of layer indices");
        for (const auto& e : f.at("mlp_only_layers")) {
          if (!e.is_number_integer()) f.bad("mlp_only_layers", "a list of layer indices");
          dense.insert(e.get<int64_t>());
        }
      }
      c.layer_is_moe.resize(static_cast<size_t>(layers));
      for (int64_t i = 0; i < layers; ++i)
        c.layer_is_moe[static_cast<size_t>(i)] = !dense.count(i) && c.num_experts > 0 && (i + 1) % step == 0;
    }
    // Sliding window: an explicit per-layer list wins; else the model's own rule.
    if (f.has("layer_types")) {
      const json& lt = f.at("layer_types");
      if (!lt.is_array() || static_cast<int64_t>(lt.size()) != layers) f.bad("layer_types", "one entry per layer");
      for (const auto& e : lt) {
        if (!e.is_string()) f.bad("layer_types", "strings");
        c.layer_is_sliding.push_back(e.get<std::string>() == "sliding_attention");
      }
      c.sliding_window = f.integer("sliding_window", 0);
    } else if (gemma) {
      c.sliding_window = f.integer("sliding_window", 4096);
      const int64_t pattern = f.integer("sliding_window_pattern", 6);
      if (pattern < 1) fail<InvalidArgument>(path, ": sliding_window_pattern ", pattern, " must be >= 1");
      for (int64_t i = 0; i < layers; ++i) c.layer_is_sliding.push_back((i + 1) % pattern != 0);
    } else if (c.arch == "qwen2" && f.boolean("use_sliding_window", false)) {
      c.sliding_window = f.integer("sliding_window", 0);
      const int64_t from = f.integer("max_window_layers", 0);
      for (int64_t i = 0; i < layers; ++i) c.layer_is_sliding.push_back(i >= from);
    }
    if (std::none_of(c.layer_is_sliding.begin(), c.layer_is_sliding.end(), [](bool b) { return b; })) {
      c.layer_is_sliding.clear();
      c.sliding_window = 0;
    }
    if (gemma) {
      c.embed_scale_sqrt_hidden = true;
      c.rope_local_theta = f.number("rope_local_base_freq", 10000.0);
      c.query_pre_attn_scalar = f.number("query_pre_attn_scalar", static_cast<double>(c.head_dim));
      c.attn_logit_softcap = f.number("attn_logit_softcapping", 0.0);
      c.final_logit_softcap = f.number("final_logit_softcapping", 0.0);
    }
    // transformers 5 keeps theta and scaling in rope_parameters (per attention type for Gemma 3).
    if (f.has("rope_parameters") && f.at("rope_parameters").is_object()) {
      const json& rp = f.at("rope_parameters");
      const json* full = rp.contains("full_attention") ? &rp["full_attention"] : &rp;
      if (full->is_object()) {
        c.rope.theta = Fields(*full, path + ": rope_parameters").number("rope_theta", c.rope.theta);
        read_rope_scaling(*full, path + ": rope_parameters", c.rope);
      }
      if (rp.contains("sliding_attention") && rp["sliding_attention"].is_object())
        c.rope_local_theta =
            Fields(rp["sliding_attention"], path + ": rope_parameters").number("rope_theta", c.rope_local_theta);
    }
    Fields top(root, path);
    const std::vector<int64_t> bos = f.ids("bos_token_id").empty() ? top.ids("bos_token_id") : f.ids("bos_token_id");
    if (!bos.empty()) c.bos_token_id = bos[0];
    c.eos_token_ids = f.ids("eos_token_id").empty() ? top.ids("eos_token_id") : f.ids("eos_token_id");
    return c;
  } catch (const json::exception& e) {
    fail<InvalidArgument>(path, ": ", e.what());
  }
}

LoadedModel load_hf_dir(const std::string& dir, const LoadOptions& opts) {
  const fs::path d(dir);
  const std::string config_path = (d / "config.json").string();
  if (!fs::exists(config_path)) fail<InvalidArgument>(dir, ": no config.json (not a Hugging Face model directory)");
  LoadedModel lm;
  lm.path = dir;
  lm.format = "safetensors";
  lm.config = config_from_hf_json(read_text_file(config_path), config_path);
  if (lm.config.name.empty() || lm.config.name == ".") lm.config.name = fs::absolute(d).lexically_normal().filename();

  // generation_config.json: the end-of-generation ids the model was tuned with.
  const std::string gen_path = (d / "generation_config.json").string();
  if (fs::exists(gen_path)) {
    const json g = parse_json_file(gen_path);
    if (g.is_object()) {
      try {
        Fields gf(g, gen_path);
        for (int64_t id : gf.ids("eos_token_id"))
          if (std::find(lm.config.eos_token_ids.begin(), lm.config.eos_token_ids.end(), id) == lm.config.eos_token_ids.end())
            lm.config.eos_token_ids.push_back(id);
        if (lm.config.bos_token_id < 0 && !gf.ids("bos_token_id").empty()) lm.config.bos_token_id = gf.ids("bos_token_id")[0];
      } catch (const json::exception& e) {
        fail<InvalidArgument>(gen_path, ": ", e.what());
      }
    }
  }
  validate_config(lm.config, config_path);

  // Tokenizer and chat template.
  const std::string tok_path = (d / "tokenizer.json").string();
  const std::string tok_cfg_path = (d / "tokenizer_config.json").string();
  const bool has_tok_cfg = fs::exists(tok_cfg_path);
  if (fs::exists(tok_path)) {
    std::shared_ptr<TokenizerSource> t = Tokenizer::source_from_hf_json(tok_path, has_tok_cfg ? tok_cfg_path : "");
    for (int64_t id : lm.config.eos_token_ids)
      if (id >= 0 && id <= INT32_MAX && std::find(t->eos_ids.begin(), t->eos_ids.end(), id) == t->eos_ids.end())
        t->eos_ids.push_back(static_cast<int32_t>(id));
    lm.tokenizer = std::move(t);
  }
  const std::string jinja_path = (d / "chat_template.jinja").string();
  if (fs::exists(jinja_path)) {
    lm.chat_template = read_text_file(jinja_path);
  } else if (has_tok_cfg) {
    const json tc = parse_json_file(tok_cfg_path);
    if (tc.is_object() && tc.contains("chat_template")) {
      const json& ct = tc["chat_template"];
      if (ct.is_string()) {
        lm.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const auto& e : ct)
          if (e.is_object() && e.contains("name") && e["name"] == "default" && e.contains("template") &&
              e["template"].is_string())
            lm.chat_template = e["template"].get<std::string>();
      }
    }
  }

  // Weights: one file or shards.
  std::vector<std::string> files;
  const std::string single = (d / "model.safetensors").string();
  const std::string index = (d / "model.safetensors.index.json").string();
  safetensors::ShardIndex shards;
  if (fs::exists(index)) {
    shards = safetensors::read_shard_index(index);
    files = shards.files;
  } else if (fs::exists(single)) {
    files.push_back(single);
  } else {
    fail<InvalidArgument>(dir, ": no model.safetensors or model.safetensors.index.json");
  }

  const bool gemma = lm.config.arch == "gemma3";
  std::vector<SourceWeight> src;
  std::map<std::string, size_t> by_name;
  // Per-expert tensors "model.layers.N.mlp.experts.E.<proj>.weight" are stacked into
  // "model.layers.N.mlp.experts.<proj>" [E, out, in].
  static const std::regex kExpert(R"(^(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$)");
  std::map<std::string, std::map<int64_t, Tensor>> experts;
  std::vector<safetensors::File> opened;
  opened.reserve(files.size());
  for (const auto& file : files) {
    opened.push_back(safetensors::File::open(file));
    const safetensors::File& sf = opened.back();
    for (const auto& ti : sf.tensors()) {
      if (!shards.weight_map.empty()) {
        auto wm = shards.weight_map.find(ti.name);
        if (wm == shards.weight_map.end() || wm->second != file) continue;  // listed in another shard (or not at all)
      }
      const std::string name = text_model_name(ti.name);
      if (name.empty()) continue;
      if (lm.config.tie_embeddings && name == "lm_head.weight") continue;  // shares the embedding table
      std::smatch m;
      if (std::regex_match(name, m, kExpert)) {
        if (m[2].length() > 9) fail<InvalidArgument>(file, ": tensor '", ti.name, "': expert index out of range");
        const int64_t e = std::stoll(m[2].str());
        if (e >= lm.config.num_experts)
          fail<InvalidArgument>(file, ": tensor '", ti.name, "': expert ", e, " but config.json has num_experts ",
                                lm.config.num_experts);
        if (!experts[m[1].str() + "." + m[3].str()].emplace(e, sf.tensor(ti)).second)
          fail<InvalidArgument>(file, ": tensor '", ti.name, "' appears twice");
        continue;
      }
      if (by_name.count(name)) fail<InvalidArgument>(file, ": tensor '", ti.name, "' appears twice");
      by_name.emplace(name, src.size());
      SourceWeight w;
      w.name = name;
      w.tensor = sf.tensor(ti);
      w.add_one = gemma && is_rms_norm_weight(name);
      src.push_back(std::move(w));
    }
  }
  for (const auto& [name, parts] : experts) {
    if (static_cast<int64_t>(parts.size()) != lm.config.num_experts)
      fail<InvalidArgument>(dir, ": '", name, "' has ", parts.size(), " experts, config.json says ", lm.config.num_experts);
    SourceWeight w;
    w.name = name;
    for (const auto& [e, t] : parts) w.expert_parts.push_back(t);
    src.push_back(std::move(w));
  }
  lm.weights.source = dir;
  finish_weights(src, opts, DType::f32, lm.weights);
  return lm;
}

}  // namespace flagos::model::loaders
