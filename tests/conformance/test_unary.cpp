// Conformance: unary elementwise ops (+ softplus) over dtypes, shapes and layouts, against
// float64 references computed from the rounded inputs; special values; in place; errors.
#include <cmath>
#include <functional>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {

using RefFn = double (*)(double);
struct UnaryOp {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
  RefFn ref;
  Range range;
  bool ints;  // defined on integer dtypes with an integer result
};

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double sign_ref(double x) { return std::isnan(x) ? x : (x > 0) - (x < 0); }

const UnaryOp kOps[] = {
    {"neg", ops::neg, [](double x) { return -x; }, {-4, 4}, true},
    {"abs", ops::abs, [](double x) { return std::fabs(x); }, {-4, 4}, true},
    {"sign", ops::sign, sign_ref, {-4, 4}, true},
    {"exp", ops::exp, [](double x) { return std::exp(x); }, {-10, 10}, false},
    {"expm1", ops::expm1, [](double x) { return std::expm1(x); }, {-3, 3}, false},
    {"log", ops::log, [](double x) { return std::log(x); }, {0.01, 50}, false},
    {"log1p", ops::log1p, [](double x) { return std::log1p(x); }, {-0.9, 5}, false},
    {"sqrt", ops::sqrt, [](double x) { return std::sqrt(x); }, {0, 50}, false},
    {"rsqrt", ops::rsqrt, [](double x) { return 1.0 / std::sqrt(x); }, {0.01, 50}, false},
    {"reciprocal", ops::reciprocal, [](double x) { return 1.0 / x; }, {0.1, 4}, false},
    {"sin", ops::sin, [](double x) { return std::sin(x); }, {-10, 10}, false},
    {"cos", ops::cos, [](double x) { return std::cos(x); }, {-10, 10}, false},
    {"tanh", ops::tanh, [](double x) { return std::tanh(x); }, {-5, 5}, false},
    {"sigmoid", ops::sigmoid, sigmoid_ref, {-10, 10}, false},
    {"relu", ops::relu, [](double x) { return x < 0 ? 0.0 : x; }, {-4, 4}, false},
    {"silu", ops::silu, [](double x) { return x * sigmoid_ref(x); }, {-8, 8}, false},
    {"gelu", ops::gelu, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, {-6, 6}, false},
    {"gelu_tanh", ops::gelu_tanh,
     [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); },
     {-6, 6}, false},
    {"erf", ops::erf, [](double x) { return std::erf(x); }, {-4, 4}, false},
    {"floor", ops::floor, [](double x) { return std::floor(x); }, {-9, 9}, false},
    {"ceil", ops::ceil, [](double x) { return std::ceil(x); }, {-9, 9}, false},
    {"round", ops::round, [](double x) { return std::nearbyint(x); }, {-9, 9}, false},
};

const DType kFloats[] = {DType::f32, DType::f64, DType::f16, DType::bf16};
const DType kInts[] = {DType::i8, DType::u8, DType::i16, DType::i32, DType::i64};

// Two's complement wrap of an integer result to dtype t.
double wrap_to(double v, DType t) {
  const int bits = static_cast<int>(element_size(t)) * 8;
  if (bits == 64) return v;
  const double m = std::ldexp(1.0, bits);
  double r = std::fmod(v, m);
  if (r < 0) r += m;
  if (dtype_info(t).is_signed && r >= m / 2) r -= m;
  return r;
}

struct UCase {
  Device dev;
  int op;
  DType dtype;
  Shape shape;
  Layout layout;
  bool specials;
  bool poison_out;
};

class Unary : public ::testing::TestWithParam<UCase> {};

