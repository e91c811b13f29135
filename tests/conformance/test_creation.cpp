// Conformance: copy/cast between every pair of plain dtypes over every layout, fill, arange,
// linspace, eye.
#include <cmath>
#include <limits>

#include "harness.h"

namespace flagos::test {
namespace {

const DType kPlain[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                        DType::u8,  DType::i16, DType::i32, DType::i64, DType::boolean};

// The value a cast to `t` must produce (saturating float->int, NaN->0, bool = != 0).
double cast_ref(double v, DType t) {
  if (t == DType::boolean) return v != 0.0 ? 1.0 : 0.0;
  if (is_float(t)) return round_to(v, t);
  if (std::isnan(v)) return 0.0;
  double lo = 0, hi = 0;
  switch (t) {
    case DType::i8: lo = -128; hi = 127; break;
    case DType::u8: lo = 0; hi = 255; break;
    case DType::i16: lo = -32768; hi = 32767; break;
    case DType::i32: lo = -2147483648.0; hi = 2147483647.0; break;
    default: lo = -9223372036854775808.0; hi = 9223372036854775808.0; break;
  }
  return std::trunc(std::clamp(v, lo, hi));
}

struct CopyCase {
  Device dev;
  DType dst, src;
  Shape shape;
  Layout layout;
};

class Copy : public ::testing::TestWithParam<CopyCase> {};

TEST_P(Copy, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  // Integer sources stay within the destination range when it is narrower (wrapping is
  // implementation-defined in other libraries; saturation is tested separately below).
  Range r{-100, 100};
  if (c.src == DType::u8 || c.dst == DType::u8) r = {0, 120};
  Tensor x = make_input(c.shape, c.src, c.dev, rng, r, c.layout);
  if (is_float(c.src) && !is_float(c.dst) && c.dst != DType::boolean) {
    // floats into ints: add out-of-range values and NaN to check saturation
    std::vector<double> v = to_f64(x);
    for (size_t i = 0; i < v.size(); i += 7) v[i] = (i % 3 == 0) ? 1e30 : (i % 3 == 1 ? -1e30 : NAN);
    x = Tensor::from_vector(v, c.shape, c.src).to(c.dev);
  }
  Tensor out = poisoned(c.shape, c.dst, c.dev);
  ops::copy(out, x);
  const auto xv = to_f64(x);
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) ref[i] = cast_ref(xv[i], c.dst);
  expect_exact(out, ref, "copy " + std::string(dtype_name(c.src)) + "->" + std::string(dtype_name(c.dst)));
}

std::vector<CopyCase> copy_cases() {
  std::vector<CopyCase> v;
  for (Device d : test_devices())
    for (DType dst : kPlain)
      for (DType src : kPlain) {
        v.push_back({d, dst, src, {3, 17}, Layout::contiguous});
        v.push_back({d, dst, src, {5, 9}, Layout::transposed});
      }
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::i64, DType::boolean})
      for (const Shape& s : elementwise_shapes())
        for (Layout l : {Layout::contiguous, Layout::strided, Layout::broadcast}) {
          v.push_back({d, t, t, s, l});
          if (t == DType::f32) v.push_back({d, DType::f16, t, s, l}), v.push_back({d, DType::bf16, t, s, l});
          if (t == DType::f16 || t == DType::bf16) v.push_back({d, DType::f32, t, s, l});
        }
  return v;
}

std::string copy_name(const ::testing::TestParamInfo<CopyCase>& i) {
  std::ostringstream os;
  os << device_tag(i.param.dev) << "_" << dtype_name(i.param.src) << "_to_" << dtype_name(i.param.dst) << "_"
     << i.param.shape << "_" << layout_name(i.param.layout) << "_" << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Copy, ::testing::ValuesIn(copy_cases()), copy_name);

class Creation : public ::testing::TestWithParam<std::pair<Device, DType>> {};

TEST_P(Creation, FillArangeLinspaceEye) {
  const auto [dev, t] = GetParam();
  const std::string dn(dtype_name(t));
  {
    Tensor z = ops::full({4, 37}, 3.0, t, dev);
    expect_exact(z, std::vector<double>(4 * 37, cast_ref(3.0, t)), "full " + dn);
    Tensor base = poisoned({6, 10}, t, dev);
    Tensor view = base.slice(1, 1, 10, 3);  // strided fill touches only the view
    ops::fill(view, 1.0);
    const auto all = to_f64(base);
    for (int r = 0; r < 6; ++r)
      for (int c = 0; c < 10; ++c) {
        const double v = all[static_cast<size_t>(r * 10 + c)];
        if (c % 3 == 1) {
          EXPECT_EQ(v, 1.0) << dn << " fill at " << r << "," << c;
        } else if (is_float(t)) {
          EXPECT_TRUE(std::isnan(v)) << dn << " fill wrote outside the view at " << r << "," << c;
        }
      }
  }
  if (t != DType::boolean) {
    Tensor a = ops::arange(-3, 50, 2, t, dev);
    std::vector<double> ref;
    for (double v = -3; v < 50; v += 2) ref.push_back(cast_ref(v, t));
    expect_exact(a, ref, "arange " + dn);
    EXPECT_EQ(ops::arange(5, 5, 1, t, dev).numel(), 0);
  }
  if (is_float(t)) {
    Tensor l = ops::linspace(-1, 2, 7, t, dev);
    std::vector<double> ref;
    for (int i = 0; i < 7; ++i) ref.push_back(round_to(-1 + 0.5 * i, t));
    expect_close(l, ref, default_tol(t), "linspace " + dn);
  }
  Tensor e = ops::eye(3, 5, t, dev);
  std::vector<double> ref(15, 0.0);
  for (int i = 0; i < 3; ++i) ref[static_cast<size_t>(i * 5 + i)] = 1.0;
  expect_exact(e, ref, "eye " + dn);
}

std::vector<std::pair<Device, DType>> creation_cases() {
  std::vector<std::pair<Device, DType>> v;
  for (Device d : test_devices())
    for (DType t : kPlain) v.push_back({d, t});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, Creation, ::testing::ValuesIn(creation_cases()),
                         [](const ::testing::TestParamInfo<std::pair<Device, DType>>& i) {
                           return sanitize(device_tag(i.param.first) + "_" + std::string(dtype_name(i.param.second)));
                         });

TEST(CreationErrors, NameTheOp) {
  EXPECT_THROW(ops::arange(0, 1, 0), InvalidArgument);
  EXPECT_THROW(ops::arange(0, INFINITY, 1), InvalidArgument);
  EXPECT_THROW(ops::linspace(0, 1, -1), InvalidArgument);
  Tensor a = ops::zeros({3, 4});
  Tensor b = ops::zeros({5, 4});
  try {
    ops::copy(a, b);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("copy"), std::string::npos) << e.what();
  }
  // overlapping, non-identical in-place copy is rejected
  Tensor big = ops::zeros({10});
  Tensor lo = big.narrow(0, 0, 6), hi = big.narrow(0, 3, 6);
  EXPECT_THROW(ops::copy(hi, lo), InvalidArgument);
  // broadcast output is rejected
  Tensor bo = ops::zeros({1, 4}).expand({3, 4});
  EXPECT_THROW(ops::copy(bo, ops::zeros({3, 4})), InvalidArgument);
}

}  // namespace
}  // namespace flagos::test
