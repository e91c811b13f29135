// Conformance: matmul (torch.matmul semantics), linear with plain and block-quantized weights,
// embedding. References in float64 from the actual (rounded / dequantized) inputs.
// linear tolerance: plain weights and quantized weights with more than 64 activation rows are
// multiplied in f32 (FMA accumulation) against the (dequantized) weights and checked at 1e-5
// rel L2 like f32 (K <= 1024); f16/bf16 outputs use default_tol.
// Quantized weights with <= 64 activation rows (decode) take the int8 path: each activation row
// is quantized to int8 per block of 32 (q8_0/q4_0/q4_1/q5_0/q5_1) or 256 (k-quants), scale
// amax/127, round to nearest even. Against the exact f64 reference this measures ~3-4e-3 rel L2
// (e.g. 3.6e-3 q4_0, 4.0e-3 q8_0 at K = 512), so it is checked at 1e-2; the same output is
// also checked at 1e-5 against a reference that emulates the activation rounding, which pins
// the integer kernels down exactly.
#include <cmath>

#include "harness.h"

namespace flagos::test {
namespace {

// ---------------------------------------------------------------- matmul

struct MmCase {
  Device dev;
  DType t;
  Shape a, b;
  Layout la, lb;
  bool use_out;
};

std::vector<double> matmul_ref(const std::vector<double>& a, Shape as, const std::vector<double>& b, Shape bs,
                               Shape& rs) {
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(0, 1);
  if (b1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const Shape batch = broadcast_shapes(ab, bb, "ref");
  Shape full = batch;
  full.push_back(M), full.push_back(N);
  rs = batch;
  if (!a1) rs.push_back(M);
  if (!b1) rs.push_back(N);
  std::vector<double> r(static_cast<size_t>(full.numel()), 0.0);
  const int64_t nb = batch.numel();
  for (int64_t bi = 0; bi < nb; ++bi) {
    const auto idx = unravel(bi, batch);
    const int64_t ai = broadcast_index(idx, ab), bj = broadcast_index(idx, bb);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += a[static_cast<size_t>((ai * M + m) * K + k)] * b[static_cast<size_t>((bj * K + k) * N + n)];
        r[static_cast<size_t>((bi * M + m) * N + n)] = s;
      }
  }
  return r;
}

class Matmul : public ::testing::TestWithParam<MmCase> {};

TEST_P(Matmul, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  const Tensor a = make_input(c.a, c.t, c.dev, rng, {}, c.la);
  const Tensor b = make_input(c.b, c.t, c.dev, rng, {}, c.lb);
  Shape rs;
  const auto ref = matmul_ref(to_f64(a), c.a, to_f64(b), c.b, rs);
  Tensor y;
  if (c.use_out) {
    y = poisoned(rs, c.t, c.dev);
    ops::matmul(a, b, y);
  } else {
    y = ops::matmul(a, b);
  }
  ASSERT_EQ(y.shape(), rs);
  ASSERT_EQ(y.dtype(), c.t);
  const int64_t K = c.a.back();
  const double tol = c.t == DType::f32 ? 1e-5 * std::max<double>(1.0, std::sqrt(static_cast<double>(K)) / 4) : default_tol(c.t);
  expect_close(y, ref, tol, "matmul");
}

std::vector<MmCase> mm_cases() {
  std::vector<MmCase> v;
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{7}, {7}},          {{5}, {5, 3}},       {{4, 5}, {5}},        {{3, 5}, {5, 4}},     {{1, 1}, {1, 1}},
      {{2, 1, 5, 7}, {3, 7, 4}}, {{4, 3, 5}, {5, 6}}, {{2, 3, 5}, {2, 5, 4}}, {{3}, {2, 3, 4}}, {{2, 4, 3}, {3}},
      {{3, 0}, {0, 4}},    {{0, 5}, {5, 3}},    {{33, 17}, {17, 65}},  {{1, 64}, {64, 129}}, {{2, 3, 0}, {0, 2}}};
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16})
      for (const auto& [sa, sb] : shapes)
        for (Layout la : {Layout::contiguous, Layout::transposed})
          for (Layout lb : {Layout::contiguous, Layout::transposed}) {
            if ((la == Layout::transposed && sa.size() < 2) || (lb == Layout::transposed && sb.size() < 2)) continue;
            v.push_back({d, t, sa, sb, la, lb, la == lb});
          }
  for (Device d : test_devices()) {
    v.push_back({d, DType::f32, {257, 255}, {255, 129}, Layout::contiguous, Layout::contiguous, true});
    v.push_back({d, DType::f32, {257, 255}, {255, 129}, Layout::transposed, Layout::transposed, false});
    v.push_back({d, DType::bf16, {257, 255}, {255, 129}, Layout::contiguous, Layout::transposed, false});
    v.push_back({d, DType::f32, {3, 9, 6}, {3, 6, 5}, Layout::strided, Layout::strided, true});
    v.push_back({d, DType::f64, {4, 6, 5}, {5, 7}, Layout::strided, Layout::contiguous, true});
  }
  return v;
}

