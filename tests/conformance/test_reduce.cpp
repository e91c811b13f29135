// Conformance: reductions (sum, mean, prod, amax/amin, max/min, argmax/argmin, var/std, norm,
// any/all, logsumexp), scans (cumsum/cumprod) and softmax/log_softmax against float64
// references, over dtypes, dim sets, keepdim, layouts, empty/size-1 dims, special values.
#include <cmath>
#include <limits>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class R { sum, mean, prod, amax, amin, max, min, argmax, argmin, var, std, norm1, norm2, norminf, norm3, any,
               all, logsumexp };
const char* rname(R r) {
  static const char* n[] = {"sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var",
                            "std", "norm1", "norm2", "norminf", "norm3", "any", "all", "logsumexp"};
  return n[static_cast<int>(r)];
}
bool single_dim(R r) { return r == R::max || r == R::min || r == R::argmax || r == R::argmin; }

struct RCase {
  Device dev;
  R op;
  DType dt;
  Shape shape;
  Dims dims;
  bool keepdim;
  Layout layout;
  bool specials;
};

// Reference over one group of values (in order).
double ref_reduce(R op, const std::vector<double>& v, int64_t& index) {
  index = 0;
  const size_t n = v.size();
  switch (op) {
    case R::sum: case R::mean: {
      double s = 0;
      for (double x : v) s += x;
      return op == R::mean ? s / static_cast<double>(n) : s;
    }
    case R::prod: {
      double p = 1;
      for (double x : v) p *= x;
      return p;
    }
    case R::amax: case R::amin: case R::max: case R::min: case R::argmax: case R::argmin: {
      const bool mx = op == R::amax || op == R::max || op == R::argmax;
      double b = v[0];
      for (size_t i = 1; i < n; ++i) {
        if (std::isnan(b)) break;
        if (std::isnan(v[i]) || (mx ? v[i] > b : v[i] < b)) b = v[i], index = static_cast<int64_t>(i);
      }
      return b;
    }
    case R::var: case R::std: {
      double m = 0;
      for (double x : v) m += x;
      m /= static_cast<double>(n);
      double s = 0;
      for (double x : v) s += (x - m) * (x - m);
      const double r = s / (static_cast<double>(n) - 1);
      return op == R::std ? std::sqrt(r) : r;
    }
    case R::norm1: case R::norm2: case R::norm3: case R::norminf: {
      double s = 0;
      for (double x : v) {
        const double a = std::fabs(x);
        if (op == R::norminf) s = (std::isnan(a) || a > s) ? a : s;
        else s += op == R::norm1 ? a : (op == R::norm2 ? a * a : a * a * a);
        if (std::isnan(s)) break;
      }
      return op == R::norm2 ? std::sqrt(s) : (op == R::norm3 ? std::cbrt(s) : s);
    }
    case R::any: case R::all: {
      bool r = op == R::all;
      for (double x : v) r = op == R::any ? (r || x != 0) : (r && x != 0);
      return r ? 1 : 0;
    }
    case R::logsumexp: {
      double m = -kInf;
      for (double x : v) m = (std::isnan(x) || x > m) ? x : m;
      if (!std::isfinite(m)) return m;
      double s = 0;
      for (double x : v) s += std::exp(x - m);
      return m + std::log(s);
    }
  }
  return 0;
}

Tensor run_op(R op, const Tensor& x, const Dims& d, bool k, Tensor* idx) {
  switch (op) {
    case R::sum: return ops::sum(x, d, k);
    case R::mean: return ops::mean(x, d, k);
    case R::prod: return ops::prod(x, d, k);
    case R::amax: return ops::amax(x, d, k);
    case R::amin: return ops::amin(x, d, k);
    case R::max: { auto [v, i] = ops::max(x, d[0], k); *idx = i; return v; }
    case R::min: { auto [v, i] = ops::min(x, d[0], k); *idx = i; return v; }
    case R::argmax: return ops::argmax(x, d[0], k);
    case R::argmin: return ops::argmin(x, d[0], k);
    case R::var: return ops::var(x, d, 1, k);
    case R::std: return ops::std(x, d, 1, k);
    case R::norm1: return ops::norm(x, 1.0, d, k);
    case R::norm2: return ops::norm(x, 2.0, d, k);
    case R::norm3: return ops::norm(x, 3.0, d, k);
    case R::norminf: return ops::norm(x, INFINITY, d, k);
    case R::any: return ops::any(x, d, k);
    case R::all: return ops::all(x, d, k);
    case R::logsumexp: return ops::logsumexp(x, d, k);
  }
  return {};
}

