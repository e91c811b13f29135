// Conformance: multinomial (seeded reproducibility, offset accounting, zero-probability classes,
// frequencies, without replacement) and the fused sampler (greedy, top-k, penalties, top-p,
// min-p, temperature frequencies). Statistical checks use fixed seeds (printed) and bounds far
// from the expected values, so they fail when the sampler is wrong but never by chance.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {
using ops::Generator;

template <typename F>
std::string invalid_message(F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "";
}
#define EXPECT_INVALID(expr, opname)                                                   \
  do {                                                                                 \
    const std::string msg_ = invalid_message([&] { (void)(expr); });                   \
    EXPECT_NE(msg_.find(opname), std::string::npos) << #expr << " -> '" << msg_ << "'"; \
  } while (0)

std::vector<int64_t> ids(const Tensor& t) { return t.to_vector<int64_t>(); }

// Pearson chi-square of observed counts against probabilities (classes with p = 0 must be empty).
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t n) {
  const double tot = std::accumulate(p.begin(), p.end(), 0.0);
  double chi = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = double(n) * p[i] / tot;
    if (e == 0) {
      EXPECT_EQ(counts[i], 0) << "class " << i << " has probability 0 but was drawn";
      continue;
    }
    chi += (double(counts[i]) - e) * (double(counts[i]) - e) / e;
  }
  return chi;
}

class Multinomial : public ::testing::TestWithParam<std::pair<Device, DType>> {};

TEST_P(Multinomial, ReproducibleAndOffsetAdvances) {
  const auto [dev, t] = GetParam();
  auto rng = rng_for_current_test();
  Tensor probs = make_input({3, 50}, t, dev, rng, {0.0, 1.0});
  Generator g1{1234, 7}, g2{1234, 7};
  const auto a = ids(ops::multinomial(probs, 20, true, g1));
  const auto b = ids(ops::multinomial(probs, 20, true, g2));
  EXPECT_EQ(a, b);
  EXPECT_EQ(g1.offset, 7u + 3 * 20);
  const auto c = ids(ops::multinomial(probs, 20, true, g1));  // continues the stream
  EXPECT_NE(a, c);
  Generator g3{1234, 7};
  const auto d = ids(ops::multinomial(probs, 5, false, g3));
  EXPECT_EQ(g3.offset, 7u + 3 * 5);
  for (int r = 0; r < 3; ++r) {
    std::set<int64_t> s(d.begin() + r * 5, d.begin() + r * 5 + 5);
    EXPECT_EQ(s.size(), 5u) << "row " << r << " repeats a category without replacement";
  }
  // 1-D probs -> [num_samples]
  Generator g4{9, 0};
  Tensor one = ops::multinomial(probs.select(0, 1), 4, true, g4);
  EXPECT_EQ(one.shape(), Shape{4});
  EXPECT_EQ(one.dtype(), DType::i64);
}

TEST_P(Multinomial, ZeroProbabilityNeverDrawn) {
  const auto [dev, t] = GetParam();
  const int64_t C = 40;
  std::vector<double> p(2 * C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    p[static_cast<size_t>(c)] = c % 3 == 0 ? 0.0 : 1.0 + double(c % 5);   // row 0: every third is 0
    p[static_cast<size_t>(C + c)] = (c == 0 || c == C - 1) ? 1.0 : 0.0;    // row 1: only the ends
  }
  p[1] = 0;  // row 0 starts with two zeros
  Tensor probs = Tensor::from_vector(p, {2, C}, t).to(dev);
  for (uint64_t seed : {1ull, 2ull, 3ull}) {
    Generator g{seed, 0};
    const auto a = ids(ops::multinomial(probs, 3000, true, g));
    for (int64_t i = 0; i < 3000; ++i) {
      ASSERT_GT(p[static_cast<size_t>(a[static_cast<size_t>(i)])], 0.0) << "seed " << seed;
      ASSERT_GT(p[static_cast<size_t>(C + a[static_cast<size_t>(3000 + i)])], 0.0) << "seed " << seed;
    }
    // without replacement: draws exactly the non-zero classes of row 1
    Generator g2{seed, 0};
    const auto b = ids(ops::multinomial(probs, 2, false, g2));
    EXPECT_EQ(std::set<int64_t>(b.begin() + 2, b.end()), (std::set<int64_t>{0, C - 1}));
  }
}

