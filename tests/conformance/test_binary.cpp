// Conformance: binary elementwise ops (tensor-tensor with broadcasting, tensor-scalar), type
// promotion, where, clamp, lerp; in place; errors. References in float64 from rounded inputs.
#include <cmath>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {

enum class Res { same, boolean };
struct BinaryOp {
  const char* name;
  Tensor (*tt)(const Tensor&, const Tensor&, const Tensor&);
  Tensor (*ts)(const Tensor&, double, const Tensor&);
  double (*ref)(double, double);
  Res res;
  bool ints;
  Range ra, rb;
};

double py_rem(double a, double b) {
  if (b == 0) return 0;  // integer remainder by zero is defined as 0 here
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }
double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); }

const BinaryOp kOps[] = {
    {"add", ops::add, ops::add, [](double a, double b) { return a + b; }, Res::same, true, {-5, 5}, {-5, 5}},
    {"sub", ops::sub, ops::sub, [](double a, double b) { return a - b; }, Res::same, true, {-5, 5}, {-5, 5}},
    {"mul", ops::mul, ops::mul, [](double a, double b) { return a * b; }, Res::same, true, {-5, 5}, {-5, 5}},
    {"div", ops::div, ops::div, [](double a, double b) { return a / b; }, Res::same, false, {-5, 5}, {0.5, 4}},
    {"pow", ops::pow, ops::pow, [](double a, double b) { return std::pow(a, b); }, Res::same, false, {0.1, 3}, {-2, 2}},
    {"maximum", ops::maximum, ops::maximum, nan_max, Res::same, true, {-5, 5}, {-5, 5}},
    {"minimum", ops::minimum, ops::minimum, nan_min, Res::same, true, {-5, 5}, {-5, 5}},
    {"remainder", ops::remainder, ops::remainder, py_rem, Res::same, true, {-9, 9}, {-4, 4}},
    {"eq", ops::eq, ops::eq, [](double a, double b) { return double(a == b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"ne", ops::ne, ops::ne, [](double a, double b) { return double(a != b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"lt", ops::lt, ops::lt, [](double a, double b) { return double(a < b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"le", ops::le, ops::le, [](double a, double b) { return double(a <= b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"gt", ops::gt, ops::gt, [](double a, double b) { return double(a > b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"ge", ops::ge, ops::ge, [](double a, double b) { return double(a >= b); }, Res::boolean, true, {-2, 2}, {-2, 2}},
    {"logical_and", ops::logical_and, ops::logical_and, [](double a, double b) { return double(a != 0 && b != 0); },
     Res::boolean, true, {-1.5, 1.5}, {-1.5, 1.5}},
    {"logical_or", ops::logical_or, ops::logical_or, [](double a, double b) { return double(a != 0 || b != 0); },
     Res::boolean, true, {-1.5, 1.5}, {-1.5, 1.5}},
};

const DType kFloats[] = {DType::f32, DType::f64, DType::f16, DType::bf16};
const DType kInts[] = {DType::i8, DType::u8, DType::i16, DType::i32, DType::i64};

double wrap_to(double v, DType t) {
  const int bits = static_cast<int>(element_size(t)) * 8;
  if (bits == 64) return v;
  const double m = std::ldexp(1.0, bits);
  double r = std::fmod(v, m);
  if (r < 0) r += m;
  if (dtype_info(t).is_signed && r >= m / 2) r -= m;
  return r;
}

// Elementwise reference over broadcast shapes.
template <typename F>
std::vector<double> bcast_ref(const Shape& out, const Tensor& a, const Tensor& b, F f) {
  const auto av = to_f64(a), bv = to_f64(b);
  std::vector<double> r(static_cast<size_t>(out.numel()));
  for (int64_t i = 0; i < out.numel(); ++i) {
    const auto idx = unravel(i, out);
    r[static_cast<size_t>(i)] = f(av[static_cast<size_t>(broadcast_index(idx, a.shape()))],
                                  bv[static_cast<size_t>(broadcast_index(idx, b.shape()))]);
  }
  return r;
}

void check_result(const Tensor& y, const std::vector<double>& ref, DType od, const std::string& what) {
  if (is_float(od))
    expect_close(y, ref, default_tol(od), what);
  else
    expect_exact(y, ref, what);
}

struct BCase {
  Device dev;
  int op;
  DType dtype;
  Shape sa, sb;
  Layout la, lb;
  bool scalar;  // b is a python scalar
  bool poison_out;
};

class Binary : public ::testing::TestWithParam<BCase> {};

TEST_P(Binary, MatchesReference) {
  const auto& c = GetParam();
  const BinaryOp& op = kOps[c.op];
  auto rng = rng_for_current_test();
  Range ra = op.ra, rb = op.rb;
  if (c.dtype == DType::u8) ra.lo = std::max(ra.lo, 0.0), rb.lo = std::max(rb.lo, 0.0);
  Tensor a = make_input(c.sa, c.dtype, c.dev, rng, ra, c.la);
  const bool int_t = !is_float(c.dtype);
  const DType ct = (int_t && (std::string(op.name) == "div" || std::string(op.name) == "pow")) ? DType::f32 : c.dtype;
  const DType od = op.res == Res::boolean ? DType::boolean : ct;
  const std::string what = std::string(op.name) + " " + std::string(dtype_name(c.dtype));
  auto f = [&](double x, double y) {
    const double v = op.ref(x, y);
    return is_float(od) || od == DType::boolean ? v : wrap_to(v, od);
  };
  if (c.scalar) {
    const double s = int_t ? 3.0 : round_to(1.25, c.dtype);
    Tensor out = c.poison_out ? poisoned(c.sa, od, c.dev) : Tensor();
    Tensor y = op.ts(a, s, out);
    ASSERT_EQ(y.dtype(), od);
    const auto av = to_f64(a);
    std::vector<double> ref(av.size());
    for (size_t i = 0; i < av.size(); ++i) ref[i] = f(av[i], s);
    check_result(y, ref, od, what + " scalar");
    return;
  }
  Tensor b = make_input(c.sb, c.dtype, c.dev, rng, rb, c.lb);
  const Shape os = broadcast_shapes(c.sa, c.sb, "test");
  Tensor out = c.poison_out ? poisoned(os, od, c.dev) : Tensor();
  Tensor y = op.tt(a, b, out);
  ASSERT_EQ(y.dtype(), od);
  ASSERT_EQ(y.shape(), os);
  check_result(y, bcast_ref(os, a, b, f), od, what);
}

std::vector<BCase> binary_cases() {
  std::vector<BCase> v;
  const int nops = static_cast<int>(std::size(kOps));
  struct Pair {
    Shape a, b;
    Layout la, lb;
  };
  const std::vector<Pair> pairs = {
      {{}, {}, Layout::contiguous, Layout::contiguous},
      {{0}, {0}, Layout::contiguous, Layout::contiguous},
      {{7}, {7}, Layout::contiguous, Layout::contiguous},
      {{33}, {1}, Layout::contiguous, Layout::contiguous},
      {{3, 5}, {3, 5}, Layout::transposed, Layout::contiguous},
      {{4, 1, 9}, {5, 1}, Layout::contiguous, Layout::contiguous},
      {{17, 65}, {65}, Layout::strided, Layout::contiguous},
      {{2, 0, 3}, {3}, Layout::contiguous, Layout::contiguous},
      {{1, 65}, {17, 1}, Layout::contiguous, Layout::contiguous},
      {{2, 3, 4, 5}, {2, 3, 4, 5}, Layout::broadcast, Layout::transposed},
      {{}, {6, 7}, Layout::contiguous, Layout::strided},
  };
  for (Device d : test_devices())
    for (int o = 0; o < nops; ++o) {
      for (DType t : kFloats) {
        int k = 0;
        for (const Pair& p : pairs) v.push_back({d, o, t, p.a, p.b, p.la, p.lb, false, (k++ % 2) == 0});
        v.push_back({d, o, t, {5, 33}, {}, Layout::transposed, Layout::contiguous, true, true});
        v.push_back({d, o, t, {1029}, {}, Layout::contiguous, Layout::contiguous, true, false});
      }
      for (DType t : kInts) {
        v.push_back({d, o, t, {4, 1, 9}, {5, 1}, Layout::contiguous, Layout::contiguous, false, true});
        v.push_back({d, o, t, {17, 6}, {17, 6}, Layout::transposed, Layout::strided, false, false});
        v.push_back({d, o, t, {9, 4}, {}, Layout::strided, Layout::contiguous, true, true});
      }
      if (std::string(kOps[o].name) == "eq" || std::string(kOps[o].name).rfind("logical", 0) == 0 ||
          std::string(kOps[o].name) == "ne")
        v.push_back({d, o, DType::boolean, {6, 5}, {5}, Layout::transposed, Layout::contiguous, false, true});
    }
  for (Device d : test_devices())
    for (int o : {0, 2})  // add, mul: large
      v.push_back({d, o, DType::f32, {1000003}, {1000003}, Layout::contiguous, Layout::contiguous, false, false});
  return v;
}

std::string binary_name(const ::testing::TestParamInfo<BCase>& i) {
  std::ostringstream os;
  const auto& p = i.param;
  os << device_tag(p.dev) << "_" << kOps[p.op].name << "_" << dtype_name(p.dtype) << "_" << p.sa << "_"
     << layout_name(p.la);
  if (p.scalar)
    os << "_scalar";
  else
    os << "_" << p.sb << "_" << layout_name(p.lb);
  os << "_" << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Binary, ::testing::ValuesIn(binary_cases()), binary_name);

// ---- promotion, specials, in place, where/clamp/lerp, errors ----
class BinaryMisc : public ::testing::TestWithParam<Device> {};

Tensor vec(std::vector<double> v, DType t, Device dev) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n}, t).to(dev);
}

TEST_P(BinaryMisc, Promotion) {
  const Device dev = GetParam();
  Tensor i32 = vec({1, -2, 7}, DType::i32, dev);
  Tensor f32 = vec({0.5, 0.25, -1}, DType::f32, dev);
  EXPECT_EQ(ops::add(i32, f32).dtype(), DType::f32);
  expect_close(ops::add(i32, f32), {1.5, -1.75, 6}, 1e-6, "i32+f32");
  EXPECT_EQ(ops::add(i32, 2.0).dtype(), DType::i32);
  EXPECT_EQ(ops::add(i32, 2.5).dtype(), DType::f32);
  expect_close(ops::add(i32, 2.5), {3.5, 0.5, 9.5}, 1e-6, "i32+2.5");
  EXPECT_EQ(ops::mul(vec({1, 2}, DType::f16, dev), 1.5).dtype(), DType::f16);
  EXPECT_EQ(ops::add(vec({1}, DType::f16, dev), vec({1}, DType::bf16, dev)).dtype(), DType::f32);
  EXPECT_EQ(ops::add(vec({1}, DType::u8, dev), vec({1}, DType::i8, dev)).dtype(), DType::i16);
  Tensor d = ops::div(vec({7, -7}, DType::i32, dev), vec({2, 2}, DType::i32, dev));
  EXPECT_EQ(d.dtype(), DType::f32);
  expect_close(d, {3.5, -3.5}, 1e-6, "int div");
  expect_exact(ops::remainder(vec({7, -7, 7, -7}, DType::i64, dev), vec({3, 3, -3, -3}, DType::i64, dev)),
               {1, 2, -2, -1}, "python remainder");
  expect_close(ops::remainder(vec({7.5, -7.5}, DType::f32, dev), -2.0), {-0.5, -1.5}, 1e-6, "float remainder");
  EXPECT_EQ(ops::lt(i32, 2.5).dtype(), DType::boolean);
  expect_exact(ops::lt(i32, 2.5), {1, 1, 0}, "i32 < 2.5");
  expect_exact(ops::eq(f32, f32), {1, 1, 1}, "eq self");
  // bool arithmetic has no kernel
  EXPECT_THROW(ops::add(vec({1, 0}, DType::boolean, dev), vec({1, 1}, DType::boolean, dev)), NotSupported);
}

TEST_P(BinaryMisc, SpecialValues) {
  const Device dev = GetParam();
  const double inf = INFINITY, nan = NAN;
  for (DType t : kFloats) {
    Tensor a = vec({nan, 1, inf, -inf, 0, 2}, t, dev);
    Tensor b = vec({1, nan, 1, inf, 0, -inf}, t, dev);
    const auto max = ops::maximum(a, b).to_vector<double>();
    EXPECT_TRUE(std::isnan(max[0]) && std::isnan(max[1])) << dtype_name(t);
    EXPECT_EQ(max[2], inf);
    EXPECT_EQ(max[3], inf);
    const auto mn = ops::minimum(a, b).to_vector<double>();
    EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]));
    EXPECT_EQ(mn[5], -inf);
    const auto q = ops::div(a, b).to_vector<double>();
    EXPECT_TRUE(std::isnan(q[4]));  // 0/0
    EXPECT_EQ(q[5], -0.0);
    expect_exact(ops::ne(a, a), {1, 0, 0, 0, 0, 0}, "NaN != NaN");
  }
}

TEST_P(BinaryMisc, InPlaceAndLarge) {
  const Device dev = GetParam();
  auto rng = rng_for_current_test();
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    Tensor a = make_input({64, 3584}, t, dev, rng, {-3, 3});
    Tensor b = make_input({3584}, t, dev, rng, {-3, 3});
    const auto ref = bcast_ref(a.shape(), a, b, [&](double x, double y) { return x + y; });
    ops::add(a, b, a);  // a += b, broadcast
    check_result(a, ref, t, "add in place");
    Tensor x = make_input({40, 30}, t, dev, rng, {-3, 3}).transpose(0, 1);
    const auto xv = to_f64(x);
    std::vector<double> r2(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) r2[i] = xv[i] * 2;
    ops::mul(x, 2.0, x);
    check_result(x, r2, t, "mul scalar in place, transposed");
  }
}

TEST_P(BinaryMisc, WhereClampLerp) {
  const Device dev = GetParam();
  auto rng = rng_for_current_test();
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::i32, DType::i64, DType::boolean}) {
    const std::string dn(dtype_name(t));
    Tensor c = make_input({5, 1, 7}, DType::boolean, dev, rng, {0, 2}, Layout::contiguous);
    Tensor a = make_input({4, 7}, t, dev, rng, {-5, 5}, Layout::transposed);
    Tensor b = make_input({5, 4, 1}, t, dev, rng, {-5, 5}, Layout::strided);
    const Shape os{5, 4, 7};
    const auto cv = to_f64(c), av = to_f64(a), bv = to_f64(b);
    std::vector<double> ref(static_cast<size_t>(os.numel()));
    for (int64_t i = 0; i < os.numel(); ++i) {
      const auto idx = unravel(i, os);
      ref[static_cast<size_t>(i)] = cv[static_cast<size_t>(broadcast_index(idx, c.shape()))]
                                        ? av[static_cast<size_t>(broadcast_index(idx, a.shape()))]
                                        : bv[static_cast<size_t>(broadcast_index(idx, b.shape()))];
    }
    expect_exact(ops::where(c, a, b, poisoned(os, t, dev)), ref, "where " + dn);
    if (t == DType::boolean) continue;
    Tensor x = make_input({9, 33}, t, dev, rng, {-10, 10}, Layout::transposed);
    const auto xv = to_f64(x);
    for (auto [lo, hi] : {std::pair<std::optional<double>, std::optional<double>>{-3.0, 4.0}, {std::nullopt, 2.0},
                          {-1.0, std::nullopt}, {5.0, -5.0}}) {
      std::vector<double> r(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        double v = xv[i];
        if (lo) v = std::max(v, *lo);
        if (hi) v = std::min(v, *hi);
        r[i] = v;
      }
      check_result(ops::clamp(x, lo, hi, poisoned({9, 33}, t, dev)), r, t, "clamp " + dn);
    }
    if (!is_float(t)) {
      EXPECT_EQ(ops::clamp(x, 0.5, std::nullopt).dtype(), DType::f32);
      EXPECT_THROW(ops::lerp(x, x, 0.5), InvalidArgument);
      continue;
    }
    Tensor s = make_input({6, 1, 9}, t, dev, rng, {-3, 3});
    Tensor e = make_input({4, 9}, t, dev, rng, {-3, 3}, Layout::transposed);
    Tensor w = make_input({9}, t, dev, rng, {-0.5, 1.5});
    const Shape ls{6, 4, 9};
    const auto sv = to_f64(s), ev = to_f64(e), wv = to_f64(w);
    std::vector<double> lr(static_cast<size_t>(ls.numel())), lr2(lr.size());
    for (int64_t i = 0; i < ls.numel(); ++i) {
      const auto idx = unravel(i, ls);
      const double sa = sv[static_cast<size_t>(broadcast_index(idx, s.shape()))];
      const double ea = ev[static_cast<size_t>(broadcast_index(idx, e.shape()))];
      lr[static_cast<size_t>(i)] = sa + wv[static_cast<size_t>(idx[2])] * (ea - sa);
      lr2[static_cast<size_t>(i)] = sa + 0.75 * (ea - sa);
    }
    expect_close(ops::lerp(s, e, w, poisoned(ls, t, dev)), lr, default_tol(t), "lerp " + dn);
    expect_close(ops::lerp(s, e, 0.75), lr2, default_tol(t), "lerp scalar " + dn);
  }
}

TEST_P(BinaryMisc, Errors) {
  const Device dev = GetParam();
  Tensor a = ops::zeros({3, 4}, DType::f32, dev);
  auto expect_invalid = [](auto&& f, const char* name) {
    try {
      f();
      ADD_FAILURE() << name << ": no exception";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_invalid([&] { ops::add(a, ops::zeros({5}, DType::f32, dev)); }, "add");
  expect_invalid([&] { ops::mul(a, a, ops::zeros({3, 4}, DType::f64, dev)); }, "mul");
  expect_invalid([&] { ops::lt(a, a, ops::zeros({3, 4}, DType::f32, dev)); }, "lt");
  expect_invalid([&] { ops::sub(a, ops::zeros({4}, DType::f32, dev), ops::zeros({4}, DType::f32, dev)); }, "sub");
  expect_invalid([&] { ops::add(ops::zeros({3}, DType::i32, dev), 1e30); }, "add");
  expect_invalid([&] { ops::where(a, a, a); }, "where");
  expect_invalid([&] { ops::where(ops::zeros({2}, DType::boolean, dev), a, a); }, "where");
  expect_invalid([&] { ops::clamp(a, NAN, 1.0); }, "clamp");
  expect_invalid([&] { ops::lerp(a, ops::zeros({2}, DType::f32, dev), 0.5); }, "lerp");
  // broadcasting a over the output it aliases is not exact in-place
  Tensor row = ops::zeros({4}, DType::f32, dev);
  expect_invalid([&] { ops::add(row, a, row.unsqueeze(0).expand({3, 4})); }, "add");
}

INSTANTIATE_TEST_SUITE_P(All, BinaryMisc, ::testing::ValuesIn(test_devices()),
                         [](const ::testing::TestParamInfo<Device>& i) { return device_tag(i.param); });

}  // namespace
}  // namespace flagos::test
