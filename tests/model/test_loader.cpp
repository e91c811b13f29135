// load_model on the tiny fixture models (scripts/gen_model_fixtures.py): configs from GGUF metadata
// and config.json, tokenizer metadata, llama.cpp -> HF tensor names (the GGUF and HF forms of a
// model must give the same tensors), dtype/quant/progress options, and load errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "file_builders.h"
#include "flagos/error.h"
#include "flagos/model.h"
#include "flagos/ops.h"
#include "flagos/tokenizer.h"
#include "model/gguf.h"
#include "model/loaders.h"
#include "model/safetensors.h"

namespace flagos::model {
namespace {

namespace fs = std::filesystem;
const std::string kDir = FLAGOS_MODEL_FIXTURES;
std::string gguf_path(const std::string& a) { return kDir + "/gguf/tiny_" + a + ".gguf"; }
std::string hf_path(const std::string& a) { return kDir + "/hf/tiny_" + a; }

std::vector<float> values(const Tensor& t) {
  return is_quant(t.dtype()) ? ops::dequantize(t, DType::f32).to_vector<float>() : t.to_vector<float>();
}

// A message check for InvalidArgument.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << parts[0];
  } catch (const InvalidArgument& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\n  lacks: " << p;
  }
}

void expect_common(const ModelConfig& c, int64_t layers, int64_t head_dim) {
  EXPECT_EQ(c.vocab_size, 64);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_layers, layers);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, head_dim);
  EXPECT_EQ(c.rope.head_dim, head_dim);
  EXPECT_EQ(c.rope.rotary_dim, head_dim);
  EXPECT_EQ(c.max_position, 2048);
}