TEST_P(Multinomial, FrequenciesMatch) {
  const auto [dev, t] = GetParam();
  const std::vector<double> p = {0.1, 0.0, 0.2, 0.3, 0.15, 0.25, 0.0, 0.05};  // exact in every float type? close enough:
  Tensor probs = Tensor::from_vector(p, {1, 8}, t).to(dev);
  const auto pv = to_f64(probs);  // the rounded probabilities are the truth
  const int64_t n = 20000;
  for (uint64_t seed : {11ull, 12ull}) {
    std::printf("[multinomial chi-square] dtype %s seed %llu\n", std::string(dtype_name(t)).c_str(),
                static_cast<unsigned long long>(seed));
    Generator g{seed, 0};
    const auto a = ids(ops::multinomial(probs, n, true, g));
    std::vector<int64_t> cnt(8, 0);
    for (int64_t v : a) ++cnt[static_cast<size_t>(v)];
    // 6 degrees of freedom: P(chi2 > 40) ~ 5e-7; an off-by-one or skewed draw gives thousands.
    EXPECT_LT(chi_square(cnt, pv, n), 40.0) << "seed " << seed;
    // without replacement, the first draw has the same distribution
    std::vector<int64_t> first(8, 0);
    Tensor rows = probs.expand({4000, 8});
    Generator g2{seed, 100};
    const auto b = ids(ops::multinomial(rows, 3, false, g2));
    for (int64_t r = 0; r < 4000; ++r) {
      ++first[static_cast<size_t>(b[static_cast<size_t>(r * 3)])];
      std::set<int64_t> s(b.begin() + r * 3, b.begin() + r * 3 + 3);
      ASSERT_EQ(s.size(), 3u);
      for (int64_t v : s) ASSERT_GT(pv[static_cast<size_t>(v)], 0.0);
    }
    EXPECT_LT(chi_square(first, pv, 4000), 40.0) << "seed " << seed;
  }
}

std::vector<std::pair<Device, DType>> mn_cases() {
  std::vector<std::pair<Device, DType>> v;
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16}) v.push_back({d, t});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, Multinomial, ::testing::ValuesIn(mn_cases()),
                         [](const ::testing::TestParamInfo<std::pair<Device, DType>>& i) {
                           return sanitize(device_tag(i.param.first) + "_" + std::string(dtype_name(i.param.second)));
                         });

TEST(MultinomialErrors, BadArguments) {
  Generator g;
  EXPECT_INVALID(ops::multinomial(Tensor::from_vector(std::vector<double>{0.5, -0.1}, {2}, DType::f32), 1, true, g),
                 "multinomial");
  EXPECT_INVALID(ops::multinomial(ops::zeros({2, 3}), 1, true, g), "multinomial");
  EXPECT_INVALID(ops::multinomial(ops::ones({2, 3}), 4, false, g), "multinomial");
  EXPECT_INVALID(ops::multinomial(Tensor::from_vector(std::vector<double>{1, 0, 0}, {3}, DType::f32), 2, false, g),
                 "multinomial");
  EXPECT_INVALID(ops::multinomial(ops::ones({2, 3, 4}), 1, true, g), "multinomial");
  EXPECT_INVALID(ops::multinomial(ops::ones({3}, DType::i32), 1, true, g), "multinomial");
  EXPECT_INVALID(ops::multinomial(ops::ones({3}), 0, true, g), "multinomial");
  EXPECT_EQ(g.offset, 0u);
}

// ================================================================ sample

class Sample : public ::testing::TestWithParam<std::pair<Device, DType>> {};

std::vector<int64_t> argmax_rows(const std::vector<double>& l, int64_t B, int64_t V) {
  std::vector<int64_t> r(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (l[static_cast<size_t>(b * V + i)] > l[static_cast<size_t>(b * V + best)]) best = i;
    r[static_cast<size_t>(b)] = best;
  }
  return r;
}

