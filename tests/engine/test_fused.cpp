// Fused projections (EngineOptions::fused_qkv / fused_gate_up: one linear over q/k/v and one over
// gate/up, weights stacked at load) against the separate linears, for every architecture with f32,
// bf16 and q8_0 weights: logits of a dense prefill, of a batch of two sequences prefilled and
// decoded together (paged attention, strided q/k/v views with N > 1) and greedy generation (graph
// replay on CUDA). The stacked weights must be views of the store (no second copy).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "flagos/engine.h"
#include "golden.h"

namespace flagos {
namespace {

using engine::SeqId;
using engine::StepItem;
using test::Golden;

struct Case {
  std::string arch;
  DType weights;  // f32, bf16 (compute bf16 too) or q8_0 (on load, f32 compute)
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.arch << " " << c.weights; }

std::unique_ptr<engine::Engine> open(const Case& c, bool fused) {
  model::LoadOptions lo;
  lo.device = test::test_device();
  engine::EngineOptions o;
  o.device = lo.device;
  if (c.weights == DType::bf16) {
    lo.dtype = DType::bf16;
    o.compute_dtype = DType::bf16;
  } else if (c.weights == DType::q8_0) {
    lo.quant = DType::q8_0;
  }
  o.fused_qkv = o.fused_gate_up = fused;
  return std::make_unique<engine::Engine>(model::load_model(test::fixture_dir(c.arch), lo), o);
}

// Largest ||a - b|| / ||b|| over the rows of two logits tensors of one shape.
double rel_err(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  const int64_t V = b.size(1);
  double worst = 0;
  for (int64_t r = 0; r < b.size(0); ++r) worst = std::max(worst, test::rel_l2(va.data() + r * V, vb.data() + r * V, V));
  return worst;
}

// Whether the tensors `names` of `w` sit back to back in one storage (a stacked allocation).
bool back_to_back(const model::WeightStore& w, const std::vector<std::string>& names) {
  const Tensor& f = w.get(names.front());
  int64_t next = f.offset();
  for (const std::string& n : names) {
    const Tensor& t = w.get(n);
    if (t.storage() != f.storage() || t.offset() != next) return false;
    next += static_cast<int64_t>(t.nbytes());
  }
  return true;
}

// FLAGOS_ENGINE_FUSED_QKV / _GATE_UP = 0 (off, false) turn fusion off over EngineOptions.
bool env_off(const char* name) {
  const char* e = std::getenv(name);
  return e && (std::string(e) == "0" || std::string(e) == "off" || std::string(e) == "false");
}

class Fused : public ::testing::TestWithParam<Case> {};

TEST_P(Fused, MatchesSeparateProjections) {
  const Case& c = GetParam();
  const Golden g(c.arch);
  auto fused = open(c, true), plain = open(c, false);
  // The stacked weights are the store's tensors (views of one allocation, not a second copy).
  const model::WeightStore& wf = fused->model().weights;
  const std::string p = "model.layers.0.";
  if (!env_off("FLAGOS_ENGINE_FUSED_QKV")) {
    EXPECT_TRUE(back_to_back(wf, {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                  p + "self_attn.v_proj.weight"}));
  }
  if (wf.has(p + "mlp.gate_proj.weight") && !env_off("FLAGOS_ENGINE_FUSED_GATE_UP")) {
    EXPECT_TRUE(back_to_back(wf, {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}));
  }
  const double tol = c.weights == DType::bf16 ? 2e-2 : 1e-4;  // bf16: rounding order of other GEMV splits
  double worst = 0;
  // Dense prefill of one fresh sequence.
  const auto prompt = Golden::ids(g.index["prompt"]);
  worst = std::max(worst, rel_err(fused->forward({{fused->create_sequence(), prompt, true}}),
                                  plain->forward({{plain->create_sequence(), prompt, true}})));
  // Two sequences prefilled together (paged), then decoded together.
  const auto& batch = g.index["batch"];
  std::vector<SeqId> sf, sp;
  std::vector<StepItem> itf, itp;
  for (const auto& b : batch) {
    const auto ids = Golden::ids(b["prompt"]);
    sf.push_back(fused->create_sequence());
    sp.push_back(plain->create_sequence());
    itf.push_back({sf.back(), ids, false});
    itp.push_back({sp.back(), ids, false});
  }
  Tensor lf = fused->forward(itf), lp = plain->forward(itp);
  worst = std::max(worst, rel_err(lf, lp));
  for (int step = 0; step < 6; ++step) {
    itf.clear(), itp.clear();
    for (size_t i = 0; i < sf.size(); ++i) {
      const int32_t t = test::argmax_row(lp, static_cast<int64_t>(i));
      itf.push_back({sf[i], {t}, false});
      itp.push_back({sp[i], {t}, false});
    }
    lf = fused->forward(itf), lp = plain->forward(itp);
    worst = std::max(worst, rel_err(lf, lp));
  }
  std::printf("[fused] %-10s %-4s fused vs separate projections: max rel err %.3g\n", c.arch.c_str(),
              std::string(dtype_name(c.weights)).c_str(), worst);
  EXPECT_LT(worst, tol);
  // Greedy generation (decode graphs on CUDA) picks the same tokens.
  const auto gf = fused->generate(prompt, test::greedy(8)), gp = plain->generate(prompt, test::greedy(8));
  if (c.weights != DType::bf16) {
    EXPECT_EQ(gf.tokens, gp.tokens);
  }
}

std::vector<Case> cases() {
  std::vector<Case> r;
  for (const std::string& a : test::golden_archs())
    for (DType d : {DType::f32, DType::bf16, DType::q8_0}) r.push_back({a, d});
  return r;
}

INSTANTIATE_TEST_SUITE_P(Archs, Fused, ::testing::ValuesIn(cases()), [](const auto& info) {
  return info.param.arch + "_" + std::string(dtype_name(info.param.weights));
});

}  // namespace
}  // namespace flagos
