// Conformance: GGUF block quantization. Dequantization of every type is bit-identical to the
// gguf Python package; quantization of q8_0/q4_0/q4_1/q5_0/q5_1 is byte-identical to it
// (fixtures from scripts/gen_quant_fixtures.py). k-quant quantization (the ggml reference
// algorithm; gguf has none) is checked by error bounds and stability.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "harness.h"

namespace flagos::test {
namespace {

const DType kQuant[] = {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0,
                        DType::q5_1, DType::q4_k, DType::q5_k, DType::q6_k};
const DType kSimple[] = {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1};

std::vector<char> read_fixture(const std::string& name) {
  const std::string path = std::string(FLAGOS_FIXTURES_DIR) + "/quant/" + name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << path << " (run scripts/gen_quant_fixtures.py)";
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
std::vector<float> as_floats(const std::vector<char>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}
std::vector<uint8_t> bytes_of(const Tensor& t) {
  const Tensor h = t.contiguous().to(Device::cpu());
  std::vector<uint8_t> v(h.nbytes());
  std::memcpy(v.data(), h.data(), v.size());
  return v;
}
Tensor quant_from_bytes(const std::vector<char>& b, const Shape& shape, DType t, Device dev) {
  Tensor h = Tensor::empty(shape, t, Device::cpu());
  EXPECT_EQ(h.nbytes(), b.size());
  std::memcpy(h.data(), b.data(), std::min(h.nbytes(), b.size()));
  return h.to(dev);
}
double rel_rms(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

struct QCase {
  Device dev;
  DType t;
};
std::vector<QCase> qcases(bool simple_only) {
  std::vector<QCase> v;
  for (Device d : test_devices())
    for (DType t : kQuant)
      if (!simple_only || std::find(std::begin(kSimple), std::end(kSimple), t) != std::end(kSimple)) v.push_back({d, t});
  return v;
}
std::string qname(const ::testing::TestParamInfo<QCase>& i) {
  return sanitize(device_tag(i.param.dev) + "_" + std::string(dtype_name(i.param.t)));
}

class QuantFixture : public ::testing::TestWithParam<QCase> {};

TEST_P(QuantFixture, DequantizeBitIdenticalToGguf) {
  const auto [dev, t] = GetParam();
  const std::string n(dtype_name(t));
  const std::vector<float> ref = as_floats(read_fixture(n + ".deq.f32"));
  const int64_t be = dtype_info(t).block_elems;
  const int64_t nblocks = static_cast<int64_t>(ref.size()) / be;
  ASSERT_GT(nblocks, 0);
  // As one row, and as a [rows, 2 blocks] matrix.
  for (const Shape& s : {Shape{nblocks * be}, Shape{nblocks / 2, 2 * be}}) {
    const Tensor q = quant_from_bytes(read_fixture(n + ".blocks.bin"), s, t, dev);
    const Tensor y = ops::dequantize(q, DType::f32);
    ASSERT_EQ(y.shape(), s);
    const std::vector<float> got = y.to_vector<float>();
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      if (std::memcmp(&got[i], &ref[i], 4) != 0 && bad++ < 5)
        ADD_FAILURE() << n << " element " << i << ": got " << got[i] << ", gguf " << ref[i];
    EXPECT_EQ(bad, 0u) << n << " mismatching elements (seed " << base_seed() << ")";
    // f16/bf16 outputs are the f32 values rounded once.
    for (DType od : {DType::f16, DType::bf16}) {
      std::vector<double> r(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) r[i] = round_to(ref[i], od);
      expect_exact(ops::dequantize(q, od), r, "dequantize " + n + " -> " + std::string(dtype_name(od)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, QuantFixture, ::testing::ValuesIn(qcases(false)), qname);

class QuantizeFixture : public ::testing::TestWithParam<QCase> {};

TEST_P(QuantizeFixture, BytesIdenticalToGguf) {
  const auto [dev, t] = GetParam();
  const std::string n(dtype_name(t));
  const std::vector<float> x = as_floats(read_fixture("quant_input.f32"));
  ASSERT_EQ(x.size(), 8u * 256u);
  const Tensor xt = Tensor::from_vector(x, {8, 256}, DType::f32).to(dev);
  const std::vector<char> ref = read_fixture(n + ".quant.bin");
  const std::vector<uint8_t> got = bytes_of(ops::quantize(xt, t));
  ASSERT_EQ(got.size(), ref.size());
  const size_t bb = dtype_info(t).block_bytes;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != static_cast<uint8_t>(ref[i]) && bad++ < 5)
      ADD_FAILURE() << n << " byte " << i << " (block " << i / bb << ", offset " << i % bb << "): got "
                    << int(got[i]) << ", gguf " << int(static_cast<uint8_t>(ref[i]));
  EXPECT_EQ(bad, 0u);
  // A transposed (non-contiguous) input quantizes the same values.
  const Tensor xtt = Tensor::from_vector(x, {8, 256}, DType::f32).transpose(0, 1).contiguous().transpose(0, 1).to(dev);
  EXPECT_EQ(bytes_of(ops::quantize(xtt, t)), got);
}

INSTANTIATE_TEST_SUITE_P(All, QuantizeFixture, ::testing::ValuesIn(qcases(true)), qname);

class QuantRoundTrip : public ::testing::TestWithParam<QCase> {};

double rms_bound(DType t) {
  switch (t) {
    case DType::q8_0: return 0.01;
    case DType::q4_0: case DType::q4_1: return 0.12;
    case DType::q5_0: case DType::q5_1: return 0.06;
    case DType::q4_k: return 0.1;
    case DType::q5_k: return 0.05;
    case DType::q6_k: return 0.03;
    default: return 0;
  }
}

TEST_P(QuantRoundTrip, ErrorBoundsAndStability) {
  const auto [dev, t] = GetParam();
  const std::string n(dtype_name(t));
  auto rng = rng_for_current_test();
  std::normal_distribution<double> g(0.0, 1.0);
  const int64_t rows = 6, K = 1024;
  std::vector<float> xv(static_cast<size_t>(rows * K));
  for (auto& v : xv) v = static_cast<float>(g(rng));
  for (int64_t i = 0; i < 256; ++i) xv[static_cast<size_t>(K + i)] = 0.f;  // a zero super-block
  for (int64_t i = 0; i < K; ++i) xv[static_cast<size_t>(2 * K + i)] *= 1e-3f;   // a small-scale row
  const Tensor x = Tensor::from_vector(xv, {rows, K}, DType::f32).to(dev);
  const Tensor q = ops::quantize(x, t);
  EXPECT_EQ(q.dtype(), t);
  EXPECT_EQ(q.shape(), x.shape());
  const std::vector<double> xd(xv.begin(), xv.end());
  const std::vector<double> y1 = to_f64(q);
  const double err = rel_rms(y1, xd);
  EXPECT_LT(err, rms_bound(t)) << n << " relative RMS error";
  for (int64_t i = 0; i < 256; ++i) EXPECT_EQ(y1[static_cast<size_t>(K + i)], 0.0) << n << " zero block, element " << i;
  std::vector<double> row(y1.begin() + 2 * K, y1.begin() + 3 * K), xrow(xd.begin() + 2 * K, xd.begin() + 3 * K);
  EXPECT_LT(rel_rms(row, xrow), rms_bound(t)) << n << " small-scale row";
  // Re-quantizing dequantized values moves them by much less than the first quantization.
  const std::vector<double> y2 = to_f64(ops::quantize(ops::dequantize(q), t));
  EXPECT_LT(rel_rms(y2, y1), 0.5 * err) << n << " requantization drift";
}

TEST_P(QuantRoundTrip, StridedAndEmptyInputs) {
  const auto [dev, t] = GetParam();
  auto rng = rng_for_current_test();
  const int64_t be = dtype_info(t).block_elems;
  const Tensor x = make_input({5, 2 * be}, DType::f32, dev, rng);
  const Tensor q = ops::quantize(x, t);
  // A row-strided view of a quantized tensor dequantizes to the same rows.
  const Tensor qs = q.slice(0, 1, 5, 2);
  const std::vector<double> all = to_f64(q), part = to_f64(qs);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2 * be; ++c)
      EXPECT_EQ(part[static_cast<size_t>(r * 2 * be + c)], all[static_cast<size_t>((1 + 2 * r) * 2 * be + c)]);
  // f16 / bf16 inputs quantize their f32 values.
  const Tensor xh = ops::cast(x, DType::bf16);
  EXPECT_EQ(bytes_of(ops::quantize(xh, t)), bytes_of(ops::quantize(ops::cast(xh, DType::f32), t)));
  EXPECT_EQ(ops::quantize(Tensor::empty({0, be}, DType::f32, dev), t).numel(), 0);
  EXPECT_EQ(ops::dequantize(Tensor::empty({0, be}, t, dev)).numel(), 0);
}

INSTANTIATE_TEST_SUITE_P(All, QuantRoundTrip, ::testing::ValuesIn(qcases(false)), qname);

// CPU linear with a quantized weight and 2..64 activation rows decodes each weight row once and
// dots it with several rows at a time; every output must match the one-row call (fused decode +
// dot), for every remainder of the row blocking (M = 5, 6, 7, 8, 13). Bit-identical with GCC 12 on
// AVX2 here; another compiler/CPU (GCC 13 on the GPU machine) differed in the last bits once.
TEST(QuantLinear, CpuBatchedRowsMatchSingleRow) {
  auto rng = rng_for_current_test();
  const Device dev = Device::cpu();
  const int64_t K = 512, N = 37;
  for (DType t : kQuant) {
    const Tensor w = ops::quantize(make_input({N, K}, DType::f32, dev, rng), t);
    for (int64_t M : {5, 6, 7, 8, 13}) {
      const Tensor x = make_input({M, K}, DType::f32, dev, rng);
      Tensor y = poisoned({M, N}, DType::f32, dev);
      ops::linear(x, w, Tensor(), y);
      const std::vector<double> all = to_f64(y);
      for (int64_t m = 0; m < M; ++m) {
        const std::vector<double> one = to_f64(ops::linear(x.narrow(0, m, 1).contiguous(), w));
        // Same int8 arithmetic; only the order of a few f32 additions may differ between
        // compilers/ISAs, so the rows agree to ~1e-6 of their largest value (an indexing or
        // remainder-row bug is off by O(1)).
        double scale = 0;
        for (int64_t n = 0; n < N; ++n) scale = std::max(scale, std::abs(one[static_cast<size_t>(n)]));
        for (int64_t n = 0; n < N; ++n) {
          const double a = all[static_cast<size_t>(m * N + n)], b = one[static_cast<size_t>(n)];
          ASSERT_TRUE(std::isfinite(a) && std::abs(a - b) <= 2e-6 * scale)
              << dtype_name(t) << " M " << M << " row " << m << " col " << n << ": " << a << " vs one-row " << b;
        }
      }
    }
  }
}

// Values on a type's grid survive quantization exactly (simple types with a fixed scale).
TEST(QuantGrid, ExactRoundTrip) {
  for (Device dev : test_devices()) {
    std::vector<float> q8(32), q4(32), q5(32);
    for (int i = 0; i < 32; ++i) {
      q8[static_cast<size_t>(i)] = static_cast<float>((i * 37) % 255 - 127);
      q4[static_cast<size_t>(i)] = static_cast<float>(i % 16 - 8);
      q5[static_cast<size_t>(i)] = static_cast<float>(i - 16);
    }
    q8[3] = -127;
    for (auto [t, v] : {std::pair{DType::q8_0, q8}, {DType::q4_0, q4}, {DType::q5_0, q5}, {DType::q4_1, q4},
                        {DType::q5_1, q5}}) {
      const Tensor x = Tensor::from_vector(v, {32}, DType::f32).to(dev);
      expect_exact(ops::dequantize(ops::quantize(x, t)), std::vector<double>(v.begin(), v.end()),
                   "grid round trip " + std::string(dtype_name(t)));
    }
  }
}

TEST(QuantErrors, InvalidArguments) {
  for (Device dev : test_devices()) {
    const Tensor x = ops::zeros({2, 48}, DType::f32, dev);
    auto expect_invalid = [](auto&& f, const char* op) {
      try {
        f();
        ADD_FAILURE() << op << ": no error";
      } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
      }
    };
    expect_invalid([&] { ops::quantize(x, DType::q8_0); }, "quantize");  // 48 % 32 != 0
    expect_invalid([&] { ops::quantize(ops::zeros({2, 128}, DType::f32, dev), DType::q4_k); }, "quantize");
    expect_invalid([&] { ops::quantize(x, DType::f16); }, "quantize");
    expect_invalid([&] { ops::quantize(ops::zeros({32}, DType::i32, dev), DType::q8_0); }, "quantize");
    expect_invalid([&] { ops::dequantize(x); }, "dequantize");
    expect_invalid([&] { ops::dequantize(ops::quantize(ops::zeros({32}, DType::f32, dev), DType::q8_0), DType::i32); },
                   "dequantize");
  }
}

}  // namespace
}  // namespace flagos::test