TEST_P(Sample, GreedyAndTopK1AreArgmax) {
  const auto [dev, t] = GetParam();
  auto rng = rng_for_current_test();
  const int64_t B = 5, V = 1001;
  Tensor logits = make_input({B, V}, t, dev, rng, {-8, 8});
  auto lv = to_f64(logits);
  // a tie for the max in row 2: the lower index wins
  lv[2 * V + 10] = lv[2 * V + 900] = 20;
  logits = Tensor::from_vector(lv, {B, V}, t).to(dev);
  const auto want = argmax_rows(lv, B, V);
  SamplerParams g;
  g.temperature = 0;
  EXPECT_EQ(ids(ops::sample(logits, g)), want);
  EXPECT_EQ(want[2], 10);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SamplerParams k1;
    k1.top_k = 1;
    k1.seed = seed;
    EXPECT_EQ(ids(ops::sample(logits, k1)), want) << "seed " << seed;
  }
  // strided (transposed) logits view
  Tensor tr = Tensor::from_vector(lv, {B, V}, t).to(dev).transpose(0, 1).contiguous().transpose(0, 1);
  EXPECT_EQ(ids(ops::sample(tr, g)), want);
}

TEST_P(Sample, PenaltiesChangeTheArgmax) {
  const auto [dev, t] = GetParam();
  // row 0: positive logits; row 1: negative logits
  const std::vector<double> l = {3.0, 2.75, 0.5, -4, -1.0, -1.25, -5, -6};
  Tensor logits = Tensor::from_vector(l, {2, 4}, t).to(dev);
  SamplerParams p;
  p.temperature = 0;
  EXPECT_EQ(ids(ops::sample(logits, p)), (std::vector<int64_t>{0, 0}));
  for (DType hd : {DType::i32, DType::i64}) {
    // token 0 seen (with -1 padding and an out-of-range id that must be ignored)
    Tensor h = Tensor::from_vector(std::vector<double>{-1, 0, 99, -1, 0, -1}, {2, 3}, hd).to(dev);
    SamplerParams rp = p;
    rp.repetition_penalty = 1.5f;  // 3 / 1.5 = 2 < 2.75 ; -1 * 1.5 = -1.5 < -1.25
    EXPECT_EQ(ids(ops::sample(logits, rp, h)), (std::vector<int64_t>{1, 1}));
    rp.repetition_penalty = 1.05f;  // 2.857 > 2.75 ; -1.05 > -1.25: unchanged
    EXPECT_EQ(ids(ops::sample(logits, rp, h)), (std::vector<int64_t>{0, 0}));
    // frequency counts occurrences: 3 x 0.1 = 0.3 > 0.25 flips row 0; one occurrence (0.1) does not
    Tensor h3 = Tensor::from_vector(std::vector<double>{0, 0, 0, 0, -1, -1}, {2, 3}, hd).to(dev);
    SamplerParams fp = p;
    fp.frequency_penalty = 0.1f;
    EXPECT_EQ(ids(ops::sample(logits, fp, h3)), (std::vector<int64_t>{1, 0}));
    // presence is counted once however often the token appears
    SamplerParams pp = p;
    pp.presence_penalty = 0.2f;
    EXPECT_EQ(ids(ops::sample(logits, pp, h3)), (std::vector<int64_t>{0, 0}));
    pp.presence_penalty = 0.3f;
    EXPECT_EQ(ids(ops::sample(logits, pp, h3)), (std::vector<int64_t>{1, 1}));
  }
}

// Draws row 0 of `logits` under many seeds; returns counts per id.
std::vector<int64_t> draw_counts(const Tensor& logits, SamplerParams p, int n) {
  std::vector<int64_t> cnt(static_cast<size_t>(logits.size(1)), 0);
  Tensor rows = logits.expand({n, logits.size(1)});  // row r draws with counter offset + r
  p.offset = 1000;
  for (int64_t v : ids(ops::sample(rows, p))) ++cnt[static_cast<size_t>(v)];
  return cnt;
}

