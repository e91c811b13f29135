// Conformance: rms_norm, layer_norm, group_norm, add_rms_norm against float64 references over
// dtypes (weight in x's dtype or f32, or absent), layouts, odd/large sizes and poisoned outs.
#include <cmath>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {

enum class N { rms, layer, group, add_rms };
const char* nname(N n) {
  static const char* s[] = {"rms_norm", "layer_norm", "group_norm", "add_rms_norm"};
  return s[static_cast<int>(n)];
}

struct NCase {
  Device dev;
  N op;
  DType dt;
  DType wdt;  // count_ = no weight/bias
  Shape shape;
  Layout layout;
  bool use_out;
  bool row_pad = false;  // x (and the residual) rows padded by 8 elements: row-strided views
};

class Norm : public ::testing::TestWithParam<NCase> {};

TEST_P(Norm, MatchesReference) {
  const auto& c = GetParam();
  auto rng = rng_for_current_test();
  const double eps = 1e-5;
  const bool has_w = c.wdt != DType::count_;
  auto padded = [&](const Shape& s) {  // [rows, H] view of [rows, H + 8]
    Shape b = s;
    b[b.size() - 1] += 8;
    return make_input(b, c.dt, c.dev, rng, {-2, 2}).narrow(-1, 0, s[s.size() - 1]);
  };
  Tensor x = c.row_pad ? padded(c.shape) : make_input(c.shape, c.dt, c.dev, rng, {-2, 2}, c.layout);
  const int nd = c.shape.size();
  const int64_t h = c.op == N::group ? c.shape[1] : c.shape[nd - 1];
  Tensor w, b;
  if (has_w) {
    w = make_input({h}, c.wdt, c.dev, rng, {0.5, 1.5});
    b = make_input({h}, c.wdt, c.dev, rng, {-1, 1});
  }
  Tensor out = c.use_out ? poisoned(c.shape, c.dt, c.dev) : Tensor{};
  auto xv = to_f64(x);
  const std::vector<double> wv = has_w ? to_f64(w) : std::vector<double>(static_cast<size_t>(h), 1.0);
  const std::vector<double> bv = has_w ? to_f64(b) : std::vector<double>(static_cast<size_t>(h), 0.0);
  Tensor residual;
  std::vector<double> rref;
  if (c.op == N::add_rms) {
    residual = c.row_pad ? padded(c.shape) : make_input(c.shape, c.dt, c.dev, rng, {-2, 2}, Layout::contiguous);
    const auto rv = to_f64(residual);
    rref.resize(rv.size());
    for (size_t i = 0; i < rv.size(); ++i) rref[i] = round_to(rv[i] + xv[i], c.dt);
  }
  Tensor got;
  switch (c.op) {
    case N::rms: got = ops::rms_norm(x, w, eps, out); break;
    case N::layer: got = ops::layer_norm(x, w, b, eps, out); break;
    case N::group: got = ops::group_norm(x, 2, w, b, eps, out); break;
    case N::add_rms: got = ops::add_rms_norm(x, residual, w, eps, out); break;
  }
  ASSERT_EQ(got.shape(), c.shape);
  const std::string what = std::string(nname(c.op)) + " " + std::string(dtype_name(c.dt));
  if (c.op == N::add_rms) {
    expect_close(residual, rref, default_tol(c.dt), what + " residual");
    xv = rref;
  }
  std::vector<double> ref(xv.size());
  if (c.op == N::group) {
    const int64_t n = c.shape[0], g = 2, cg = h / g, sp = n * h == 0 ? 0 : static_cast<int64_t>(xv.size()) / (n * h);
    for (int64_t i = 0; i < n * g; ++i) {
      const int64_t off = i * cg * sp, len = cg * sp;
      double m = 0, v = 0;
      for (int64_t k = 0; k < len; ++k) m += xv[static_cast<size_t>(off + k)];
      m /= static_cast<double>(len);
      for (int64_t k = 0; k < len; ++k) v += std::pow(xv[static_cast<size_t>(off + k)] - m, 2);
      const double r = 1 / std::sqrt(v / static_cast<double>(len) + eps);
      for (int64_t k = 0; k < len; ++k) {
        const size_t ch = static_cast<size_t>((i % g) * cg + k / sp);
        ref[static_cast<size_t>(off + k)] = round_to((xv[static_cast<size_t>(off + k)] - m) * r * wv[ch] + bv[ch], c.dt);
      }
    }
  } else {
    const int64_t rows = h == 0 ? 0 : static_cast<int64_t>(xv.size()) / h;
    for (int64_t r = 0; r < rows; ++r) {
      const double* row = xv.data() + r * h;
      double m = 0, ss = 0;
      for (int64_t k = 0; k < h; ++k) m += row[k], ss += row[k] * row[k];
      m /= static_cast<double>(h);
      double var = 0;
      for (int64_t k = 0; k < h; ++k) var += (row[k] - m) * (row[k] - m);
      var /= static_cast<double>(h);
      for (int64_t k = 0; k < h; ++k) {
        const size_t kk = static_cast<size_t>(k);
        const double y = c.op == N::layer ? (row[k] - m) / std::sqrt(var + eps) * wv[kk] + bv[kk]
                                          : row[k] / std::sqrt(ss / static_cast<double>(h) + eps) * wv[kk];
        ref[static_cast<size_t>(r * h + k)] = round_to(y, c.dt);
      }
    }
  }
  expect_close(got, ref, default_tol(c.dt) * 2, what);
}