class Reduce : public ::testing::TestWithParam<RCase> {};

TEST_P(Reduce, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  Range rg{-2, 2};
  if (c.op == R::prod) rg = {0.5, 1.5};
  if (!is_float(c.dt)) rg = c.dt == DType::u8 ? Range{0, 8} : Range{-8, 8};
  if (c.dt == DType::boolean) rg = {0, 2};
  if ((c.op == R::any || c.op == R::all) && c.dt != DType::boolean) rg = {-1, 2};  // many zeros after floor
  Tensor x = make_input(c.shape, c.dt, c.dev, rng, rg, c.layout);
  if (c.specials) x = with_specials(x, rng, 0.1);
  Tensor idx;
  Tensor got = run_op(c.op, x, c.dims, c.keepdim, &idx);
  // Reference: group the flat input by output coordinates.
  const auto xv = to_f64(x);
  const int nd = c.shape.size();
  uint32_t mask = 0;
  if (c.dims.empty()) mask = (1u << nd) - 1u;
  for (int64_t d : c.dims) mask |= 1u << (d < 0 ? d + nd : d);
  Shape kept;
  for (int i = 0; i < nd; ++i)
    if (!(mask & (1u << i))) kept.push_back(c.shape[i]);
  const int64_t outer = kept.numel();
  std::vector<std::vector<double>> groups(static_cast<size_t>(outer));
  for (int64_t f = 0; f < static_cast<int64_t>(xv.size()); ++f) {
    const auto id = unravel(f, c.shape);
    std::vector<int64_t> ko;
    for (int i = 0; i < nd; ++i)
      if (!(mask & (1u << i))) ko.push_back(id[static_cast<size_t>(i)]);
    groups[static_cast<size_t>(ko.empty() ? 0 : ravel(ko, kept))].push_back(xv[static_cast<size_t>(f)]);
  }
  std::vector<double> ref(static_cast<size_t>(outer)), iref(static_cast<size_t>(outer));
  for (size_t g = 0; g < groups.size(); ++g) {
    int64_t i = 0;
    ref[g] = ref_reduce(c.op, groups[g], i);
    iref[g] = static_cast<double>(i);
  }
  // Expected shape.
  Shape es;
  for (int i = 0; i < nd; ++i) {
    if (mask & (1u << i)) {
      if (c.keepdim) es.push_back(1);
    } else {
      es.push_back(c.shape[i]);
    }
  }
  ASSERT_EQ(got.shape(), es);
  const std::string what = std::string(rname(c.op)) + " " + std::string(dtype_name(c.dt));
  if (c.op == R::argmax || c.op == R::argmin) {
    ASSERT_EQ(got.dtype(), DType::i64);
    expect_exact(got, iref, what);
    return;
  }
  if (c.op == R::any || c.op == R::all) {
    ASSERT_EQ(got.dtype(), DType::boolean);
    expect_exact(got, ref, what);
    return;
  }
  if (c.op == R::max || c.op == R::min) expect_exact(idx, iref, what + " indices");
  if (!is_float(got.dtype())) {
    expect_exact(got, ref, what);
  } else {
    double tol = default_tol(got.dtype()) * (c.op == R::prod ? 4 : 1);
    if (c.op == R::sum || c.op == R::mean) {
      // Summation error scales with sum|x|, not |sum x|: widen the tolerance by the condition
      // number of the sums (a near-zero mean of many +-2 values is ill-conditioned).
      double num = 0, den = 0;
      for (size_t g = 0; g < groups.size(); ++g) {
        double a = 0;
        for (double v : groups[g]) a += std::isfinite(v) ? std::abs(v) : 0.0;
        if (c.op == R::mean && !groups[g].empty()) a /= static_cast<double>(groups[g].size());
        if (std::isfinite(ref[g])) num += a * a, den += ref[g] * ref[g];
      }
      tol *= std::max(1.0, std::sqrt(num / std::max(den, 1e-300)));
    }
    for (auto& r : ref) r = round_to(r, got.dtype());
    expect_close(got, ref, tol, what);
  }
}