TEST_P(Sample, TopPMinPTopKFilterExactly) {
  const auto [dev, t] = GetParam();
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  std::vector<double> lv;
  for (double q : probs) lv.push_back(std::log(q));
  Tensor logits = Tensor::from_vector(lv, {1, 4}, t).to(dev);
  for (uint64_t seed : {5ull, 6ull}) {
    std::printf("[sample filters] dtype %s seed %llu\n", std::string(dtype_name(t)).c_str(),
                static_cast<unsigned long long>(seed));
    SamplerParams tp;
    tp.top_p = 0.7f;  // nucleus {0, 1}: mass before id 2 is 0.8 >= 0.7
    tp.seed = seed;
    auto c = draw_counts(logits, tp, 4000);
    EXPECT_EQ(c[2] + c[3], 0);
    EXPECT_GT(c[0], 2000);  // expected 2500
    EXPECT_GT(c[1], 1100);  // expected 1500
    SamplerParams mp;
    mp.min_p = 0.25f;  // keeps p >= 0.125: {0, 1, 2}
    mp.seed = seed;
    c = draw_counts(logits, mp, 4000);
    EXPECT_EQ(c[3], 0);
    EXPECT_GT(c[2], 400);  // expected ~632
    SamplerParams kp;
    kp.top_k = 2;
    kp.seed = seed;
    c = draw_counts(logits, kp, 4000);
    EXPECT_EQ(c[2] + c[3], 0);
    EXPECT_GT(c[1], 1100);
    // top-p on a large vocabulary (no top-k): three big tokens, a long tail of tiny ones
    const int64_t V = 5000;
    std::vector<double> big(static_cast<size_t>(V));
    std::mt19937_64 r(seed);
    std::uniform_real_distribution<double> u(-16, -11);
    for (double& x : big) x = u(r);
    big[4000] = 0;
    big[17] = -0.5;
    big[2500] = -1;
    Tensor bl = Tensor::from_vector(big, {1, V}, t).to(dev);
    SamplerParams np;
    np.top_p = 0.9f;
    np.seed = seed;
    c = draw_counts(bl, np, 3000);
    EXPECT_EQ(c[4000] + c[17] + c[2500], 3000);
    EXPECT_GT(c[2500], 300);  // expected ~565
    // plain sampling from the full distribution reaches the tail
    SamplerParams all;
    all.seed = seed;
    all.temperature = 4.0f;
    c = draw_counts(bl, all, 3000);
    EXPECT_LT(c[4000] + c[17] + c[2500], 3000);
  }
}

TEST_P(Sample, TemperatureFrequenciesAndReproducibility) {
  const auto [dev, t] = GetParam();
  const std::vector<double> lv = {1.0, 0.0, -1.0, 2.0, -30.0};
  Tensor logits = Tensor::from_vector(lv, {1, 5}, t).to(dev);
  const auto lr = to_f64(logits);
  for (float temp : {0.5f, 2.0f}) {
    SamplerParams p;
    p.temperature = temp;
    p.seed = 77;
    std::printf("[sample temperature] dtype %s T %.1f seed 77\n", std::string(dtype_name(t)).c_str(), temp);
    const int n = 20000;
    const auto c = draw_counts(logits, p, n);
    std::vector<double> q;
    for (double x : lr) q.push_back(std::exp(x / temp));
    double tot = std::accumulate(q.begin(), q.end(), 0.0), chi = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      const double e = n * q[i] / tot;
      if (e < 5) continue;  // the -30 class: too rare to test by count
      chi += (double(c[i]) - e) * (double(c[i]) - e) / e;
    }
    EXPECT_LT(chi, 40.0) << "temperature " << temp;
  }
  // same (seed, offset) -> same draws; row r uses counter offset + r
  auto rng = rng_for_current_test();
  Tensor many = make_input({6, 300}, t, dev, rng, {-3, 3});
  SamplerParams p;
  p.seed = 42;
  p.offset = 10;
  p.top_p = 0.95f;
  const auto a = ids(ops::sample(many, p)), b = ids(ops::sample(many, p));
  EXPECT_EQ(a, b);
  SamplerParams p3 = p;
  p3.offset = 13;
  EXPECT_EQ(ids(ops::sample(many.slice(0, 3, 4), p3))[0], a[3]);
}