std::vector<NCase> norm_cases() {
  std::vector<NCase> v;
  for (Device d : test_devices())
    for (N op : {N::rms, N::layer, N::group, N::add_rms})
      for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
        const size_t first = v.size();
        v.push_back({d, op, t, t, {4, 37}, Layout::contiguous, true});
        v.push_back({d, op, t, DType::count_, {3, 5, 24}, Layout::contiguous, false});
        if (t != DType::f32) v.push_back({d, op, t, DType::f32, {2, 6, 19}, Layout::contiguous, true});
        if (op != N::group) {
          v.push_back({d, op, t, t, {6, 18}, Layout::transposed, true});
          v.push_back({d, op, t, t, {5, 4, 10}, Layout::strided, false});
        }
        if (t == DType::f32) {
          v.push_back({d, op, t, t, {3, 4, 5, 3}, Layout::broadcast, false});
          v.push_back({d, op, t, t, {0, 8}, Layout::contiguous, false});
          v.push_back({d, op, t, t, {2, 1}, Layout::contiguous, false});
          v.push_back({d, op, t, t, {3, 20001}, Layout::contiguous, true});
        }
        // LLM rows, sized to select each CUDA path (norm.cu's norm_launch; FLAGOS_CUDA_NORM_PATH
        // forces one): many 16-bit rows -> a block per row (193 vectors: threads with one vector
        // fewer; rows not a multiple of the warp path's 4 rows per block), few -> a warp per row
        // (layer_norm) or block2, one row, odd widths (strided), row-strided views, f32 -> block.
        if (op != N::group && t != DType::f64) {
          v.push_back({d, op, t, t, {1061, 1544}, Layout::contiguous, false});
          v.push_back({d, op, t, DType::f32, {37, 3584}, Layout::contiguous, true});
          v.push_back({d, op, t, t, {1, 3584}, Layout::contiguous, true});
          v.push_back({d, op, t, t, {5, 3585}, Layout::contiguous, false});
          v.push_back({d, op, t, t, {603, 1544}, Layout::contiguous, true, true});
          v.push_back({d, op, t, DType::count_, {9, 2056}, Layout::contiguous, false, true});
        }
        if (op == N::group)  // 2 groups: make the channel count even
          for (size_t i = first; i < v.size(); ++i)
            if (v[i].shape[1] % 2) v[i].shape[1] += 1;
      }
  return v;
}

std::string norm_name(const ::testing::TestParamInfo<NCase>& i) {
  std::ostringstream os;
  const auto& c = i.param;
  os << device_tag(c.dev) << "_" << nname(c.op) << "_" << dtype_name(c.dt) << "_w"
     << (c.wdt == DType::count_ ? std::string("none") : std::string(dtype_name(c.wdt))) << "_" << c.shape << "_"
     << layout_name(c.layout) << (c.row_pad ? "_rowpad" : "") << (c.use_out ? "_out" : "") << "_" << i.index;
  return sanitize(os.str());
}