TEST_P(Unary, MatchesReference) {
  const auto& c = GetParam();
  const UnaryOp& op = kOps[c.op];
  auto rng = rng_for_current_test();
  Range r = op.range;
  if (c.dtype == DType::u8 && r.lo < 0) r = {0, r.hi};
  if (c.dtype == DType::f16) {  // keep results out of f16's subnormal range, where rounding dominates
    const std::string n = op.name;
    if (n == "gelu" || n == "gelu_tanh" || n == "silu") r.lo = std::max(r.lo, -4.0);
    if (n == "exp" || n == "sigmoid") r.lo = std::max(r.lo, -9.0);
  }
  Tensor x = make_input(c.shape, c.dtype, c.dev, rng, r, c.layout);
  if (c.specials) x = with_specials(x, rng, 0.1);
  const bool int_result = !is_float(c.dtype) && op.ints;
  const DType od = is_float(c.dtype) || op.ints ? c.dtype : DType::f32;
  Tensor out = c.poison_out ? poisoned(c.shape, od, c.dev) : Tensor();
  Tensor y = op.fn(x, out);
  if (c.poison_out) {
    EXPECT_EQ(y.data(), out.data());
  }
  ASSERT_EQ(y.dtype(), od);
  ASSERT_EQ(y.shape(), c.shape);
  const auto xv = to_f64(x);
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) ref[i] = int_result ? wrap_to(op.ref(xv[i]), od) : op.ref(xv[i]);
  const std::string what = std::string(op.name) + " " + std::string(dtype_name(c.dtype));
  if (int_result)
    expect_exact(y, ref, what);
  else
    expect_close(y, ref, default_tol(od), what);
}

std::vector<UCase> unary_cases() {
  std::vector<UCase> v;
  const int nops = static_cast<int>(std::size(kOps));
  for (Device d : test_devices())
    for (int o = 0; o < nops; ++o) {
      for (DType t : kFloats) {
        int k = 0;
        for (const Shape& s : elementwise_shapes(false)) {
          const Layout l = s.size() >= 2 ? (k % 3 == 0 ? Layout::transposed : (k % 3 == 1 ? Layout::strided : Layout::broadcast))
                                         : Layout::contiguous;
          v.push_back({d, o, t, s, l, false, (k++ % 2) == 0});
        }
        v.push_back({d, o, t, {1029}, Layout::contiguous, t == DType::f32 || t == DType::f64, true});
      }
      v.push_back({d, o, DType::f32, {1000003}, Layout::contiguous, false, false});
      for (DType t : kInts) v.push_back({d, o, t, {3, 17}, Layout::transposed, false, true});
    }
  return v;
}

std::string unary_name(const ::testing::TestParamInfo<UCase>& i) {
  std::ostringstream os;
  os << device_tag(i.param.dev) << "_" << kOps[i.param.op].name << "_" << dtype_name(i.param.dtype) << "_"
     << i.param.shape << "_" << layout_name(i.param.layout) << (i.param.specials ? "_specials" : "") << "_"
     << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Unary, ::testing::ValuesIn(unary_cases()), unary_name);

// ---- predicates, softplus, in place, special values, errors ----
class UnaryMisc : public ::testing::TestWithParam<Device> {};

TEST_P(UnaryMisc, Predicates) {
  const Device dev = GetParam();
  auto rng = rng_for_current_test();
  for (DType t : kFloats) {
    Tensor x = with_specials(make_input({5, 13}, t, dev, rng, {-3, 3}, Layout::transposed), rng, 0.3);
    const auto xv = to_f64(x);
    std::vector<double> rn(xv.size()), ri(xv.size()), rl(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      rn[i] = std::isnan(xv[i]);
      ri[i] = std::isinf(xv[i]);
      rl[i] = xv[i] == 0.0;
    }
    expect_exact(ops::isnan(x, poisoned({5, 13}, DType::boolean, dev)), rn, "isnan");
    expect_exact(ops::isinf(x), ri, "isinf");
    expect_exact(ops::logical_not(x), rl, "logical_not");
  }
  for (DType t : {DType::i32, DType::u8, DType::boolean}) {
    Tensor x = make_input({4, 9}, t, dev, rng, {0, 3}, Layout::strided);
    const auto xv = to_f64(x);
    std::vector<double> rl(xv.size()), zero(xv.size(), 0.0);
    for (size_t i = 0; i < xv.size(); ++i) rl[i] = xv[i] == 0.0;
    expect_exact(ops::logical_not(x), rl, "logical_not " + std::string(dtype_name(t)));
    expect_exact(ops::isnan(x), zero, "isnan int");
    expect_exact(ops::isinf(x), zero, "isinf int");
  }
}