// Large vocabularies through every sampler path (on accelerators: the multi-block top-k reduction
// for greedy and top-k <= 1024, the one-block path beyond): the same ids as the CPU for the same
// (seed, offset). Rows hold ties of the maximum, NaN and -inf logits, and one row is all NaN.
TEST_P(Sample, LargeVocabularyMatchesCpu) {
  const auto [dev, t] = GetParam();
  auto rng = rng_for_current_test();
  for (int64_t V : {int64_t{152064}, int64_t{5000}}) {
    const int64_t B = 6;
    Tensor base = make_input({B, V}, t, dev, rng, {-8, 8});
    auto lv = to_f64(base);
    const double nan = std::nan("");
    lv[static_cast<size_t>(1 * V + 7)] = lv[static_cast<size_t>(1 * V + V - 3)] = 30;  // tied maximum
    lv[static_cast<size_t>(2 * V + 11)] = nan;
    lv[static_cast<size_t>(2 * V + 12)] = -INFINITY;
    for (int64_t i = 0; i < V; ++i) lv[static_cast<size_t>(5 * V + i)] = nan;
    for (int64_t i = 0; i < V; i += 3) lv[static_cast<size_t>(3 * V + i)] = -INFINITY;
    const Tensor lc = Tensor::from_vector(lv, {B, V}, t);  // CPU
    const Tensor ld = lc.to(dev);
    std::vector<SamplerParams> ps;
    SamplerParams g;
    g.temperature = 0;
    ps.push_back(g);
    for (int k : {1, 40, 1000, 1024, 1025}) {
      SamplerParams p;
      p.top_k = k;
      p.top_p = k == 40 ? 0.9f : 1.0f;
      p.temperature = 0.7f;
      p.seed = 100 + static_cast<uint64_t>(k);
      p.offset = 3;
      ps.push_back(p);
    }
    SamplerParams mp;
    mp.top_k = 50;
    mp.min_p = 0.05f;
    mp.temperature = 1.5f;
    mp.seed = 9;
    ps.push_back(mp);
    for (const SamplerParams& p : ps) {
      std::printf("[sample large V] dtype %s V %lld top_k %d seed %llu\n", std::string(dtype_name(t)).c_str(),
                  static_cast<long long>(V), p.top_k, static_cast<unsigned long long>(p.seed));
      EXPECT_EQ(ids(ops::sample(ld, p)), ids(ops::sample(lc, p))) << "V " << V << " top_k " << p.top_k;
    }
    // penalties (history with padding) before greedy and top-k
    const Tensor h = Tensor::from_vector(std::vector<double>(static_cast<size_t>(B * 4), 7.0), {B, 4}, DType::i64);
    for (SamplerParams p : {ps[0], ps[2]}) {
      p.repetition_penalty = 1.3f;
      p.presence_penalty = 40.0f;
      EXPECT_EQ(ids(ops::sample(ld, p, h.to(dev))), ids(ops::sample(lc, p, h))) << "penalties, top_k " << p.top_k;
    }
  }
}

