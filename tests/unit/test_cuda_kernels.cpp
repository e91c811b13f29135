// CUDA kernels on sizes the conformance cases do not reach: long rows (multi-tile sorts, split
// reductions, block scans), column reductions with split segments, unaligned vector paths, and
// repeated indices. References are float64 on the host or the CPU backend's exact results; inputs
// are fresh random with the seed printed. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "flagos/backend.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"

using namespace flagos;

namespace {

using cudatest::cuda_id;


Device gpu() { return cudatest::cuda0(); }

std::mt19937_64 seeded_rng() {
  static const uint64_t seed = [] {
    const uint64_t s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    std::printf("[cuda kernels] seed %llu\n", static_cast<unsigned long long>(s));
    return s;
  }();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  uint64_t h = seed;
  for (const char* p = info->name(); *p; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 1099511628211ull;
  return std::mt19937_64(h);
}

// Host tensor of uniform values in [lo, hi), optionally rounded to multiples of `q` (duplicates).
Tensor host_random(const Shape& s, DType t, std::mt19937_64& rng, double lo, double hi, double q = 0) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (auto& x : v) {
    x = u(rng);
    if (q > 0) x = std::round(x / q) * q;
    if (!is_float(t)) x = std::floor(x);
  }
  return Tensor::from_vector(v, s, t);
}

double rel_l2(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return std::isnan(got[i]) == std::isnan(ref[i]) ? 0 : INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

// Rows longer than one shared-memory tile (4096) go through merge passes: values and indices must
// equal the CPU backend's stable order, with duplicates, NaN and signed zeros.
TEST(CudaKernels, SortAndTopkLongRows) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto rng = seeded_rng();
  for (const Shape& s : {Shape{3, 20000}, Shape{2, 4097}, Shape{1, 70001}}) {
    Tensor h = host_random(s, DType::f32, rng, -8, 8, 0.25);
    float* p = h.data_as<float>();
    for (int64_t i = 0; i < h.numel(); i += 997) p[i] = NAN;
    for (int64_t i = 5; i < h.numel(); i += 1009) p[i] = -0.0f;
    Tensor d = h.to(gpu());
    for (bool desc : {false, true}) {
      auto [cv, ci] = ops::sort(h, -1, desc);
      auto [gv, gi] = ops::sort(d, -1, desc);
      ASSERT_EQ(gi.to_vector<int64_t>(), ci.to_vector<int64_t>()) << s << (desc ? " desc" : " asc");
      const auto a = gv.to_vector<double>(), b = cv.to_vector<double>();
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
      auto [tcv, tci] = ops::topk(h, 50, -1, desc);
      auto [tgv, tgi] = ops::topk(d, 50, -1, desc);
      ASSERT_EQ(tgi.to_vector<int64_t>(), tci.to_vector<int64_t>()) << s;
    }
  }
  Tensor hi = host_random({2, 9000}, DType::i64, rng, -50, 50);
  auto [cv, ci] = ops::sort(hi, 1, true);
  auto [gv, gi] = ops::sort(hi.to(gpu()), 1, true);
  EXPECT_EQ(gi.to_vector<int64_t>(), ci.to_vector<int64_t>());
  EXPECT_EQ(gv.to_vector<int64_t>(), cv.to_vector<int64_t>());
}

// Long reductions are split into segments combined by a second kernel; column reductions (kept dim
// contiguous) walk the reduced dim per thread.
TEST(CudaKernels, SplitAndColumnReductions) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto rng = seeded_rng();
  Tensor big = ops::full({10000000}, 0.1, DType::f32, gpu());
  EXPECT_NEAR(ops::sum(big).item(), 1e7 * static_cast<double>(0.1f), 1e7 * 0.1 * 1e-6);

  Tensor h = host_random({3, 400000}, DType::f32, rng, -2, 2);
  const std::vector<double> hv = h.to_vector<double>();
  Tensor d = h.to(gpu());
  const auto s = ops::sum(d, {1}).to_vector<double>();
  const auto lse = ops::logsumexp(d, {1}).to_vector<double>();
  const auto var = ops::var(d, {1}).to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    double sr = 0, sa = 0, m = -INFINITY;
    for (int64_t j = 0; j < 400000; ++j) {
      const double x = hv[static_cast<size_t>(r * 400000 + j)];
      sr += x, sa += std::fabs(x), m = std::max(m, x);
    }
    double se = 0, ss = 0;
    for (int64_t j = 0; j < 400000; ++j) {
      const double x = hv[static_cast<size_t>(r * 400000 + j)];
      se += std::exp(x - m), ss += (x - sr / 400000) * (x - sr / 400000);
    }
    EXPECT_NEAR(s[static_cast<size_t>(r)], sr, sa * 1e-6) << r;
    EXPECT_NEAR(lse[static_cast<size_t>(r)], m + std::log(se), 1e-5 * std::fabs(m + std::log(se))) << r;
    EXPECT_NEAR(var[static_cast<size_t>(r)], ss / 399999, 1e-5 * ss / 399999) << r;
  }

  // Column sums: [20000, 33] over dim 0 (kept dim contiguous), bf16 and f32.
  for (DType t : {DType::f32, DType::bf16}) {
    Tensor c = host_random({20000, 33}, t, rng, -1, 1);
    const std::vector<double> cv = c.to_vector<double>();
    const auto got = ops::mean(c.to(gpu()), {0}).to_vector<double>();
    std::vector<double> ref(33, 0.0);
    for (int64_t i = 0; i < 20000; ++i)
      for (int j = 0; j < 33; ++j) ref[static_cast<size_t>(j)] += cv[static_cast<size_t>(i * 33 + j)] / 20000;
    EXPECT_LT(rel_l2(got, ref), t == DType::f32 ? 1e-5 : 1e-2) << dtype_name(t);
  }

  // argmax over a long row: the first of two equal maxima wins, and a NaN beats both.
  Tensor a = host_random({2, 1000003}, DType::f32, rng, -1, 1);
  a.data_as<float>()[777777] = 5.0f;
  a.data_as<float>()[900001] = 5.0f;
  a.data_as<float>()[1000003 + 123456] = 5.0f;
  a.data_as<float>()[1000003 + 999999] = NAN;
  const auto am = ops::argmax(a.to(gpu()), 1).to_vector<int64_t>();
  EXPECT_EQ(am, (std::vector<int64_t>{777777, 999999}));
}

