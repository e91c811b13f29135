// The default model (Gemma 3 270M, GGUF Q4_K_M; scripts/fetch_default_model.sh prints its path):
// runs when FLAGOS_DEFAULT_MODEL names the file. Checks the config the loader reads, the tokenizer
// metadata, and that every weight is there, mapped to its HF name, with finite values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "flagos/model.h"
#include "flagos/ops.h"
#include "flagos/tokenizer.h"

namespace flagos::model {
namespace {

TEST(DefaultModel, Gemma3_270M) {
  const char* path = std::getenv("FLAGOS_DEFAULT_MODEL");
  if (!path || !*path) GTEST_SKIP() << "FLAGOS_DEFAULT_MODEL is not set (see scripts/fetch_default_model.sh)";
  const LoadedModel m = load_model(path);
  const ModelConfig& c = m.config;
  EXPECT_EQ(m.format, "gguf");
  EXPECT_EQ(c.arch, "gemma3");
  EXPECT_EQ(c.name, "Gemma 3 270m");
  EXPECT_EQ(c.num_layers, 18);
  EXPECT_EQ(c.hidden_size, 640);
  EXPECT_EQ(c.vocab_size, 262144);
  EXPECT_EQ(c.intermediate_size, 2048);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.max_position, 32768);
  EXPECT_NEAR(c.rms_eps, 1e-6, 1e-12);
  EXPECT_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.rope.rotary_dim, 256);
  EXPECT_EQ(c.rope.scaling, RopeScaling::none);
  EXPECT_EQ(c.rope.layout, RopeLayout::neox);
  EXPECT_EQ(c.rope_local_theta, 10000.0);
  EXPECT_EQ(c.sliding_window, 512);
  ASSERT_EQ(c.layer_is_sliding.size(), 18u);
  for (size_t i = 0; i < 18; ++i) EXPECT_EQ(c.layer_is_sliding[i], (i + 1) % 6 != 0) << i;
  EXPECT_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_EQ(c.final_logit_softcap, 0.0);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.embed_scale_sqrt_hidden);
  EXPECT_EQ(c.hidden_act, "gelu_tanh");
  EXPECT_EQ(c.bos_token_id, 2);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1}));

  ASSERT_NE(m.tokenizer, nullptr);
  const TokenizerSource& t = *m.tokenizer;
  EXPECT_EQ(t.kind, TokenizerSource::Kind::spm);
  EXPECT_EQ(t.tokens.size(), 262144u);
  EXPECT_EQ(t.scores.size(), 262144u);
  EXPECT_EQ(t.tokens[2], "<bos>");
  EXPECT_EQ(t.tokens[106], "<end_of_turn>");
  EXPECT_EQ(t.eos_ids, (std::vector<int32_t>{1, 106}));  // <eos> and the control token <end_of_turn>
  EXPECT_TRUE(t.add_bos);
  EXPECT_FALSE(t.add_space_prefix);
  EXPECT_EQ(t.unk_id, 3);
  EXPECT_EQ(t.pad_id, 0);
  EXPECT_TRUE(m.chat_template.empty());  // this file carries no tokenizer.chat_template
  // The metadata makes a working tokenizer: HF transformers (GGUF tokenizer) gives these ids.
  const Tokenizer tok(m.tokenizer);
  EXPECT_EQ(tok.encode("The capital of France is"), (std::vector<int32_t>{2, 818, 5279, 529, 7001, 563}));
  EXPECT_TRUE(tok.is_eog(106));

  std::map<DType, int> types;
  for (const auto& n : m.weights.names()) ++types[m.weights.get(n).dtype()];
  std::string listing;
  for (const auto& [d, k] : types) listing += std::string(dtype_name(d)) + " x" + std::to_string(k) + " ";
  std::cout << "[ default  ] " << m.weights.size() << " tensors: " << listing << "\n";
  EXPECT_EQ(m.weights.size(), 236u);
  EXPECT_EQ(types[DType::f32], 109);
  EXPECT_EQ(types[DType::q5_0], 81);
  EXPECT_EQ(types[DType::q4_k], 27);
  EXPECT_EQ(types[DType::q8_0], 10);
  EXPECT_EQ(types[DType::q6_k], 9);
  EXPECT_EQ(m.weights.get("model.embed_tokens.weight").dtype(), DType::q8_0);
  EXPECT_EQ(m.weights.get("model.embed_tokens.weight").shape(), (Shape{262144, 640}));
  EXPECT_EQ(m.weights.get("model.layers.0.self_attn.q_proj.weight").shape(), (Shape{1024, 640}));
  // Values: the first and last rows of every tensor are finite; Gemma norms hold 1 + w (mostly > 0).
  for (const auto& n : m.weights.names()) {
    const Tensor& w = m.weights.get(n);
    const int64_t rows = w.dim() == 1 ? 1 : w.size(0);
    for (int64_t r : {int64_t{0}, rows - 1}) {
      const Tensor row = w.dim() == 1 ? w : w.select(0, r);
      const std::vector<float> v =
          is_quant(w.dtype()) ? ops::dequantize(row.unsqueeze(0), DType::f32).to_vector<float>() : row.to_vector<float>();
      for (float x : v) ASSERT_TRUE(std::isfinite(x)) << n << " row " << r;
    }
  }
  const std::vector<float> norm = m.weights.get("model.norm.weight").to_vector<float>();
  double mean = 0;
  for (float x : norm) mean += x / static_cast<double>(norm.size());
  EXPECT_GT(mean, 0.5) << "GGUF Gemma norms should already include the +1";
}

}  // namespace
}  // namespace flagos::model