std::string mm_name(const ::testing::TestParamInfo<MmCase>& i) {
  std::ostringstream os;
  const auto& c = i.param;
  os << device_tag(c.dev) << "_" << dtype_name(c.t) << "_" << c.a << "x" << c.b << "_" << layout_name(c.la) << "_"
     << layout_name(c.lb) << (c.use_out ? "_out" : "") << "_" << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Matmul, ::testing::ValuesIn(mm_cases()), mm_name);

TEST(MatmulErrors, InvalidArguments) {
  for (Device dev : test_devices()) {
    const Tensor a = ops::zeros({3, 4}, DType::f32, dev), b = ops::zeros({5, 2}, DType::f32, dev);
    try {
      ops::matmul(a, b);
      ADD_FAILURE() << "no error";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ops::matmul(ops::scalar(1.0, DType::f32, dev), a), InvalidArgument);
    EXPECT_THROW(ops::matmul(ops::zeros({2, 3}, DType::i32, dev), ops::zeros({3, 2}, DType::i32, dev)), InvalidArgument);
    EXPECT_THROW(ops::matmul(ops::zeros({2, 3, 4}, DType::f32, dev), ops::zeros({3, 4, 2}, DType::f32, dev)),
                 InvalidArgument);  // batch 2 vs 3
    EXPECT_THROW(ops::matmul(a, ops::zeros({4, 2}, DType::f32, dev), ops::zeros({3, 3}, DType::f32, dev)),
                 InvalidArgument);  // wrong out shape
    // mixed dtypes promote
    EXPECT_EQ(ops::matmul(ops::zeros({2, 3}, DType::f16, dev), ops::zeros({3, 2}, DType::f32, dev)).dtype(), DType::f32);
  }
}

// ---------------------------------------------------------------- linear

struct LinCase {
  Device dev;
  DType x, w;
  Shape xs;
  int64_t N;
  bool bias;
  Layout wl;
};

class Linear : public ::testing::TestWithParam<LinCase> {};

// The activation rounding of linear's int8 path: per block of bs values, d = amax / 127 and
// q = round-to-nearest-even(x * (127 / amax)) computed in f32.
std::vector<double> int8_activations(const std::vector<double>& xv, int64_t M, int64_t K, int bs) {
  std::vector<double> q(xv.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < K; b += bs) {
      const size_t o = static_cast<size_t>(m * K + b);
      float amax = 0.f;
      for (int i = 0; i < bs; ++i) amax = std::max(amax, std::fabs(static_cast<float>(xv[o + i])));
      const float id = amax > 0.f ? 127.f / amax : 0.f, d = amax / 127.f;
      for (int i = 0; i < bs; ++i) {
        const float v = std::nearbyint(static_cast<float>(xv[o + i]) * id);
        q[o + i] = static_cast<double>(d) * std::clamp(v, -127.f, 127.f);
      }
    }
  return q;
}