// Greedy across slice boundaries (accelerators reduce 4096-logit slices, then the row): rows of
// length 1, 4095, 4097 and 152064, batch 16, with maxima tied across slices (the lowest id wins), a
// NaN in the row, an all-NaN row (id 0), an all -inf row (id 0) and the maximum in the last slice.
// Each case runs twice (the per-row reduction state must be clean for the next launch) and then as
// a one-row slice of the batch; ids match the CPU and an f64 argmax with NaN as -inf.
TEST_P(Sample, GreedyAcrossSlicesMatchesCpu) {
  const auto [dev, t] = GetParam();
  auto rng = rng_for_current_test();
  const double nan = std::nan("");
  for (int64_t V : {int64_t{1}, int64_t{4095}, int64_t{4097}, int64_t{152064}}) {
    const int64_t B = 16;
    Tensor base = make_input({B, V}, t, dev, rng, {-8, 8});
    auto lv = to_f64(base);
    auto at = [&](int64_t b, int64_t i) -> double& { return lv[static_cast<size_t>(b * V + i)]; };
    if (V > 1) {
      at(1, V - 1) = 40;  // the maximum in the last slice
      at(2, V - 1) = at(2, 0) = 40;  // tie: first and last slice
      at(3, 5) = nan;
      at(3, V - 2) = 35;
      at(4, V / 2) = nan;  // NaN next to the maximum
      at(4, V / 2 + (V / 2 + 1 < V ? 1 : -1)) = 45;
      if (V > 4096) {
        at(6, 4095) = at(6, 4096) = 50;  // tie across the slice boundary
        at(7, 4096) = at(7, V - 1) = 50;
        at(7, 4097 < V ? 4097 : 0) = nan;
      }
      for (int64_t i = 0; i < V; i += 2) at(8, i) = nan;  // NaN every other logit
      at(8, V - 1) = 60;
    } else {
      at(3, 0) = nan;
      at(4, 0) = -INFINITY;
    }
    for (int64_t i = 0; i < V; ++i) at(9, i) = nan;        // all NaN: id 0
    for (int64_t i = 0; i < V; ++i) at(10, i) = -INFINITY;  // all -inf: id 0
    for (int64_t i = 0; i < V; ++i) at(11, i) = 3;          // all tied: id 0
    for (int64_t i = 0; i < V; ++i) at(12, i) = i % 4096 == 4095 ? 7 : -1;  // tie in every slice
    // f64 argmax (NaN as -inf) of the values rounded to the dtype (rounding may create ties)
    const Tensor lc = Tensor::from_vector(lv, {B, V}, t);
    auto clean = to_f64(lc);
    for (double& x : clean)
      if (std::isnan(x)) x = -INFINITY;
    auto want = argmax_rows(clean, B, V);
    const Tensor ld = lc.to(dev);
    SamplerParams g;
    g.temperature = 0;
    std::printf("[sample greedy slices] dtype %s V %lld\n", std::string(dtype_name(t)).c_str(),
                static_cast<long long>(V));
    const auto cpu = ids(ops::sample(lc, g));
    EXPECT_EQ(cpu, want) << "cpu V " << V;
    for (int rep = 0; rep < 2; ++rep) EXPECT_EQ(ids(ops::sample(ld, g)), want) << "V " << V << " rep " << rep;
    for (int64_t b : {int64_t{2}, int64_t{9}, int64_t{15}})
      EXPECT_EQ(ids(ops::sample(ld.slice(0, b, b + 1), g))[0], want[static_cast<size_t>(b)]) << "V " << V << " row " << b;
    if (V > 1) {
      EXPECT_EQ(want[2], 0) << "V " << V;
      EXPECT_EQ(want[11], 0) << "V " << V;
    }
    EXPECT_EQ(want[9], 0);
    EXPECT_EQ(want[10], 0);
  }
}

std::vector<std::pair<Device, DType>> sample_cases() {
  std::vector<std::pair<Device, DType>> v;
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::f16, DType::bf16}) v.push_back({d, t});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, Sample, ::testing::ValuesIn(sample_cases()),
                         [](const ::testing::TestParamInfo<std::pair<Device, DType>>& i) {
                           return sanitize(device_tag(i.param.first) + "_" + std::string(dtype_name(i.param.second)));
                         });

TEST(SampleErrors, BadArguments) {
  Tensor l = ops::zeros({2, 10});
  SamplerParams p;
  p.top_p = 0;
  EXPECT_INVALID(ops::sample(l, p), "sample");
  p = {};
  p.temperature = -1;
  EXPECT_INVALID(ops::sample(l, p), "sample");
  p = {};
  p.top_k = -2;
  EXPECT_INVALID(ops::sample(l, p), "sample");
  p = {};
  p.min_p = 1.5f;
  EXPECT_INVALID(ops::sample(l, p), "sample");
  p = {};
  p.repetition_penalty = 0;
  EXPECT_INVALID(ops::sample(l, p), "sample");
  EXPECT_INVALID(ops::sample(ops::zeros({10}), {}), "sample");
  EXPECT_INVALID(ops::sample(ops::zeros({2, 10}, DType::i32), {}), "sample");
  EXPECT_INVALID(ops::sample(l, {}, ops::zeros({3, 4}, DType::i64)), "sample");
  EXPECT_INVALID(ops::sample(l, {}, ops::zeros({2, 4}, DType::f32)), "sample");
}

}  // namespace
}  // namespace flagos::test