TEST_P(UnaryMisc, Softplus) {
  const Device dev = GetParam();
  auto rng = rng_for_current_test();
  for (DType t : kFloats)
    for (double beta : {1.0, 2.0})
      for (double thr : {20.0, 1.0}) {
        Tensor x = make_input({7, 33}, t, dev, rng, {-30, 30}, Layout::transposed);
        const auto xv = to_f64(x);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < xv.size(); ++i)
          ref[i] = beta * xv[i] > thr ? xv[i] : std::log1p(std::exp(beta * xv[i])) / beta;
        expect_close(ops::softplus(x, beta, thr), ref, default_tol(t), "softplus");
      }
  EXPECT_THROW(ops::softplus(ops::zeros({2}), 0.0), InvalidArgument);
}

TEST_P(UnaryMisc, InPlace) {
  const Device dev = GetParam();
  auto rng = rng_for_current_test();
  for (DType t : {DType::f32, DType::f16, DType::bf16}) {
    Tensor base = make_input({9, 40}, t, dev, rng, {-2, 2});
    Tensor x = base.slice(1, 3, 40, 2);  // non-contiguous view, updated in place
    const auto xv = to_f64(x);
    std::vector<double> ref(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) ref[i] = std::tanh(xv[i]);
    ops::tanh(x, x);
    expect_close(x, ref, default_tol(t), "tanh in place");
    Tensor y = make_input({4099}, t, dev, rng, {-20, 20});
    const auto yv = to_f64(y);
    ref.assign(yv.size(), 0.0);
    for (size_t i = 0; i < yv.size(); ++i) ref[i] = std::sin(yv[i]);
    ops::sin(y, y);
    expect_close(y, ref, default_tol(t), "sin in place");
  }
}

TEST_P(UnaryMisc, SpecialValues) {
  const Device dev = GetParam();
  const double inf = INFINITY, nan = NAN;
  const std::vector<double> xs = {0.0, -0.0, inf, -inf, nan, 1e-40, -1e-40, 88.8, -104.0, 1e4, -3e5, 2.5, -2.5, 0.5};
  Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}, DType::f32).to(dev);
  const auto xv = to_f64(x);
  for (const UnaryOp& op : kOps) {
    std::vector<double> ref(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) ref[i] = static_cast<float>(op.ref(xv[i]));
    expect_close(op.fn(x, Tensor()), ref, 1e-5, std::string("specials ") + op.name);
  }
  // round is half-to-even; sign(NaN) = NaN
  const auto r = ops::round(x).to_vector<double>();
  EXPECT_EQ(r[11], 2.0);
  EXPECT_EQ(r[12], -2.0);
  EXPECT_EQ(r[13], 0.0);
  EXPECT_TRUE(std::isnan(ops::sign(x).to_vector<double>()[4]));
}

TEST_P(UnaryMisc, Errors) {
  const Device dev = GetParam();
  Tensor x = ops::zeros({3, 4}, DType::f32, dev);
  auto expect_invalid = [](auto&& f, const char* name) {
    try {
      f();
      ADD_FAILURE() << name << ": no exception";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_invalid([&] { ops::exp(x, ops::zeros({4, 3}, DType::f32, dev)); }, "exp");
  expect_invalid([&] { ops::neg(x, ops::zeros({3, 4}, DType::f16, dev)); }, "neg");
  expect_invalid([&] { ops::isnan(x, ops::zeros({3, 4}, DType::f32, dev)); }, "isnan");
  expect_invalid([&] { ops::gelu(Tensor()); }, "gelu");
  expect_invalid([&] { ops::tanh(x, ops::zeros({1, 4}, DType::f32, dev).expand({3, 4})); }, "tanh");
  // partial overlap with the input is rejected
  Tensor big = ops::zeros({10}, DType::f32, dev);
  expect_invalid([&] { ops::exp(big.slice(0, 0, 8), big.slice(0, 2, 10)); }, "exp");
  // no kernel for (neg, bool): NotSupported
  EXPECT_THROW(ops::neg(ops::zeros({3}, DType::boolean, dev)), NotSupported);
  // integer inputs of float ops compute in f32
  Tensor xi = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::i32).to(dev);
  Tensor e = ops::exp(xi);
  EXPECT_EQ(e.dtype(), DType::f32);
  expect_close(e, {std::exp(1.0), std::exp(2.0), std::exp(3.0)}, 1e-6, "exp i32");
}

INSTANTIATE_TEST_SUITE_P(All, UnaryMisc, ::testing::ValuesIn(test_devices()),
                         [](const ::testing::TestParamInfo<Device>& i) { return device_tag(i.param); });

}  // namespace
}  // namespace flagos::test