// Element-wise bound on |y - ref| for the int8 path, y stored in dtype yt (ref: exact product with
// the unrounded activations): the activation rounding moves output (m, n) by at most
// A = sum_k |w_nk| * |x_mk - q(x_mk)|; the kernel's f32 products and sums (integer block dots are
// exact) add at most ~(K + 16) * 2^-24 * S, S = sum_k |w_nk| * |q(x_mk)| + |bias_n| (taken twice for
// reordered sums and the f32 scale products); storing in yt rounds by at most u * |y| (unit roundoff u).
std::vector<double> int8_error_bound(const std::vector<double>& xv, const std::vector<double>& xq,
                                     const std::vector<double>& wv, const std::vector<double>& bv,
                                     const std::vector<double>& ref8, int64_t M, int64_t N, int64_t K, DType yt) {
  const double u = yt == DType::f32 ? 0x1p-24 : (yt == DType::f16 ? 0x1p-11 : 0x1p-8);
  const double g = 2.0 * static_cast<double>(K + 16) * 0x1p-24;
  std::vector<double> bound(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double a = 0, s = bv.empty() ? 0.0 : std::fabs(bv[static_cast<size_t>(n)]);
      for (int64_t k = 0; k < K; ++k) {
        const double wk = std::fabs(wv[static_cast<size_t>(n * K + k)]);
        a += wk * std::fabs(xv[static_cast<size_t>(m * K + k)] - xq[static_cast<size_t>(m * K + k)]);
        s += wk * std::fabs(xq[static_cast<size_t>(m * K + k)]);
      }
      const double y8 = std::fabs(ref8[static_cast<size_t>(m * N + n)]) + g * s;  // bound on |y| before storing
      bound[static_cast<size_t>(m * N + n)] = (a + g * s + u * y8) * (1 + 1e-9) + 1e-30;
    }
  return bound;
}

// |got - ref| <= bound element-wise; NaN never passes, infinities must match.
void expect_within(const Tensor& got, const std::vector<double>& ref, const std::vector<double>& bound,
                   const std::string& what) {
  const std::vector<double> g = to_f64(got);
  ASSERT_EQ(g.size(), ref.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool ok = std::isinf(ref[i]) ? g[i] == ref[i] : std::fabs(g[i] - ref[i]) <= bound[i];  // NaN fails
    if (!ok) {
      ADD_FAILURE() << what << " [seed " << base_seed() << "]: at flat index " << i << " got " << g[i] << " expected "
                    << ref[i] << ", error bound " << bound[i];
      return;
    }
  }
}

TEST_P(Linear, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  const int64_t K = c.xs.back();
  const Tensor x = make_input(c.xs, c.x, c.dev, rng);
  Tensor w;
  if (is_quant(c.w)) {
    w = ops::quantize(make_input({c.N, K}, DType::f32, c.dev, rng), c.w);
  } else {
    w = make_input({c.N, K}, c.w, c.dev, rng, {}, c.wl);
  }
  const Tensor b = c.bias ? make_input({c.N}, DType::f32, c.dev, rng) : Tensor();
  const auto xv = to_f64(x), wv = to_f64(w);
  const auto bv = c.bias ? to_f64(b) : std::vector<double>();
  const int64_t M = Shape(c.xs.begin(), c.xs.end() - 1).numel();
  std::vector<double> ref(static_cast<size_t>(M * c.N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double s = c.bias ? bv[static_cast<size_t>(n)] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += xv[static_cast<size_t>(m * K + k)] * wv[static_cast<size_t>(n * K + k)];
      ref[static_cast<size_t>(m * c.N + n)] = s;
    }
  Shape rs(c.xs.begin(), c.xs.end() - 1);
  rs.push_back(c.N);
  Tensor y = poisoned(rs, c.x, c.dev);
  ops::linear(x, w, b, y);
  double tol = c.x == DType::f32 ? 1e-5 : default_tol(c.x);
  if (is_quant(c.w) && M <= 64 && M > 0) {
    // int8 path: tight check against the reference that copies the activation rounding, then an
    // element-wise bound against the exact product (not a relative L2 tolerance: a short dot
    // product, e.g. one block with N = 1, can lose more than 1% to the activation rounding).
    const int bs = c.w == DType::q4_k || c.w == DType::q5_k || c.w == DType::q6_k ? 256 : 32;
    const std::vector<double> xq = int8_activations(xv, M, K, bs);
    std::vector<double> ref8(ref.size());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        double s = c.bias ? bv[static_cast<size_t>(n)] : 0.0;
        for (int64_t k = 0; k < K; ++k) s += xq[static_cast<size_t>(m * K + k)] * wv[static_cast<size_t>(n * K + k)];
        ref8[static_cast<size_t>(m * c.N + n)] = s;
      }
    expect_close(y, ref8, c.x == DType::f32 ? 1e-5 : default_tol(c.x),
                 "linear int8 path (emulated activation rounding) w " + std::string(dtype_name(c.w)));
    const std::vector<double> bound = int8_error_bound(xv, xq, wv, bv, ref8, M, c.N, K, c.x);
    expect_within(y, ref, bound, "linear int8 path x " + std::string(dtype_name(c.x)) + " w " + std::string(dtype_name(c.w)));
    expect_within(ops::linear(x, w, b), ref, bound, "linear int8 path (new out)");
    return;
  }
  expect_close(y, ref, tol, "linear x " + std::string(dtype_name(c.x)) + " w " + std::string(dtype_name(c.w)));
  expect_close(ops::linear(x, w, b), ref, tol, "linear (new out)");
}

