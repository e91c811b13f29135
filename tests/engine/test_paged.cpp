// The paged KV cache and the decode graphs of the engine, on every architecture's fixture: a batch
// of sequences with different lengths (prefill and decode items mixed) gives the logits of each
// sequence run alone; prefix reuse after truncation mid-block; pools that grow mid-generation;
// freed and truncated sequences return their blocks. On a device with graphs (CUDA; skipped
// elsewhere): decode steps replayed from a graph per batch bucket give the eager logits and tokens,
// for several buckets and after the pools grow. FLAGOS_ENGINE_TEST_DEVICE picks the device.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "flagos/engine.h"
#include "flagos/graph.h"
#include "golden.h"

namespace flagos {
namespace {

using engine::Engine;
using engine::SeqId;
using engine::StepItem;
using test::Golden;
using test::greedy;
using test::test_device;

constexpr double kTol = 1e-4;  // relative L2 error of a logits row against the same row run alone

std::unique_ptr<Engine> open(const std::string& arch, engine::EngineOptions o = {}) {
  return test::open_engine(test::fixture_dir(arch), o);
}

// Row-wise relative L2 error of two f32 logits tensors of the same shape (NaN never passes).
double rel_err(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  const std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  const int64_t rows = got.size(0), V = got.size(1);
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) worst = std::max(worst, test::rel_l2(g.data() + r * V, w.data() + r * V, V));
  return worst;
}

std::vector<int32_t> tokens(int n, int salt, int64_t vocab) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((i * 37 + salt * 101 + 3) % vocab));
  return t;
}

class Paged : public ::testing::TestWithParam<std::string> {};

TEST_P(Paged, MixedBatchMatchesEachSequenceAlone) {
  engine::EngineOptions o;
  o.kv_block_size = 4;
  auto batched = open(GetParam(), o);
  auto alone = open(GetParam(), o);
  const int64_t V = batched->config().vocab_size;
  // Histories of 7, 3 and 0 tokens, then one pass: 1 decode token, 4 tokens, a fresh 5-token prompt.
  const std::vector<std::vector<int32_t>> history = {tokens(7, 1, V), tokens(3, 2, V), {}};
  const std::vector<std::vector<int32_t>> step = {tokens(1, 3, V), tokens(4, 4, V), tokens(5, 5, V)};
  std::vector<SeqId> sb, sa;
  for (size_t i = 0; i < history.size(); ++i) {
    sb.push_back(batched->create_sequence());
    sa.push_back(alone->create_sequence());
    if (!history[i].empty()) {
      batched->forward({{sb[i], history[i], false}});
      alone->forward({{sa[i], history[i], false}});
    }
  }
  const Tensor got = batched->forward({{sb[0], step[0], false}, {sb[1], step[1], true}, {sb[2], step[2], true}});
  ASSERT_EQ(got.size(0), 1 + 4 + 5);
  int64_t row = 0;
  double worst = 0;
  for (size_t i = 0; i < step.size(); ++i) {
    const Tensor want = alone->forward({{sa[i], step[i], i > 0}});
    worst = std::max(worst, rel_err(got.narrow(0, row, want.size(0)), want));
    row += want.size(0);
  }
  // And decode steps of all three together against each alone.
  for (int k = 0; k < 3; ++k) {
    std::vector<StepItem> items;
    for (size_t i = 0; i < sb.size(); ++i) items.push_back({sb[i], tokens(1, 10 + k * 3 + static_cast<int>(i), V), false});
    const Tensor g = batched->forward(items);
    for (size_t i = 0; i < sa.size(); ++i)
      worst = std::max(worst, rel_err(g.narrow(0, static_cast<int64_t>(i), 1),
                                      alone->forward({{sa[i], items[i].tokens, false}})));
  }
  std::printf("[paged] %-10s mixed batch vs alone: max rel err %.3g\n", GetParam().c_str(), worst);
  EXPECT_LT(worst, kTol);
}