INSTANTIATE_TEST_SUITE_P(All, Norm, ::testing::ValuesIn(norm_cases()), norm_name);

// layer_norm of rows far from zero (mean 30, spread 1): E[x^2] - E[x]^2 in f32 would lose ~3e-4 of the
// variance to cancellation; the kernels' merged (count, mean, squared deviations) must not. Shapes pick
// the CUDA block/warp, block2 and long-row paths; rows whose first element is an outlier take the
// kernels' exact second pass.
TEST(NormStability, LayerNormRowsFarFromZero) {
  auto rng = rng_for_current_test();
  const double eps = 1e-5;
  for (Device d : test_devices())
    for (DType t : {DType::f32, DType::bf16})
      for (const Shape& shape : {Shape{37, 3584}, Shape{1061, 1544}, Shape{1, 3584}, Shape{3, 20001}}) {
        const Range r = t == DType::f32 ? Range{29, 31} : Range{28, 32};
        // every third row starts with an outlier (-1000): the kernels' shifted sums must fall back
        Tensor xh = make_input(shape, DType::f32, Device::cpu(), rng, r);
        for (int64_t i = 0; i < shape[0]; i += 3) xh.data_as<float>()[i * shape[1]] = -1000.0f;
        const Tensor x = ops::cast(xh, t).to(d);
        const int64_t h = shape[1];
        const Tensor w = make_input({h}, t, d, rng, {0.5, 1.5}), b = make_input({h}, t, d, rng, {-1, 1});
        const Tensor got = ops::layer_norm(x, w, b, eps, poisoned(shape, t, d));
        const auto xv = to_f64(x), wv = to_f64(w), bv = to_f64(b);
        std::vector<double> ref(xv.size());
        for (int64_t i = 0; i < shape[0]; ++i) {
          const double* row = xv.data() + i * h;
          double m = 0, var = 0;
          for (int64_t k = 0; k < h; ++k) m += row[k];
          m /= static_cast<double>(h);
          for (int64_t k = 0; k < h; ++k) var += (row[k] - m) * (row[k] - m);
          var /= static_cast<double>(h);
          for (int64_t k = 0; k < h; ++k) {
            const size_t kk = static_cast<size_t>(k);
            ref[static_cast<size_t>(i * h + k)] = round_to((row[k] - m) / std::sqrt(var + eps) * wv[kk] + bv[kk], t);
          }
        }
        std::ostringstream what;
        what << "layer_norm rows near 30 " << dtype_name(t) << " " << shape << " on " << device_tag(d);
        expect_close(got, ref, default_tol(t) * 2, what.str());
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

TEST(NormErrors, NameTheOp) {
  Tensor x = ops::zeros({3, 8});
  expect_names_op([&] { ops::rms_norm(x, ops::ones({7})); }, "rms_norm");
  expect_names_op([&] { ops::rms_norm(x, ops::ones({8}, DType::f16)); }, "rms_norm");
  expect_names_op([&] { ops::rms_norm(ops::zeros({3, 8}, DType::i32), {}); }, "rms_norm");
  expect_names_op([&] { ops::rms_norm(ops::scalar(1.0), {}); }, "rms_norm");
  expect_names_op([&] { ops::layer_norm(x, ops::ones({8}), ops::ones({8}, DType::f64)); }, "layer_norm");
  expect_names_op([&] { ops::layer_norm(x, {}, {}, 1e-5, ops::zeros({3, 7})); }, "layer_norm");
  expect_names_op([&] { ops::group_norm(ops::zeros({2, 6, 4}), 4, {}, {}); }, "group_norm");
  expect_names_op([&] { ops::group_norm(ops::zeros({6}), 2, {}, {}); }, "group_norm");
  Tensor res = ops::zeros({3, 8});
  expect_names_op([&] { ops::add_rms_norm(x, res, {}, 1e-6, res); }, "add_rms_norm");
  Tensor r2 = ops::zeros({3, 7});
  expect_names_op([&] { ops::add_rms_norm(x, r2, {}); }, "add_rms_norm");
  expect_names_op([&] { ops::add_rms_norm(x, x, {}); }, "add_rms_norm");
}

}  // namespace
}  // namespace flagos::test