// Quantized weights as a row-strided view (every other row of a larger matrix): the decode GEMV
// kernels that stage contiguous rows must take their general path, and the results must not change;
// and as contiguous rows starting one row into a larger matrix (q8_0 / q6_k: a start 2 mod 16
// bytes into a 16-byte piece, which the kernels reading whole 16-byte pieces must not read before).
TEST(LinearQuantStrided, MatchesReference) {
  for (Device dev : test_devices())
    for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k, DType::q5_1})
      for (int64_t M : {1, 2, 5})
        for (int64_t step : {2, 1}) {
          auto rng = rng_for_current_test();
          const int64_t K = 512, N = 37;
          const Tensor big = ops::quantize(make_input({2 * N, K}, DType::f32, dev, rng), wt);
          const Tensor w = step == 2 ? big.slice(0, 1, 2 * N, 2) : big.slice(0, 1, N + 1, 1);
          const Tensor x = make_input({M, K}, DType::f32, dev, rng);
          const auto xv = to_f64(x), wv = to_f64(w);
          const int bs = wt == DType::q4_k || wt == DType::q6_k ? 256 : 32;
          const std::vector<double> xq = int8_activations(xv, M, K, bs);
          std::vector<double> ref(static_cast<size_t>(M * N));
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double s = 0;
              for (int64_t k = 0; k < K; ++k) s += xq[static_cast<size_t>(m * K + k)] * wv[static_cast<size_t>(n * K + k)];
              ref[static_cast<size_t>(m * N + n)] = s;
            }
          Tensor y = poisoned({M, N}, DType::f32, dev);
          ops::linear(x, w, Tensor(), y);
          expect_close(y, ref, 1e-5,
                       "linear, row-strided w " + std::string(dtype_name(wt)) + " M " + std::to_string(M) + " step " +
                           std::to_string(step) + " on " + device_tag(dev));
        }
}