TEST(Loader, LlamaConfigs) {
  const LoadedModel h = load_model(hf_path("llama"));
  const LoadedModel g = load_model(gguf_path("llama"));
  for (const LoadedModel* m : {&h, &g}) {
    SCOPED_TRACE(m->format);
    const ModelConfig& c = m->config;
    EXPECT_EQ(c.arch, "llama");
    expect_common(c, 2, 32);
    EXPECT_EQ(c.intermediate_size, 64);
    EXPECT_NEAR(c.rms_eps, 1e-5, 1e-12);
    EXPECT_EQ(c.rope.theta, 500000.0);
    EXPECT_EQ(c.rope.scaling, RopeScaling::llama3);
    EXPECT_NEAR(c.rope.factor, 8.0, 1e-6);
    EXPECT_NEAR(c.rope.llama3_low_freq_factor, 1.0, 1e-6);
    EXPECT_NEAR(c.rope.llama3_high_freq_factor, 4.0, 1e-4);
    EXPECT_EQ(c.rope.original_max_position, 256);
    EXPECT_FALSE(c.tie_embeddings);
    EXPECT_FALSE(c.attention_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_EQ(c.hidden_act, "silu");
    EXPECT_EQ(c.bos_token_id, 1);
    EXPECT_TRUE(c.layer_is_sliding.empty());
  }
  EXPECT_EQ(h.config.rope.layout, RopeLayout::neox);
  EXPECT_EQ(g.config.rope.layout, RopeLayout::gptj);
  EXPECT_EQ(h.config.eos_token_ids, (std::vector<int64_t>{2, 3, 5}));  // config.json + generation_config.json
  EXPECT_EQ(g.config.eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(h.format, "safetensors");
  EXPECT_EQ(g.format, "gguf");
  EXPECT_EQ(g.config.name, "tiny llama");
  EXPECT_EQ(h.config.name, "tiny_llama");
  EXPECT_FALSE(g.weights.has("rope_freqs.weight"));
}

TEST(Loader, QwenConfigs) {
  for (const std::string& fmt : std::vector<std::string>{"hf", "gguf"}) {
    SCOPED_TRACE(fmt);
    const LoadedModel q2 = load_model(fmt == "hf" ? hf_path("qwen2") : gguf_path("qwen2"));
    expect_common(q2.config, 2, 8);
    EXPECT_EQ(q2.config.arch, "qwen2");
    EXPECT_TRUE(q2.config.attention_bias);
    EXPECT_FALSE(q2.config.qk_norm);
    EXPECT_EQ(q2.config.rope.theta, 1e6);
    EXPECT_EQ(q2.config.rope.layout, RopeLayout::neox);
    EXPECT_TRUE(q2.config.layer_is_sliding.empty());
    EXPECT_TRUE(q2.weights.has("model.layers.1.self_attn.k_proj.bias"));
    const LoadedModel q3 = load_model(fmt == "hf" ? hf_path("qwen3") : gguf_path("qwen3"));
    EXPECT_EQ(q3.config.arch, "qwen3");
    EXPECT_TRUE(q3.config.qk_norm);
    EXPECT_FALSE(q3.config.attention_bias);
    EXPECT_EQ(q3.weights.get("model.layers.0.self_attn.q_norm.weight").shape(), (Shape{8}));
    const LoadedModel moe = load_model(fmt == "hf" ? hf_path("qwen3_moe") : gguf_path("qwen3moe"));
    EXPECT_EQ(moe.config.arch, "qwen3_moe");
    EXPECT_EQ(moe.config.num_experts, 4);
    EXPECT_EQ(moe.config.num_experts_per_tok, 2);
    EXPECT_EQ(moe.config.moe_intermediate_size, 32);
    EXPECT_TRUE(moe.config.norm_topk_prob);
    EXPECT_TRUE(moe.config.qk_norm);
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
      EXPECT_EQ(moe.weights.get(p + "experts.gate_proj").shape(), (Shape{4, 32, 32}));
      EXPECT_EQ(moe.weights.get(p + "experts.up_proj").shape(), (Shape{4, 32, 32}));
      EXPECT_EQ(moe.weights.get(p + "experts.down_proj").shape(), (Shape{4, 32, 32}));
      EXPECT_EQ(moe.weights.get(p + "gate.weight").shape(), (Shape{4, 32}));
      EXPECT_FALSE(moe.weights.has(p + "experts.0.gate_proj.weight"));
    }
    if (fmt == "hf") {
      EXPECT_EQ(moe.config.layer_is_moe, (std::vector<bool>{true, true}));
    }
  }
  const LoadedModel q2 = load_model(gguf_path("qwen2"));
  EXPECT_EQ(q2.config.rope.scaling, RopeScaling::yarn);
  EXPECT_EQ(q2.config.rope.factor, 4.0);
  EXPECT_EQ(q2.config.rope.original_max_position, 32768);
}

TEST(Loader, Gemma3Configs) {
  for (const std::string& path : {hf_path("gemma3"), gguf_path("gemma3"), hf_path("gemma3_mm")}) {
    SCOPED_TRACE(path);
    const LoadedModel m = load_model(path);
    const ModelConfig& c = m.config;
    EXPECT_EQ(c.arch, "gemma3");
    expect_common(c, 7, 8);
    EXPECT_NEAR(c.rms_eps, 1e-6, 1e-12);
    EXPECT_EQ(c.rope.theta, 1e6);
    EXPECT_EQ(c.rope_local_theta, 10000.0);
    EXPECT_EQ(c.rope.scaling, RopeScaling::none);
    EXPECT_EQ(c.rope.layout, RopeLayout::neox);
    EXPECT_EQ(c.sliding_window, 512);
    EXPECT_EQ(c.layer_is_sliding, (std::vector<bool>{true, true, true, true, true, false, true}));
    EXPECT_EQ(c.query_pre_attn_scalar, 8.0);
    EXPECT_EQ(c.final_logit_softcap, 0.0);
    EXPECT_EQ(c.attn_logit_softcap, 0.0);
    EXPECT_TRUE(c.tie_embeddings);
    EXPECT_TRUE(c.qk_norm);
    EXPECT_TRUE(c.embed_scale_sqrt_hidden);
    EXPECT_EQ(c.hidden_act, "gelu_tanh");
    EXPECT_FALSE(m.weights.has("lm_head.weight"));
    EXPECT_TRUE(m.weights.has("model.layers.6.pre_feedforward_layernorm.weight"));
    for (const auto& n : m.weights.names()) EXPECT_EQ(n.find("vision"), std::string::npos) << n;
  }
}

// The GGUF form of each fixture holds the same weights as its HF form (f16 / Q8_0 vs bf16), with
// Llama q/k rows interleaved per head and Gemma norms already 1 + w.
TEST(Loader, GgufAndHfGiveTheSameTensors) {
  for (const auto& [hf, gg] : std::vector<std::pair<std::string, std::string>>{
           {"llama", "llama"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"}, {"qwen3_moe", "qwen3moe"}, {"gemma3", "gemma3"}}) {
    SCOPED_TRACE(hf);
    const LoadedModel h = load_model(hf_path(hf));
    const LoadedModel g = load_model(gguf_path(gg));
    EXPECT_EQ(h.weights.names(), g.weights.names());
    const int64_t hd = h.config.head_dim;
    for (const auto& name : h.weights.names()) {
      SCOPED_TRACE(name);
      const Tensor& a = h.weights.get(name);
      const Tensor* b = g.weights.find(name);
      ASSERT_NE(b, nullptr);
      ASSERT_EQ(a.shape(), b->shape());
      EXPECT_EQ(a.dtype(), DType::f32);  // HF default
      const std::vector<float> va = values(a), vb = values(*b);
      const bool permuted = hf == "llama" && (name.ends_with("q_proj.weight") || name.ends_with("k_proj.weight"));
      const int64_t cols = a.shape().back();
      double max_err = 0;
      for (size_t i = 0; i < va.size(); ++i) {
        size_t j = i;
        if (permuted) {  // GGUF row h*hd + 2k + s holds HF row h*hd + s*hd/2 + k
          const int64_t row = static_cast<int64_t>(i) / cols, col = static_cast<int64_t>(i) % cols;
          const int64_t head = row / hd, r = row % hd;
          const int64_t g_row = head * hd + 2 * (r % (hd / 2)) + r / (hd / 2);
          j = static_cast<size_t>(g_row * cols + col);
        }
        ASSERT_TRUE(std::isfinite(va[i]) && std::isfinite(vb[j]));
        max_err = std::max(max_err, static_cast<double>(std::abs(va[i] - vb[j])));
      }
      EXPECT_LT(max_err, 5e-3);  // bf16 vs f16/Q8_0 rounding of values ~N(0, 0.1) (+1 for Gemma norms)
    }
  }
}

TEST(Loader, GemmaHfNormsGetPlusOne) {
  const LoadedModel m = load_model(hf_path("gemma3"));
  // The stored bf16 values, read directly.
  const auto st = safetensors::File::open(hf_path("gemma3") + "/model.safetensors");
  int checked = 0;
  for (const auto& ti : st.tensors()) {
    const std::vector<float> raw = st.tensor(ti).to_vector<float>();
    const std::vector<float> got = m.weights.get(ti.name).to_vector<float>();
    const bool norm = ti.name.ends_with("norm.weight");
    for (size_t i = 0; i < raw.size(); ++i) ASSERT_EQ(got[i], raw[i] + (norm ? 1.0f : 0.0f)) << ti.name;
    checked += norm;
  }
  EXPECT_EQ(checked, 1 + 7 * 6);  // final norm + per layer: 4 block norms, q_norm, k_norm
}

TEST(Loader, ShardedEqualsSingleFile) {
  const LoadedModel a = load_model(hf_path("llama"));
  const LoadedModel b = load_model(hf_path("llama_sharded"));
  ASSERT_EQ(a.weights.names(), b.weights.names());
  for (const auto& n : a.weights.names()) EXPECT_EQ(values(a.weights.get(n)), values(b.weights.get(n))) << n;
}

TEST(Loader, GgufTokenizerMetadata) {
  const LoadedModel g = load_model(gguf_path("llama"));
  ASSERT_NE(g.tokenizer, nullptr);
  const TokenizerSource& t = *g.tokenizer;
  EXPECT_EQ(t.kind, TokenizerSource::Kind::spm);
  ASSERT_EQ(t.tokens.size(), 64u);
  EXPECT_EQ(t.tokens[1], "<s>");
  EXPECT_EQ(t.tokens[63], "ab");
  ASSERT_EQ(t.scores.size(), 64u);
  EXPECT_EQ(t.scores[10], -10.0f);
  ASSERT_EQ(t.token_types.size(), 64u);
  EXPECT_EQ(t.token_types[0], 2);
  EXPECT_EQ(t.token_types[3], 3);
  EXPECT_EQ(t.bos_id, 1);
  EXPECT_EQ(t.eos_id, 2);
  EXPECT_EQ(t.unk_id, 0);
  EXPECT_EQ(t.pad_id, -1);
  EXPECT_EQ(t.eos_ids, (std::vector<int32_t>{2, 3, 60}));  // eos + control <|eot_id|>, <end_of_turn>
  EXPECT_TRUE(t.add_bos);
  EXPECT_TRUE(t.add_space_prefix);
  EXPECT_EQ(t.pre, "default");
  EXPECT_EQ(t.json_path, gguf_path("llama"));
  EXPECT_EQ(g.chat_template, "{{ messages }}");
  const LoadedModel q = load_model(gguf_path("qwen3"));
  EXPECT_EQ(q.tokenizer->kind, TokenizerSource::Kind::bpe);
  EXPECT_EQ(q.tokenizer->merges, (std::vector<std::pair<std::string, std::string>>{{"a", "b"}}));
  EXPECT_TRUE(q.tokenizer->scores.empty());
  EXPECT_FALSE(q.tokenizer->add_space_prefix);
}

TEST(Loader, HfTokenizerAndChatTemplate) {
  const std::string tmpl = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
  for (const std::string& arch : std::vector<std::string>{"qwen3", "qwen2", "qwen3_moe"}) {
    SCOPED_TRACE(arch);
    const LoadedModel m = load_model(hf_path(arch));
    ASSERT_NE(m.tokenizer, nullptr);
    EXPECT_EQ(m.tokenizer->kind, TokenizerSource::Kind::bpe);
    EXPECT_EQ(m.tokenizer->tokens.size(), 64u);
    EXPECT_EQ(m.tokenizer->json_path, hf_path(arch) + "/tokenizer.json");
    // generation_config.json's end-of-generation id 5 joins the tokenizer's own (<|im_end|> = 57).
    const auto& eos = m.tokenizer->eos_ids;
    EXPECT_NE(std::find(eos.begin(), eos.end(), 57), eos.end());
    EXPECT_NE(std::find(eos.begin(), eos.end(), 5), eos.end());
    EXPECT_EQ(m.chat_template, tmpl);  // string, the "default" of a list, or chat_template.jinja
  }
  EXPECT_EQ(load_model(hf_path("llama")).tokenizer, nullptr);  // no tokenizer.json
}

TEST(Loader, DtypeOptions) {
  LoadOptions o;
  o.dtype = DType::bf16;
  const LoadedModel h = load_model(hf_path("qwen3"), o);
  for (const auto& n : h.weights.names()) EXPECT_EQ(h.weights.get(n).dtype(), DType::bf16) << n;
  EXPECT_EQ(h.config.weight_dtype, DType::bf16);
  // GGUF: stored types by default; dtype converts plain floats, block types stay.
  const LoadedModel g = load_model(gguf_path("qwen3"));
  EXPECT_EQ(g.weights.get("model.layers.1.mlp.up_proj.weight").dtype(), DType::f16);
  EXPECT_EQ(g.weights.get("model.layers.0.mlp.up_proj.weight").dtype(), DType::q8_0);
  EXPECT_EQ(g.weights.get("model.norm.weight").dtype(), DType::f32);
  o.dtype = DType::f32;
  const LoadedModel g32 = load_model(gguf_path("qwen3"), o);
  EXPECT_EQ(g32.weights.get("model.layers.1.mlp.up_proj.weight").dtype(), DType::f32);
  EXPECT_EQ(g32.weights.get("model.layers.0.mlp.up_proj.weight").dtype(), DType::q8_0);
  EXPECT_EQ(values(g32.weights.get("model.layers.1.mlp.up_proj.weight")),
            values(g.weights.get("model.layers.1.mlp.up_proj.weight")));
  o.dtype = DType::i32;
  EXPECT_THROW(load_model(hf_path("qwen3"), o), InvalidArgument);
}

TEST(Loader, QuantizeOnLoad) {
  LoadOptions o;
  o.quant = DType::q8_0;
  for (const std::string& path : {hf_path("qwen3_moe"), gguf_path("qwen3"), hf_path("gemma3")}) {
    SCOPED_TRACE(path);
    const LoadedModel q = load_model(path, o);
    const LoadedModel f = load_model(path);
    for (const auto& n : q.weights.names()) {
      const Tensor& t = q.weights.get(n);
      const bool linear = n.ends_with("_proj.weight") || n.ends_with("_proj") || n == "lm_head.weight";
      EXPECT_EQ(t.dtype() == DType::q8_0, linear) << n;
      const std::vector<float> a = values(t), b = values(f.weights.get(n));
      double amax = 0, err = 0;
      for (size_t i = 0; i < a.size(); ++i) amax = std::max(amax, std::abs(double(b[i]))), err = std::max(err, std::abs(double(a[i] - b[i])));
      EXPECT_LE(err, amax / 127.0 + 1e-7) << n;
    }
  }
  o.quant = DType::f16;
  EXPECT_THROW(load_model(hf_path("qwen3"), o), InvalidArgument);
}

TEST(Loader, Progress) {
  std::vector<std::pair<int64_t, int64_t>> calls;
  LoadOptions o;
  o.progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  const LoadedModel m = load_model(hf_path("llama"), o);
  ASSERT_GE(calls.size(), 2u);
  const int64_t total = calls.back().second;
  EXPECT_EQ(calls.front().first, 0);
  EXPECT_EQ(calls.back().first, total);
  EXPECT_EQ(total, m.weights.total_bytes() / 2);  // bf16 file -> f32 weights
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_GE(calls[i].first, calls[i - 1].first);
    EXPECT_EQ(calls[i].second, total);
  }
}

// A copy of a fixture directory whose config.json the test rewrites.
struct TempModel {
  std::string dir;
  explicit TempModel(const std::string& from, const std::string& name) {
    dir = ::testing::TempDir() + "flagos_model_" + name;
    fs::remove_all(dir);
    fs::copy(from, dir, fs::copy_options::recursive);
  }
  void write(const std::string& file, const std::string& text) const { std::ofstream(dir + "/" + file) << text; }
  std::string read(const std::string& file) const {
    std::ifstream in(dir + "/" + file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  ~TempModel() { fs::remove_all(dir); }
};

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return p == std::string::npos ? s : s.replace(p, from.size(), to);
}

TEST(Loader, Errors) {
  expect_error([] { load_model(kDir + "/nope"); }, {kDir + "/nope: no such file or directory"});
  expect_error([] { load_model(kDir); }, {kDir + ": no config.json"});
  TempModel t(hf_path("qwen3"), "errors");
  const std::string cfg = t.read("config.json");
  t.write("config.json", replace(cfg, "\"qwen3\"", "\"mistral\""));
  expect_error([&] { load_model(t.dir); },
               {t.dir + "/config.json: model_type 'mistral' is not supported (supported: llama, qwen2, qwen3, qwen3_moe, gemma3"});
  t.write("config.json", "{\"model_type\": ");
  expect_error([&] { load_model(t.dir); }, {t.dir + "/config.json: invalid JSON"});
  t.write("config.json", replace(cfg, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"));
  expect_error([&] { load_model(t.dir); }, {t.dir + "/config.json: kv head count 3 must be >= 1 and divide the head count 4"});
  t.write("config.json", replace(cfg, "\"hidden_size\": 32", "\"hidden_size\": \"32\""));
  expect_error([&] { load_model(t.dir); }, {t.dir + "/config.json: 'hidden_size': expected an integer"});
  t.write("config.json", replace(cfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1152921504606846976"));
  expect_error([&] { load_model(t.dir); }, {"layer count 1152921504606846976 is outside"});
  // A config whose shapes disagree with the weights.
  t.write("config.json", replace(cfg, "\"intermediate_size\": 64", "\"intermediate_size\": 48"));
  expect_error([&] { load_model(t.dir); },
               {t.dir + ": tensor 'model.layers.0.mlp.gate_proj.weight' has shape [64, 32], qwen3 with this config needs [48, 32]"});
  // More layers than the file has.
  t.write("config.json", replace(cfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
  expect_error([&] { load_model(t.dir); }, {t.dir + ": missing tensors that qwen3 needs: model.layers.2."});
  t.write("config.json", cfg);
  fs::remove(t.dir + "/model.safetensors");
  expect_error([&] { load_model(t.dir); }, {t.dir + ": no model.safetensors or model.safetensors.index.json"});
}

TEST(Loader, ValidateWeights) {
  const LoadedModel m = load_model(hf_path("qwen2"));
  EXPECT_NO_THROW(validate_weights(m.config, m.weights));
  WeightStore w;
  w.source = "x.gguf";
  for (const auto& n : m.weights.names())
    if (n != "model.layers.1.self_attn.v_proj.bias") w.add(n, m.weights.get(n));
  expect_error([&] { validate_weights(m.config, w); }, {"x.gguf: missing tensors that qwen2 needs: model.layers.1.self_attn.v_proj.bias"});
  // Optional tensors are checked when present.
  w.add("model.layers.1.self_attn.v_proj.bias", m.weights.get("model.layers.1.self_attn.v_proj.bias"));
  w.add("model.layers.0.self_attn.o_proj.bias", Tensor::empty({7}, DType::f32));
  expect_error([&] { validate_weights(m.config, w); }, {"x.gguf: tensor 'model.layers.0.self_attn.o_proj.bias' has shape [7]"});
  // Every expected weight is there with its shape.
  size_t required = 0;
  for (const auto& e : expected_weights(m.config)) {
    if (!e.required) continue;
    ++required;
    EXPECT_EQ(m.weights.get(e.name).shape(), e.shape) << e.name;
  }
  EXPECT_EQ(required, m.weights.size());
}

TEST(Loader, GgufMetadataErrors) {
  using testing::GgufBuilder;
  auto write = [](const GgufBuilder& b, const std::string& name) {
    const std::string path = ::testing::TempDir() + name;
    const auto bytes = b.build();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
    return path;
  };
  GgufBuilder b;
  b.kv("general.architecture", testing::kString, GgufBuilder::enc_str("mamba"));
  const std::string p = write(b, "mamba.gguf");
  expect_error([&] { load_model(p); },
               {p + ": general.architecture: 'mamba' is not supported (supported: llama, qwen2, qwen3, qwen3_moe, gemma3)"});
  GgufBuilder c;
  c.kv("general.architecture", testing::kString, GgufBuilder::enc_str("llama"));
  const std::string q = write(c, "nokeys.gguf");
  expect_error([&] { load_model(q); }, {q + ": missing metadata key 'llama.block_count'"});
  c.kv("llama.block_count", testing::kString, GgufBuilder::enc_str("two"));
  const std::string r = write(c, "badkey.gguf");
  expect_error([&] { load_model(r); }, {r + ": llama.block_count: expected an integer, found string \"two\""});
  GgufBuilder split;
  split.kv("general.architecture", testing::kString, GgufBuilder::enc_str("llama"));
  split.kv("split.count", testing::kU32, GgufBuilder::enc<uint32_t>(3));
  EXPECT_THROW(load_model(write(split, "split.gguf")), NotSupported);
}

TEST(Loader, HfNameMapping) {
  using loaders::hf_name_from_gguf;
  EXPECT_EQ(hf_name_from_gguf("blk.12.attn_output.weight", "llama"), "model.layers.12.self_attn.o_proj.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.0.attn_q.bias", "qwen2"), "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(hf_name_from_gguf("blk.3.ffn_norm.weight", "llama"), "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.3.ffn_norm.weight", "gemma3"), "model.layers.3.pre_feedforward_layernorm.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.3.post_attention_norm.weight", "gemma3"), "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.3.post_ffw_norm.weight", "gemma3"), "model.layers.3.post_feedforward_layernorm.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.7.ffn_down_exps.weight", "qwen3_moe"), "model.layers.7.mlp.experts.down_proj");
  EXPECT_EQ(hf_name_from_gguf("blk.7.ffn_gate_inp.weight", "qwen3_moe"), "model.layers.7.mlp.gate.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.x.attn_q.weight", "llama"), "blk.x.attn_q.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.1.something_new.weight", "llama"), "blk.1.something_new.weight");
  EXPECT_EQ(hf_name_from_gguf("token_embd.weight", "llama"), "model.embed_tokens.weight");
}

TEST(Loader, SupportedArchitectures) {
  EXPECT_EQ(supported_architectures(), (std::vector<std::string>{"llama", "qwen2", "qwen3", "qwen3_moe", "gemma3"}));
}

}  // namespace
}  // namespace flagos::model