std::vector<RCase> reduce_cases() {
  std::vector<RCase> v;
  const R all_ops[] = {R::sum, R::mean, R::prod, R::amax, R::amin, R::max, R::min, R::argmax, R::argmin,
                       R::var, R::std, R::norm1, R::norm2, R::norminf, R::norm3, R::any, R::all, R::logsumexp};
  for (Device d : test_devices()) {
    for (R op : all_ops)
      for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
        const bool one = single_dim(op);
        v.push_back({d, op, t, {5, 37}, one ? Dims{1} : Dims{}, false, Layout::contiguous, false});
        v.push_back({d, op, t, {6, 9, 33}, one ? Dims{0} : Dims{0, 2}, true, Layout::strided, false});
        v.push_back({d, op, t, {7, 19}, Dims{0}, false, Layout::transposed, false});
        v.push_back({d, op, t, {4, 3, 5}, one ? Dims{-1} : Dims{1, -1}, false, Layout::broadcast, false});
        if (t == DType::f32) {
          v.push_back({d, op, t, {3, 1, 200}, Dims{-1}, false, Layout::contiguous, true});  // inf/nan
          v.push_back({d, op, t, {}, one ? Dims{0} : Dims{}, false, Layout::contiguous, false});  // 0-d
          v.push_back({d, op, t, {1, 5}, Dims{0}, true, Layout::contiguous, false});            // size-1
        }
      }
    const R int_ops[] = {R::sum, R::prod, R::amax, R::amin, R::max, R::min, R::argmax, R::argmin, R::any, R::all};
    for (R op : int_ops)
      for (DType t : {DType::i8, DType::u8, DType::i32, DType::i64}) {
        v.push_back({d, op, t, {5, 13}, Dims{1}, false, Layout::contiguous, false});
        v.push_back({d, op, t, {6, 11}, Dims{0}, true, Layout::transposed, false});
      }
    for (R op : {R::sum, R::any, R::all, R::mean})
      v.push_back({d, op, DType::boolean, {9, 21}, Dims{1}, false, Layout::contiguous, false});
    // Large: exercises the segmented parallel path and blocked summation.
    for (R op : {R::sum, R::mean, R::amax, R::argmax, R::var, R::norm2, R::logsumexp})
      v.push_back({d, op, DType::f32, {300001}, Dims{}, false, Layout::contiguous, false});
    v.push_back({d, R::sum, DType::bf16, {2, 150001}, Dims{1}, false, Layout::contiguous, false});
    v.push_back({d, R::sum, DType::f32, {257, 300}, Dims{0}, false, Layout::contiguous, false});
    // Column sums (reduced dim strided, kept dim contiguous): tail column blocks, several
    // accumulator flushes, 16-bit loads, and row ranges split across tasks.
    v.push_back({d, R::mean, DType::bf16, {1100, 37}, Dims{0}, false, Layout::contiguous, false});
    v.push_back({d, R::sum, DType::f16, {40, 700}, Dims{0}, true, Layout::strided, false});
    v.push_back({d, R::sum, DType::f32, {5000, 41}, Dims{0}, false, Layout::contiguous, false});
    v.push_back({d, R::mean, DType::f32, {3, 7, 1000}, Dims{0, 1}, false, Layout::contiguous, false});
  }
  return v;
}

std::string reduce_name(const ::testing::TestParamInfo<RCase>& i) {
  std::ostringstream os;
  const auto& c = i.param;
  os << device_tag(c.dev) << "_" << rname(c.op) << "_" << dtype_name(c.dt) << "_" << c.shape << "_dims" << c.dims
     << (c.keepdim ? "_keep" : "") << "_" << layout_name(c.layout) << (c.specials ? "_specials" : "") << "_"
     << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Reduce, ::testing::ValuesIn(reduce_cases()), reduce_name);