std::vector<LinCase> lin_cases() {
  std::vector<LinCase> v;
  const DType ws[] = {DType::f32,  DType::f16,  DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1,
                      DType::q5_0, DType::q5_1, DType::q4_k, DType::q5_k, DType::q6_k};
  for (Device d : test_devices())
    for (DType w : ws)
      for (const Shape& xs : {Shape{512}, Shape{3, 512}, Shape{2, 20, 512}}) {
        v.push_back({d, DType::f32, w, xs, 67, true, Layout::contiguous});
        if (xs.size() == 2) v.push_back({d, DType::f32, w, xs, 5, false, Layout::contiguous});
        if (xs.size() != 2) v.push_back({d, DType::bf16, w, xs, 33, xs.size() == 1, Layout::contiguous});
        if (xs.size() == 2) v.push_back({d, DType::f16, w, xs, 40, true, Layout::contiguous});
      }
  for (Device d : test_devices()) {
    v.push_back({d, DType::f32, DType::f32, {4, 96}, 37, true, Layout::transposed});
    v.push_back({d, DType::f32, DType::f16, {3, 96}, 37, false, Layout::transposed});
    v.push_back({d, DType::f32, DType::f32, {9, 0}, 6, true, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q8_0, {0, 64}, 6, true, Layout::contiguous});
    // more than 64 rows: dequantized tiles + sgemm (exact f32 activations)
    for (DType w : {DType::q4_k, DType::q5_0, DType::q6_k}) v.push_back({d, DType::f32, w, {65, 256}, 19, true, Layout::contiguous});
    // exactly 64 rows, and a wide matrix split over threads
    v.push_back({d, DType::f32, DType::q5_k, {64, 256}, 21, false, Layout::contiguous});
    for (DType w : {DType::q8_0, DType::q4_k, DType::q6_k, DType::q5_1})
      v.push_back({d, DType::f32, w, {1, 2048}, 257, false, Layout::contiguous});
    // accelerator paths by row count: decode GEMV (1, 7), its last size (64) and the first GEMM
    // size (65) for quantized weights; 16-bit weights with 16-bit x switch to the GEMM after 16
    for (int64_t M : {1, 7, 64, 65})
      for (DType w : {DType::q8_0, DType::q4_k, DType::q6_k}) {
        v.push_back({d, DType::f32, w, {M, 512}, 70, M == 7, Layout::contiguous});
        v.push_back({d, DType::bf16, w, {M, 256}, 36, M != 7, Layout::contiguous});
      }
    // decode kernels for q8_0 / q4_k / q6_k by row count (each FLAGOS_CUDA_QGEMV variant on CUDA:
    // n-tiles of 8 activation rows, 16-row weight tiles with a partial last tile, blocks split over
    // 4 warps unevenly or not at all); q8_0 with K not a multiple of 256
    for (int64_t M : {1, 2, 3, 7, 8, 16, 17, 33, 64})
      for (DType w : {DType::q8_0, DType::q4_k, DType::q6_k}) {
        const bool kq = w != DType::q8_0;
        v.push_back({d, DType::f32, w, {M, kq ? 768 : 352}, 37, M % 2 == 1, Layout::contiguous});
        v.push_back({d, DType::bf16, w, {M, kq ? 256 : 96}, M == 8 ? 1 : 19, M % 2 == 0, Layout::contiguous});
      }
    // several K stages of the shared-memory variant (q8_0 16 blocks, k-quants 4), the last partial
    v.push_back({d, DType::f32, DType::q8_0, {33, 1120}, 35, true, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q4_k, {5, 2560}, 33, false, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q6_k, {18, 2560}, 41, true, Layout::contiguous});
    // many 16-row tiles per CTA (more than 2 CTAs per SM on a 132-SM part); N not a multiple of 16;
    // K of one block; q6_k rows of 210 B (never 16-byte aligned: 16-byte pieces straddling the
    // tensor's ends); M = 64 for k-quants (two passes of 32 tokens)
    v.push_back({d, DType::f32, DType::q8_0, {2, 1120}, 4500, true, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q8_0, {3, 32}, 4501, false, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q6_k, {17, 256}, 4501, true, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q6_k, {1, 2560}, 4500, false, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q4_k, {64, 512}, 2245, true, Layout::contiguous});
    v.push_back({d, DType::f16, DType::q4_k, {16, 256}, 4243, false, Layout::contiguous});
    // few tiles, many stages
    v.push_back({d, DType::bf16, DType::q4_k, {16, 4864}, 100, true, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q8_0, {5, 4096}, 50, false, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q6_k, {64, 2048}, 21, true, Layout::contiguous});
    // many rows
    v.push_back({d, DType::f32, DType::q4_k, {3, 256}, 12899, true, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q8_0, {1, 64}, 12801, false, Layout::contiguous});
    // the stream variant (M <= 4): several rows per warp with steps of 16-96 blocks running across
    // row ends (one-block rows: up to 17 rows in a step), rows longer than a step, odd N (q6_k: the
    // tensor ends 2 mod 16 bytes past a 16-byte boundary)
    v.push_back({d, DType::f32, DType::q6_k, {1, 256}, 5001, true, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q4_k, {1, 512}, 4999, false, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q8_0, {2, 96}, 6001, true, Layout::contiguous});
    v.push_back({d, DType::bf16, DType::q8_0, {1, 4864}, 300, true, Layout::contiguous});
    v.push_back({d, DType::f32, DType::q4_k, {4, 4864}, 100, false, Layout::contiguous});
    v.push_back({d, DType::f16, DType::q6_k, {3, 3584}, 2113, true, Layout::contiguous});
    for (int64_t M : {1, 7, 16, 17, 64, 65}) {
      v.push_back({d, DType::bf16, DType::bf16, {M, 264}, 45, M % 2 == 1, Layout::contiguous});
      v.push_back({d, DType::f16, DType::f16, {M, 128}, 33, false, Layout::contiguous});
      v.push_back({d, DType::f32, DType::bf16, {M, 200}, 29, true, Layout::contiguous});
    }
    v.push_back({d, DType::bf16, DType::f32, {5, 96}, 31, true, Layout::contiguous});  // mixed: f32 weight
    v.push_back({d, DType::f16, DType::bf16, {70, 64}, 23, true, Layout::contiguous});  // mixed 16-bit GEMM
    v.push_back({d, DType::bf16, DType::bf16, {3, 37}, 9, false, Layout::contiguous});  // K not a multiple of 8
  }
  return v;
}