TEST_P(Paged, PrefixReuseAfterTruncation) {
  engine::EngineOptions o;
  o.kv_block_size = 4;
  auto eng = open(GetParam(), o);
  const int64_t V = eng->config().vocab_size;
  const auto first = tokens(13, 7, V);
  const SeqId s = eng->create_sequence();
  eng->forward({{s, first, false}});
  const int64_t blocks_before = eng->stats().kv_free_blocks;
  eng->truncate_sequence(s, 6);  // mid-block: keeps blocks 0 and 1 (positions 0..7), frees 2 and 3
  EXPECT_EQ(eng->sequence_length(s), 6);
  EXPECT_EQ(eng->stats().kv_free_blocks, blocks_before + 2);
  std::vector<int32_t> rest = tokens(9, 8, V);
  const Tensor got = eng->forward({{s, rest, true}});
  std::vector<int32_t> full(first.begin(), first.begin() + 6);
  full.insert(full.end(), rest.begin(), rest.end());
  const SeqId f = eng->create_sequence();
  const Tensor want = eng->forward({{f, full, true}}).narrow(0, 6, 9);
  const double err = rel_err(got, want);
  std::printf("[paged] %-10s truncate to 6 + 9 tokens vs fresh: max rel err %.3g\n", GetParam().c_str(), err);
  EXPECT_LT(err, kTol);
  // generate() on a kept sequence truncates to the common prefix and gives the fresh result.
  const auto again = eng->generate(s, std::vector<int32_t>(full.begin(), full.begin() + 10), greedy(5));
  EXPECT_EQ(again.tokens, eng->generate(std::vector<int32_t>(full.begin(), full.begin() + 10), greedy(5)).tokens);
}