// ---------------------------------------------------------------- along one dim
enum class A { cumsum, cumprod, softmax, log_softmax };
const char* aname(A a) {
  static const char* n[] = {"cumsum", "cumprod", "softmax", "log_softmax"};
  return n[static_cast<int>(a)];
}

struct ACase {
  Device dev;
  A op;
  DType dt;
  Shape shape;
  int64_t dim;
  Layout layout;
  bool specials;
  bool use_out;
};

class AlongDim : public ::testing::TestWithParam<ACase> {};

TEST_P(AlongDim, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  Range rg = is_float(c.dt) ? Range{-3, 3} : Range{-4, 4};
  if (c.op == A::cumprod) rg = is_float(c.dt) ? Range{0.7, 1.3} : (c.dt == DType::u8 ? Range{0, 3} : Range{-2, 3});
  if (c.dt == DType::boolean) rg = {0, 2};
  Tensor x = make_input(c.shape, c.dt, c.dev, rng, rg, c.layout);
  if (c.specials) x = with_specials(x, rng, 0.05);
  const DType od = (c.op == A::cumsum || c.op == A::cumprod) && !is_float(c.dt) ? DType::i64 : c.dt;
  Tensor out = c.use_out ? poisoned(c.shape, od, c.dev) : Tensor{};
  Tensor got;
  switch (c.op) {
    case A::cumsum: got = ops::cumsum(x, c.dim, out); break;
    case A::cumprod: got = ops::cumprod(x, c.dim, out); break;
    case A::softmax: got = ops::softmax(x, c.dim, out); break;
    case A::log_softmax: got = ops::log_softmax(x, c.dim, out); break;
  }
  ASSERT_EQ(got.shape(), c.shape);
  ASSERT_EQ(got.dtype(), od);
  const auto xv = to_f64(x);
  std::vector<double> ref(xv.size());
  const int nd = c.shape.size();
  const int d = nd == 0 ? 0 : static_cast<int>(c.dim < 0 ? c.dim + nd : c.dim);
  const int64_t n = nd == 0 ? 1 : c.shape[d];
  int64_t inner = 1;
  for (int i = d + 1; i < nd; ++i) inner *= c.shape[i];
  const int64_t outer = n == 0 ? 0 : static_cast<int64_t>(xv.size()) / (n * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * n + k) * inner + in); };
      if (c.op == A::cumsum || c.op == A::cumprod) {
        double acc = c.op == A::cumsum ? 0 : 1;
        for (int64_t k = 0; k < n; ++k) {
          acc = c.op == A::cumsum ? acc + xv[at(k)] : acc * xv[at(k)];
          ref[at(k)] = acc;
        }
      } else {
        double m = -kInf;
        for (int64_t k = 0; k < n; ++k) m = (std::isnan(xv[at(k)]) || xv[at(k)] > m) ? xv[at(k)] : m;
        double s = 0;
        for (int64_t k = 0; k < n; ++k) s += std::exp(xv[at(k)] - m);
        for (int64_t k = 0; k < n; ++k)
          ref[at(k)] = c.op == A::softmax ? std::exp(xv[at(k)] - m) / s : xv[at(k)] - m - std::log(s);
      }
    }
  const std::string what = std::string(aname(c.op)) + " " + std::string(dtype_name(c.dt));
  if (!is_float(od)) {
    expect_exact(got, ref, what);
  } else {
    for (auto& r : ref) r = round_to(r, od);
    expect_close(got, ref, default_tol(od) * 2, what);
  }
}