// Scans over long rows use one block per row with a carry; short rows a thread per row.
TEST(CudaKernels, LongScans) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto rng = seeded_rng();
  Tensor h = host_random({2, 100000}, DType::f32, rng, -1, 1);
  const std::vector<double> hv = h.to_vector<double>();
  const auto got = ops::cumsum(h.to(gpu()), 1).to_vector<double>();
  std::vector<double> ref(hv.size());
  for (int r = 0; r < 2; ++r) {
    double acc = 0;
    for (int64_t j = 0; j < 100000; ++j) {
      const size_t k = static_cast<size_t>(r * 100000 + j);
      ref[k] = acc += hv[k];
    }
  }
  double worst = 0;
  for (size_t k = 0; k < ref.size(); ++k) worst = std::max(worst, std::fabs(got[k] - ref[k]));
  EXPECT_LT(worst, 1e-2) << "cumsum drift over 100000 f32 values (a lost carry is off by O(1))";
  Tensor hi = host_random({1000, 50}, DType::i32, rng, -100, 100);
  EXPECT_EQ(ops::cumsum(hi.to(gpu()), 1).to_vector<int64_t>(), ops::cumsum(hi, 1).to_vector<int64_t>());
  EXPECT_EQ(ops::cumprod(hi.to(gpu()), 0).to_vector<int64_t>(), ops::cumprod(hi, 0).to_vector<int64_t>());
}

// Elementwise results equal the CPU backend's bit for bit on aligned (vector) and offset views
// (scalar path), with broadcasting.
TEST(CudaKernels, ElementwiseMatchesCpuExactly) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto rng = seeded_rng();
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32}) {
    Tensor a = host_random({513, 1031}, t, rng, -100, 100);
    Tensor b = host_random({1031}, t, rng, -100, 100);
    Tensor ga = a.to(gpu()), gb = b.to(gpu());
    for (int64_t off : {0, 1}) {
      const Tensor av = a.flatten().narrow(0, off, 1031 * 512).view({512, 1031});
      const Tensor gav = ga.flatten().narrow(0, off, 1031 * 512).view({512, 1031});
      EXPECT_EQ(ops::add(gav, gb).to_vector<double>(), ops::add(av, b).to_vector<double>()) << dtype_name(t);
      EXPECT_EQ(ops::mul(gav, 3.0).to_vector<double>(), ops::mul(av, 3.0).to_vector<double>()) << dtype_name(t);
      EXPECT_EQ(ops::maximum(gav, gb).to_vector<double>(), ops::maximum(av, b).to_vector<double>());
      EXPECT_EQ(ops::lt(gav, gb).to_vector<double>(), ops::lt(av, b).to_vector<double>());
      EXPECT_EQ(ops::cast(gav, DType::f32).to_vector<double>(), ops::cast(av, DType::f32).to_vector<double>());
    }
  }
}

// Scatter-add with many repeated indices accumulates every contribution; index_select of long rows.
TEST(CudaKernels, RepeatedIndicesAndRowSelects) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto rng = seeded_rng();
  Tensor src = host_random({4000, 64}, DType::f32, rng, -1, 1);
  Tensor idx = host_random({4000}, DType::i64, rng, 0, 17);
  Tensor x = ops::zeros({17, 64}, DType::f32);
  const auto cpu = ops::index_add(x, 0, idx, src, 0.5).to_vector<double>();
  const auto got = ops::index_add(x.to(gpu()), 0, idx.to(gpu()), src.to(gpu()), 0.5).to_vector<double>();
  EXPECT_LT(rel_l2(got, cpu), 1e-6);
  Tensor table = host_random({50000, 96}, DType::bf16, rng, -1, 1);
  Tensor rows = host_random({777}, DType::i32, rng, 0, 50000);
  EXPECT_EQ(ops::index_select(table.to(gpu()), 0, rows.to(gpu())).to_vector<double>(),
            ops::index_select(table, 0, rows).to_vector<double>());
}