std::string lin_name(const ::testing::TestParamInfo<LinCase>& i) {
  std::ostringstream os;
  const auto& c = i.param;
  os << device_tag(c.dev) << "_x" << dtype_name(c.x) << "_w" << dtype_name(c.w) << "_" << c.xs << "_N" << c.N
     << (c.bias ? "_bias" : "") << "_" << layout_name(c.wl) << "_" << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Linear, ::testing::ValuesIn(lin_cases()), lin_name);

TEST(LinearErrors, InvalidArguments) {
  for (Device dev : test_devices()) {
    const Tensor x = ops::zeros({2, 64}, DType::f32, dev);
    try {
      ops::linear(x, ops::zeros({3, 32}, DType::f32, dev));
      ADD_FAILURE() << "no error";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("linear"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ops::linear(x, ops::zeros({3, 64}, DType::f32, dev), ops::zeros({4}, DType::f32, dev)), InvalidArgument);
    EXPECT_THROW(ops::linear(ops::zeros({2, 64}, DType::i32, dev), ops::zeros({3, 64}, DType::f32, dev)), InvalidArgument);
    EXPECT_THROW(ops::linear(x, ops::zeros({64}, DType::f32, dev)), InvalidArgument);
  }
}

// ---------------------------------------------------------------- embedding

struct EmbCase {
  Device dev;
  DType table, ids, out;
};

class Embedding : public ::testing::TestWithParam<EmbCase> {};

TEST_P(Embedding, GathersRows) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  const int64_t V = 11, D = 256;
  Tensor table = is_quant(c.table) ? ops::quantize(make_input({V, D}, DType::f32, c.dev, rng), c.table)
                                   : make_input({V, D}, c.table, c.dev, rng);
  const std::vector<int64_t> idv = {3, 0, 10, 3, 7, 1};
  const Tensor ids = Tensor::from_vector(idv, {2, 3}, c.ids).to(c.dev);
  const Tensor y = ops::embedding(table, ids, c.out);
  ASSERT_EQ(y.shape(), (Shape{2, 3, D}));
  const auto tv = to_f64(table);
  std::vector<double> ref;
  for (int64_t id : idv)
    for (int64_t j = 0; j < D; ++j) ref.push_back(round_to(tv[static_cast<size_t>(id * D + j)], c.out));
  expect_exact(y, ref, "embedding");
  // The capturable variant (no host read of the ids) gathers the same rows.
  expect_exact(ops::embedding_unchecked(table, ids, c.out), ref, "embedding_unchecked");
  if (!is_quant(c.table) && c.out == c.table) {
    EXPECT_EQ(ops::embedding(table, ids).dtype(), c.table);
  }
  if (is_quant(c.table)) {
    EXPECT_EQ(ops::embedding(table, ids).dtype(), DType::f32);
  }
  // A row-strided table view (every other row of a larger table).
  const Tensor big = is_quant(c.table) ? ops::quantize(make_input({2 * V, D}, DType::f32, c.dev, rng), c.table)
                                       : make_input({2 * V, D}, c.table, c.dev, rng);
  const Tensor tv2 = big.slice(0, 0, 2 * V, 2);
  const auto bv = to_f64(big);
  std::vector<double> r2;
  for (int64_t id : idv)
    for (int64_t j = 0; j < D; ++j) r2.push_back(round_to(bv[static_cast<size_t>(2 * id * D + j)], c.out));
  expect_exact(ops::embedding(tv2, ids, c.out), r2, "embedding (strided table)");
}

std::vector<EmbCase> emb_cases() {
  std::vector<EmbCase> v;
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_1, DType::q4_k, DType::q5_k, DType::q6_k})
      for (DType i : {DType::i32, DType::i64}) {
        v.push_back({d, t, i, is_quant(t) ? DType::f32 : t});
        if (i == DType::i64 && t != DType::bf16) v.push_back({d, t, i, DType::bf16});
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, Embedding, ::testing::ValuesIn(emb_cases()),
                         [](const ::testing::TestParamInfo<EmbCase>& i) {
                           return sanitize(device_tag(i.param.dev) + "_" + std::string(dtype_name(i.param.table)) + "_" +
                                           std::string(dtype_name(i.param.ids)) + "_to_" +
                                           std::string(dtype_name(i.param.out)));
                         });