std::vector<ACase> along_cases() {
  std::vector<ACase> v;
  for (Device d : test_devices()) {
    for (A op : {A::cumsum, A::cumprod, A::softmax, A::log_softmax})
      for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
        v.push_back({d, op, t, {4, 37}, -1, Layout::contiguous, false, true});
        v.push_back({d, op, t, {5, 6, 19}, 1, Layout::strided, false, false});
        v.push_back({d, op, t, {9, 17}, 0, Layout::transposed, false, true});
        v.push_back({d, op, t, {3, 1, 8}, -1, Layout::broadcast, false, false});
        if (t == DType::f32) {
          v.push_back({d, op, t, {}, 0, Layout::contiguous, false, false});
          v.push_back({d, op, t, {0, 5}, 1, Layout::contiguous, false, true});
          v.push_back({d, op, t, {3, 0}, 1, Layout::contiguous, false, false});
          v.push_back({d, op, t, {2, 40}, 1, Layout::contiguous, true, false});
        }
      }
    for (A op : {A::cumsum, A::cumprod})
      for (DType t : {DType::i32, DType::i64, DType::u8, DType::boolean})
        v.push_back({d, op, t, {3, 29}, 1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {3, 70001}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f32, {5, 5003}, -1, Layout::contiguous, false, true});  // 3-pass rows
    v.push_back({d, A::log_softmax, DType::bf16, {2, 30001}, -1, Layout::contiguous, false, true});
    // whole 16-byte vectors per row (accelerator register paths), with and without specials
    v.push_back({d, A::softmax, DType::f32, {3, 32000}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {4, 4096}, -1, Layout::contiguous, true, false});
    v.push_back({d, A::log_softmax, DType::bf16, {2, 8192}, -1, Layout::contiguous, true, true});
    v.push_back({d, A::softmax, DType::f16, {3, 2056}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::log_softmax, DType::f64, {3, 2048}, -1, Layout::contiguous, false, true});
    // one-read long-row paths (FLAGOS_CUDA_SOFTMAX_PATH=cluster|row1024 on cuda): rows of 8193..32768
    // values of 16-byte vectors, cluster of 2 up to 16384; just under/over each limit, odd lengths
    v.push_back({d, A::softmax, DType::f32, {2, 8196}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {3, 16384}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::log_softmax, DType::f32, {2, 16388}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {5, 32000}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 32768}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f32, {2, 32772}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 32767}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 20001}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::bf16, {3, 32000}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::log_softmax, DType::f16, {2, 16392}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::bf16, {2, 32776}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f16, {2, 24000}, -1, Layout::contiguous, true, true});
    // vocabulary rows (cuda: one-read kernel over a cluster of 16 or 8 CTAs, FLAGOS_CUDA_SOFTMAX_LONG,
    // up to 163840 f32 values): rows not a multiple of the split (131076 = 32769 vectors), one row,
    // odd lengths (unaligned rows: the block path), past the limit, strided rows, 16-bit types
    v.push_back({d, A::softmax, DType::f32, {2, 152064}, -1, Layout::contiguous, true, true});
    v.push_back({d, A::softmax, DType::f32, {1, 152064}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::log_softmax, DType::f32, {2, 152064}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {3, 131076}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f32, {2, 32776}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 163840}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f32, {2, 163844}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 152063}, -1, Layout::contiguous, true, false});
    v.push_back({d, A::softmax, DType::f32, {2, 8193}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f32, {2, 3, 65540}, 2, Layout::strided, false, false});
    v.push_back({d, A::softmax, DType::bf16, {2, 152064}, -1, Layout::contiguous, true, true});
    v.push_back({d, A::log_softmax, DType::bf16, {3, 100008}, -1, Layout::contiguous, false, false});
    v.push_back({d, A::softmax, DType::f16, {2, 196608}, -1, Layout::contiguous, false, true});
    v.push_back({d, A::softmax, DType::f16, {1, 65544}, -1, Layout::contiguous, true, false});
  }
  return v;
}

std::string along_name(const ::testing::TestParamInfo<ACase>& i) {
  std::ostringstream os;
  const auto& c = i.param;
  os << device_tag(c.dev) << "_" << aname(c.op) << "_" << dtype_name(c.dt) << "_" << c.shape << "_dim" << c.dim
     << "_" << layout_name(c.layout) << (c.specials ? "_specials" : "") << (c.use_out ? "_out" : "") << "_"
     << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, AlongDim, ::testing::ValuesIn(along_cases()), along_name);

