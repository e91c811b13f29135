// Every architecture against Hugging Face transformers with f32 weights: logits of every prompt
// position, greedy decode steps, a batch of two sequences of different lengths decoded together,
// and prefill in chunks with a paged KV cache whose pools regrow mid-sequence.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "flagos/engine.h"
#include "golden.h"

namespace flagos {
namespace {

using test::Golden;
using test::greedy;
using test::Matrix;
using test::max_rel_err;

constexpr double kTol = 1e-4;  // relative L2 error of each logits row

std::unique_ptr<engine::Engine> open(const Golden& g, engine::EngineOptions o = {}) {
  return test::open_engine(g.dir, o);
}

class Golden_ : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden_, PrefillEveryPosition) {
  const Golden g(GetParam());
  auto eng = open(g);
  const auto prompt = Golden::ids(g.index["prompt"]);
  const engine::SeqId s = eng->create_sequence();
  const Tensor logits = eng->forward({{s, prompt, true}});
  ASSERT_EQ(logits.size(0), static_cast<int64_t>(prompt.size()));
  const double err = max_rel_err(logits, g.matrix(g.index["prefill_logits"]));
  std::printf("[golden] %-10s prefill (%zu positions): max rel err %.3g\n", g.arch.c_str(), prompt.size(), err);
  EXPECT_LT(err, kTol);
  EXPECT_EQ(eng->sequence_length(s), static_cast<int64_t>(prompt.size()));
}

TEST_P(Golden_, GreedyDecodeSteps) {
  const Golden g(GetParam());
  auto eng = open(g);
  const auto prompt = Golden::ids(g.index["prompt"]);
  const auto want_tokens = Golden::ids(g.index["greedy_tokens"]);
  const Matrix want = g.matrix(g.index["decode_logits"]);
  // Step by step through forward(): feed the reference token each step so every step is compared.
  const engine::SeqId s = eng->create_sequence();
  Tensor logits = eng->forward({{s, prompt, false}});
  double worst = 0;
  for (size_t k = 0; k < want_tokens.size(); ++k) {
    worst = std::max(worst, max_rel_err(logits, want, static_cast<int64_t>(k)));
    EXPECT_EQ(test::argmax_row(logits, 0), want_tokens[k]) << "step " << k;
    if (k + 1 < want_tokens.size()) logits = eng->forward({{s, {want_tokens[k]}, false}});
  }
  std::printf("[golden] %-10s decode (%zu steps): max rel err %.3g\n", g.arch.c_str(), want_tokens.size(), worst);
  EXPECT_LT(worst, kTol);
  // The same through generate().
  const auto r = eng->generate(prompt, greedy(static_cast<int64_t>(want_tokens.size())));
  EXPECT_EQ(r.tokens, want_tokens);
  EXPECT_EQ(r.finish, engine::FinishReason::length);
  EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(r.generated_tokens, static_cast<int64_t>(want_tokens.size()));
}

TEST_P(Golden_, BatchOfTwoSequences) {
  const Golden g(GetParam());
  auto eng = open(g);
  const auto& batch = g.index["batch"];
  ASSERT_EQ(batch.size(), 2u);
  std::vector<std::vector<int32_t>> prompts, tokens;
  std::vector<engine::SeqId> seqs;
  std::vector<engine::StepItem> items;
  for (const auto& b : batch) {
    prompts.push_back(Golden::ids(b["prompt"]));
    tokens.push_back(Golden::ids(b["greedy_tokens"]));
    seqs.push_back(eng->create_sequence());
    items.push_back({seqs.back(), prompts.back(), true});
  }
  ASSERT_NE(prompts[0].size(), prompts[1].size());
  // Both prompts in one forward pass, every position's logits.
  const Tensor logits = eng->forward(items);
  const int64_t n0 = static_cast<int64_t>(prompts[0].size()), n1 = static_cast<int64_t>(prompts[1].size());
  ASSERT_EQ(logits.size(0), n0 + n1);
  double worst = std::max(max_rel_err(logits.narrow(0, 0, n0), g.matrix(batch[0]["logits"])),
                          max_rel_err(logits.narrow(0, n0, n1), g.matrix(batch[1]["logits"])));
  // Decode steps of both sequences in one pass each.
  for (size_t k = 0; k + 1 < tokens[0].size(); ++k) {
    const Tensor step = eng->forward({{seqs[0], {tokens[0][k]}, false}, {seqs[1], {tokens[1][k]}, false}});
    for (int i = 0; i < 2; ++i) {
      worst = std::max(worst, max_rel_err(step.narrow(0, i, 1), g.matrix(batch[i]["decode_logits"]),
                                          static_cast<int64_t>(k) + 1));
      EXPECT_EQ(test::argmax_row(step, i), tokens[static_cast<size_t>(i)][k + 1]) << "sequence " << i << " step " << k;
    }
  }
  std::printf("[golden] %-10s batch of 2 (%lld + %lld tokens, decode together): max rel err %.3g\n", g.arch.c_str(),
              static_cast<long long>(n0), static_cast<long long>(n1), worst);
  EXPECT_LT(worst, kTol);
  // generate_batch decodes both together and must pick the same tokens.
  const auto results = eng->generate_batch({{prompts[0], greedy(static_cast<int64_t>(tokens[0].size()))},
                                            {prompts[1], greedy(static_cast<int64_t>(tokens[1].size()))}});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].tokens, tokens[0]);
  EXPECT_EQ(results[1].tokens, tokens[1]);
}

TEST_P(Golden_, ChunkedPrefillWithRegrowingCache) {
  const Golden g(GetParam());
  engine::EngineOptions o;
  o.prefill_chunk = 4;   // 13 prompt tokens: chunks of 4, 4, 4, 1
  o.kv_block_size = 2;   // blocks of 2 positions,
  o.kv_grow_tokens = 3;  // pools of 2 blocks at first: they reallocate (copying what they hold) as the prompt grows
  auto eng = open(g, o);
  const auto prompt = Golden::ids(g.index["prompt"]);
  const Matrix want = g.matrix(g.index["prefill_logits"]);
  const engine::SeqId s = eng->create_sequence();
  const int64_t split = 5;
  const Tensor a = eng->forward({{s, {prompt.begin(), prompt.begin() + split}, true}});
  const Tensor b = eng->forward({{s, {prompt.begin() + split, prompt.end()}, true}});
  const double err = std::max(max_rel_err(a, want, 0), max_rel_err(b, want, split));
  EXPECT_LT(err, kTol);
  const auto want_tokens = Golden::ids(g.index["greedy_tokens"]);
  EXPECT_EQ(eng->generate(prompt, greedy(static_cast<int64_t>(want_tokens.size()))).tokens, want_tokens);
}

INSTANTIATE_TEST_SUITE_P(Archs, Golden_, ::testing::ValuesIn(test::golden_archs()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace flagos