// Bad ids give InvalidArgument naming the op, the id, its position and the vocabulary size: at the
// call for ids the host can read (CPU), at the device's next synchronization for ids in device
// memory (checked by the kernel; the bad rows are NaN, the good ones gathered, the device usable).
TEST(EmbeddingErrors, OutOfRangeIds) {
  auto rng = rng_for_current_test();
  for (Device dev : test_devices()) {
    const Tensor table = make_input({10, 32}, DType::f32, dev, rng);
    const auto tv = to_f64(table);
    const bool deferred = !table.is_host_accessible();
    for (DType it : {DType::i32, DType::i64})
      for (int64_t bad : {10, -1, 1000, -7}) {
        const std::string what = std::string(dtype_name(it)) + " id " + std::to_string(bad) + " on " + device_tag(dev);
        const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 4, bad, 9, bad}, {5}, it).to(dev);
        for (bool unchecked : {false, true}) {
          if (unchecked && !deferred) continue;  // the host-side variant trusts its caller
          Tensor y;
          std::string m;
          try {
            y = unchecked ? ops::embedding_unchecked(table, ids) : ops::embedding(table, ids);
            if (deferred) current_stream(dev).synchronize();
            ADD_FAILURE() << "no error for " << what;
          } catch (const InvalidArgument& e) {
            m = e.what();
          }
          EXPECT_NE(m.find("embedding"), std::string::npos) << m;
          EXPECT_NE(m.find("id " + std::to_string(bad) + " "), std::string::npos) << what << ": " << m;
          EXPECT_NE(m.find("position 2 "), std::string::npos) << what << ": " << m;  // the first bad one
          EXPECT_NE(m.find("vocabulary of 10 rows"), std::string::npos) << what << ": " << m;
          if (!deferred) continue;
          ASSERT_TRUE(y.defined()) << what;
          const auto yv = to_f64(y);  // a synchronization with no error left to raise
          ASSERT_EQ(yv.size(), 5u * 32u);
          const int64_t good[3][2] = {{0, 1}, {1, 4}, {3, 9}};  // (position, id)
          for (const auto& g : good)
            for (int64_t j = 0; j < 32; ++j)
              EXPECT_EQ(yv[static_cast<size_t>(g[0] * 32 + j)], tv[static_cast<size_t>(g[1] * 32 + j)]) << what;
          for (int64_t p : {2, 4})
            for (int64_t j = 0; j < 32; ++j) EXPECT_TRUE(std::isnan(yv[static_cast<size_t>(p * 32 + j)])) << what;
        }
        // The device stays usable: a good gather right after (16-bit table: the 16-byte copy kernel).
        const Tensor t16 = ops::cast(table, DType::bf16);
        const Tensor ok = ops::embedding(t16, Tensor::from_vector(std::vector<int64_t>{9, 0}, {2}, it).to(dev));
        const auto ov = to_f64(ok), t16v = to_f64(t16);
        for (int64_t j = 0; j < 32; ++j) {
          EXPECT_EQ(ov[static_cast<size_t>(j)], t16v[static_cast<size_t>(9 * 32 + j)]) << what;
          EXPECT_EQ(ov[static_cast<size_t>(32 + j)], t16v[static_cast<size_t>(j)]) << what;
        }
        if (deferred) {  // a bad id in a 16-bit table: NaN row, error raised by to_vector itself
          Tensor y16;
          try {
            y16 = ops::embedding(t16, ids);
            (void)y16.to_vector<float>();
            ADD_FAILURE() << "no error from to_vector for " << what;
          } catch (const InvalidArgument& e) {
            EXPECT_NE(std::string(e.what()).find("id " + std::to_string(bad) + " at position 2 "), std::string::npos)
                << e.what();
          }
          const auto y16v = to_f64(y16);
          for (int64_t j = 0; j < 32; ++j) EXPECT_TRUE(std::isnan(y16v[static_cast<size_t>(2 * 32 + j)])) << what;
        }
      }
    EXPECT_THROW(ops::embedding(table, ops::zeros({2}, DType::f32, dev)), InvalidArgument);
    EXPECT_THROW(ops::embedding(ops::zeros({10}, DType::f32, dev), ops::zeros({2}, DType::i64, dev)), InvalidArgument);
  }
}

}  // namespace
}  // namespace flagos::test