// ---------------------------------------------------------------- edge semantics
TEST(ReduceSemantics, EmptyTiesNanInfRows) {
  for (Device d : test_devices()) {
    Tensor e = Tensor::empty({3, 0}, DType::f32, d);
    EXPECT_EQ(to_f64(ops::sum(e, {1})), std::vector<double>(3, 0.0));
    EXPECT_EQ(to_f64(ops::prod(e, {1})), std::vector<double>(3, 1.0));
    EXPECT_TRUE(std::isnan(to_f64(ops::mean(e, {1}))[0]));
    EXPECT_EQ(ops::sum(Tensor::empty({0, 4}, DType::i32, d), {0}).dtype(), DType::i64);
    EXPECT_THROW(ops::amax(e, {1}), InvalidArgument);
    EXPECT_THROW(ops::argmax(e, 1), InvalidArgument);
    EXPECT_EQ(ops::amax(e, {0}).shape(), Shape({0}));  // nothing reduced over an empty dim: fine
    // ties: first index; NaN: first NaN index.
    Tensor t = Tensor::from_vector<double>({1, 3, 3, NAN, 2, NAN}, {6}, DType::f32).to(d);
    EXPECT_EQ(ops::argmax(t.narrow(0, 0, 3), 0).item(), 1.0);
    EXPECT_EQ(ops::argmin(Tensor::from_vector<double>({2, 1, 1}, {3}, DType::f32).to(d), 0).item(), 1.0);
    auto [mv, mi] = ops::max(t, 0);
    EXPECT_TRUE(std::isnan(mv.item()));
    EXPECT_EQ(mi.item(), 3.0);
    EXPECT_EQ(ops::argmin(t, 0).item(), 3.0);
    // softmax of an all -inf row is NaN; logsumexp is -inf.
    Tensor ninf = ops::full({2, 5}, -INFINITY, DType::f32, d);
    for (double v : to_f64(ops::softmax(ninf, -1))) EXPECT_TRUE(std::isnan(v));
    for (double v : to_f64(ops::logsumexp(ninf, {1}))) EXPECT_EQ(v, -kInf);
    // Rows with some -inf: those entries get 0 / -inf.
    Tensor part = Tensor::from_vector<double>({-INFINITY, 0, 0}, {1, 3}, DType::f32).to(d);
    EXPECT_EQ(to_f64(ops::softmax(part, -1)), (std::vector<double>{0, 0.5, 0.5}));
    EXPECT_EQ(to_f64(ops::log_softmax(part, -1))[0], -kInf);
    // Long rows (the one-read paths on cuda): an all -inf row is NaN, a row with one -inf, one with +inf
    // (NaN: as the reference), a NaN row, and a non-contiguous view (row stride > row length) of finite rows.
    // 65540..163840: the 16/8-CTA cluster kernels; the NaN (index 7) and the -inf (index 5) sit in the
    // first CTA's slice only, the +inf (index n - 1) in the last one's.
    for (int64_t n : {16384, 20000, 32000, 65540, 131076, 152064, 163840}) {
      Tensor h = ops::full({5, n + 64}, 0.0, DType::f32);
      auto* hp = static_cast<float*>(h.data());
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t i = 0; i < n + 64; ++i)
          hp[r * (n + 64) + i] = static_cast<float>(((r * 7919 + i * 104729) % 2003) * 0.003 - 3.0);
      for (int64_t i = 0; i < n + 64; ++i) hp[1 * (n + 64) + i] = -INFINITY;  // row 1: all -inf
      hp[2 * (n + 64) + 5] = -INFINITY;                                          // row 2: one -inf
      hp[3 * (n + 64) + n - 1] = INFINITY;                                       // row 3: one +inf
      hp[4 * (n + 64) + 7] = NAN;                                                // row 4: one NaN
      Tensor hv = h.narrow(1, 0, n);
      const std::vector<double> got = to_f64(ops::softmax(h.to(d).narrow(1, 0, n), -1));
      const std::vector<double> xs = to_f64(hv);
      for (int64_t r = 0; r < 5; ++r) {
        double m = -kInf, sum = 0;
        for (int64_t i = 0; i < n; ++i) m = std::max(m, xs[static_cast<size_t>(r * n + i)]);
        for (int64_t i = 0; i < n; ++i) sum += std::exp(xs[static_cast<size_t>(r * n + i)] - m);
        int bad = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double g = got[static_cast<size_t>(r * n + i)];
          const double want = std::exp(xs[static_cast<size_t>(r * n + i)] - m) / sum;
          if (r == 1 || r == 3 || r == 4) bad += !std::isnan(g);  // +inf: the sum has exp(inf - inf)
          else bad += !(std::abs(g - want) <= 1e-6 * want + 1e-12);
        }
        EXPECT_EQ(bad, 0) << "softmax long row " << r << " of [5, " << n << "] (row stride " << n + 64 << ")";
      }
    }
    // 1e7-element f32 sum meets the f32 tolerance.
    Tensor big = ops::full({10000000}, 0.1, DType::f32, d);
    EXPECT_NEAR(ops::sum(big).item(), 1e7 * static_cast<double>(0.1f), 1e7 * 0.1 * 1e-6);
    // var/std correction; int mean is f32.
    Tensor s = Tensor::from_vector<double>({1, 2, 3, 4}, {4}, DType::f32).to(d);
    EXPECT_NEAR(ops::var(s, {}, 0).item(), 1.25, 1e-6);
    EXPECT_NEAR(ops::std(s, {}, 1).item(), std::sqrt(5.0 / 3.0), 1e-6);
    EXPECT_EQ(ops::mean(Tensor::from_vector<double>({1, 2}, {2}, DType::i32).to(d)).dtype(), DType::f32);
    EXPECT_EQ(ops::norm(s, 0.0).item(), 4.0);
    EXPECT_NEAR(ops::norm(s, -INFINITY).item(), 1.0, 0);
    // sum into a poisoned, strided out.
    Tensor ob = poisoned({4, 2}, DType::f32, d);
    Tensor ov = ob.select(1, 1);
    ops::sum(ops::ones({4, 3}, DType::f32, d), {1}, false, ov);
    const auto obv = to_f64(ob);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(obv[static_cast<size_t>(2 * i + 1)], 3.0);
    // in-place softmax and cumsum.
    Tensor ip = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2}, DType::f32).to(d);
    ops::cumsum(ip, 1, ip);
    EXPECT_EQ(to_f64(ip), (std::vector<double>{1, 3, 3, 7}));
  }
}