TEST_P(Paged, PoolGrowsMidGeneration) {
  engine::EngineOptions small;
  small.kv_block_size = 4;
  small.kv_grow_tokens = 4;  // one block at first
  small.prefill_chunk = 3;
  auto eng = open(GetParam(), small);
  auto reference = open(GetParam());
  const int64_t V = eng->config().vocab_size;
  std::vector<engine::GenerationRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back({tokens(5 + 3 * i, 20 + i, V), greedy(24)});
  const auto got = eng->generate_batch(reqs);
  const auto want = reference->generate_batch(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
  const engine::EngineStats st = eng->stats();
  EXPECT_GE(st.kv_pool_growths, 3) << "the pools never grew: the test shows nothing";
  EXPECT_EQ(st.kv_free_blocks, st.kv_blocks) << "finished requests kept blocks";
  EXPECT_EQ(eng->kv_cache_bytes(), 0);
}

TEST_P(Paged, FreedSequencesReturnTheirBlocks) {
  engine::EngineOptions o;
  o.kv_block_size = 4;
  o.kv_grow_tokens = 64;
  auto eng = open(GetParam(), o);
  const int64_t V = eng->config().vocab_size;
  const int64_t total = eng->stats().kv_blocks;  // 0: the pools are made on first use
  EXPECT_EQ(total, 0);
  std::vector<SeqId> seqs;
  for (int i = 0; i < 4; ++i) {
    seqs.push_back(eng->create_sequence());
    eng->forward({{seqs.back(), tokens(5 + i, 30 + i, V), false}});  // 2, 2, 2, 2 blocks
  }
  engine::EngineStats st = eng->stats();
  EXPECT_EQ(st.kv_blocks, 16);
  EXPECT_EQ(st.kv_free_blocks, 16 - 8);
  const model::ModelConfig& c = eng->config();
  const int64_t block_bytes = 2 * c.num_layers * c.num_kv_heads * 4 * c.head_dim * 4;  // K + V, f32, 4 positions
  EXPECT_EQ(eng->kv_cache_bytes(), 8 * block_bytes);
  for (SeqId s : seqs) eng->free_sequence(s);
  st = eng->stats();
  EXPECT_EQ(st.kv_free_blocks, st.kv_blocks);
  EXPECT_EQ(eng->kv_cache_bytes(), 0);
  // The freed blocks are reused: the same work again does not grow the pools.
  for (int i = 0; i < 4; ++i) eng->forward({{eng->create_sequence(), tokens(5 + i, 40 + i, V), false}});
  EXPECT_EQ(eng->stats().kv_pool_growths, 0);
  EXPECT_EQ(eng->stats().kv_free_blocks, 8);
}

// Decode steps of B sequences (B = 1, 2, 3, 5, 8: buckets 1, 2, 4, 8) with graphs against without.
TEST_P(Paged, GraphReplayMatchesEager) {
  const Device dev = test_device();
  if (dev.is_cpu() || !Graph::supported(dev)) GTEST_SKIP() << "no graph-capable device (FLAGOS_ENGINE_TEST_DEVICE)";
  engine::EngineOptions o;
  o.kv_block_size = 4;
  o.kv_grow_tokens = 8;  // small pools: they grow while decoding, the graphs are captured again
  auto with = open(GetParam(), o);
  o.graphs = false;
  auto without = open(GetParam(), o);
  const int64_t V = with->config().vocab_size;
  double worst = 0;
  for (int B : {1, 2, 3, 5, 8}) {
    std::vector<SeqId> sw, so;
    std::vector<int32_t> next;
    for (int i = 0; i < B; ++i) {
      const auto prompt = tokens(3 + 2 * i, 50 + i, V);
      sw.push_back(with->create_sequence());
      so.push_back(without->create_sequence());
      with->forward({{sw.back(), prompt, false}});
      const Tensor l = without->forward({{so.back(), prompt, false}});
      next.push_back(test::argmax_row(l, 0));
    }
    for (int k = 0; k < 12; ++k) {
      std::vector<StepItem> iw, io;
      for (int i = 0; i < B; ++i) {
        iw.push_back({sw[static_cast<size_t>(i)], {next[static_cast<size_t>(i)]}, false});
        io.push_back({so[static_cast<size_t>(i)], {next[static_cast<size_t>(i)]}, false});
      }
      const Tensor a = with->forward(iw), b = without->forward(io);
      worst = std::max(worst, rel_err(a, b));
      for (int i = 0; i < B; ++i) {
        EXPECT_EQ(test::argmax_row(a, i), test::argmax_row(b, i)) << "B " << B << " step " << k << " row " << i;
        next[static_cast<size_t>(i)] = test::argmax_row(b, i);
      }
    }
    for (SeqId s : sw) with->free_sequence(s);
    for (SeqId s : so) without->free_sequence(s);
  }
  const engine::EngineStats st = with->stats();
  std::printf("[paged] %-10s graph vs eager: max rel err %.3g (%lld graphs captured, %lld replays, %lld growths)\n",
              GetParam().c_str(), worst, static_cast<long long>(st.graphs_captured),
              static_cast<long long>(st.graph_replays), static_cast<long long>(st.kv_pool_growths));
  EXPECT_LT(worst, kTol);
  EXPECT_EQ(without->stats().graph_replays, 0);
  if (GetParam() == "qwen3_moe") {
    EXPECT_EQ(st.graph_replays, 0) << "MoE routing reads the host: it must run eagerly";
  } else {
    EXPECT_GT(st.graphs_captured, 4);  // every bucket, and again after growths
    EXPECT_GT(st.graph_replays, 10);
    EXPECT_GT(st.kv_pool_growths, 0);
  }
  // Sampled generation through graphs draws what the eager engine draws.
  engine::GenerationParams p = greedy(10);
  p.sampling.temperature = 0.8f;
  p.sampling.seed = 5;
  std::vector<engine::GenerationRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back({tokens(4 + i, 60 + i, V), p});
  const auto ra = with->generate_batch(reqs), rb = without->generate_batch(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(ra[i].tokens, rb[i].tokens) << "request " << i;
}

INSTANTIATE_TEST_SUITE_P(Archs, Paged, ::testing::ValuesIn(test::golden_archs()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace flagos