void expect_names_op(const std::function<void()>& f, const std::string& op) {
  try {
    f();
    ADD_FAILURE() << op << ": no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
  }
}

TEST(ReduceErrors, NameTheOp) {
  Tensor x = ops::zeros({3, 4});
  expect_names_op([&] { ops::sum(x, {2}); }, "sum");
  expect_names_op([&] { ops::mean(x, {0, 0}); }, "mean");
  expect_names_op([&] { ops::sum(x, {1}, false, ops::zeros({4})); }, "sum");
  expect_names_op([&] { ops::sum(x, {1}, false, ops::zeros({3}, DType::f64)); }, "sum");
  expect_names_op([&] { ops::argmax(x, -3); }, "argmax");
  expect_names_op([&] { ops::max(x, 5); }, "max");
  expect_names_op([&] { ops::var(x, {}, -1); }, "var");
  expect_names_op([&] { ops::softmax(x, 2); }, "softmax");
  expect_names_op([&] { ops::softmax(ops::zeros({3}, DType::i32)); }, "softmax");
  expect_names_op([&] { ops::log_softmax(x, -1, ops::zeros({3, 5})); }, "log_softmax");
  expect_names_op([&] { ops::cumsum(x, 1, ops::zeros({3, 4}, DType::f16)); }, "cumsum");
  expect_names_op([&] { ops::logsumexp(x, {7}); }, "logsumexp");
  Tensor big = ops::zeros({10});
  Tensor lo = big.narrow(0, 0, 6), hi = big.narrow(0, 3, 6);
  expect_names_op([&] { ops::cumsum(lo, 0, hi); }, "cumsum");
  EXPECT_THROW(ops::amax(ops::zeros({2}, DType::boolean)), NotSupported);
}

}  // namespace
}  // namespace flagos::test
