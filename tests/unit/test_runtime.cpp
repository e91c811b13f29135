// Runtime: dtypes, conversions, shapes, views, registry, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "flagos/backend.h"
#include "flagos/graph.h"
#include "flagos/kernel.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"

using namespace flagos;

TEST(DType, PromotionRules) {
  EXPECT_EQ(promote_types(DType::f16, DType::bf16), DType::f32);
  EXPECT_EQ(promote_types(DType::i32, DType::f16), DType::f16);
  EXPECT_EQ(promote_types(DType::u8, DType::i8), DType::i16);
  EXPECT_EQ(promote_types(DType::boolean, DType::u8), DType::u8);
  EXPECT_EQ(promote_types(DType::i64, DType::f64), DType::f64);
  EXPECT_EQ(promote_types(DType::i32, DType::i64), DType::i64);
  EXPECT_THROW(promote_types(DType::q4_k, DType::f32), InvalidArgument);
  EXPECT_THROW(dtype_from_name("f33"), InvalidArgument);
  EXPECT_EQ(dtype_from_name("q6_k"), DType::q6_k);
}

// f32 -> f16 must round to nearest even on every f16 boundary; check all 65536 f16 values
// round-trip and midpoints between neighbours round to the even one.
TEST(DType, F16ConversionExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "round trip of f16 bits " << h;
    const uint32_t next = h + 1;
    if ((h & 0x7fff) >= 0x7bff || (h & 0x7fff) == 0x7fff) continue;  // skip max finite / inf
    const float g = f16_to_f32(static_cast<uint16_t>(next));
    const double mid = (static_cast<double>(f) + g) / 2;
    const float midf = static_cast<float>(mid);
    if (static_cast<double>(midf) != mid) continue;  // not representable exactly in f32
    const uint16_t expect = (h & 1) ? static_cast<uint16_t>(next) : static_cast<uint16_t>(h);
    ASSERT_EQ(f32_to_f16(midf), expect) << "tie between " << h << " and " << next;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(-1e-9f), 0x8000);
}

TEST(DType, Bf16Conversion) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0)
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::empty({4, 6}, DType::f32);
  float* p = t.data_as<float>();
  for (int i = 0; i < 24; ++i) p[i] = static_cast<float>(i);
  Tensor tr = t.transpose(0, 1);
  EXPECT_EQ(tr.shape(), (Shape{6, 4}));
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.contiguous().to_vector<float>()[1], 6.0f);
  Tensor s = t.slice(1, 1, 6, 2);  // columns 1, 3, 5
  EXPECT_EQ(s.shape(), (Shape{4, 3}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  Tensor sel = t.select(0, -1);
  EXPECT_EQ(sel.to_vector<float>()[0], 18.0f);
  Tensor e = t.select(1, 0).unsqueeze(1).expand({4, 5});
  EXPECT_EQ(e.stride(1), 0);
  EXPECT_EQ(e.contiguous().to_vector<float>()[6], 6.0f);
  EXPECT_EQ(t.view({2, 12}).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.view({-1, 3}).shape(), (Shape{8, 3}));
  EXPECT_THROW(tr.view({24}), InvalidArgument);
  Tensor r = tr.reshape({24});
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(r.to_vector<float>()[1], 6.0f);
  // a view of a sliced tensor that keeps strides
  Tensor rows = t.slice(0, 0, 4, 2);  // rows 0, 2
  EXPECT_EQ(rows.view({2, 2, 3}).stride(0), 48);
  Tensor perm = Tensor::empty({2, 3, 4}, DType::f32).permute({2, 0, 1});
  EXPECT_EQ(perm.shape(), (Shape{4, 2, 3}));
  EXPECT_THROW(t.permute({0, 0}), InvalidArgument);
  EXPECT_THROW(t.select(0, 4), InvalidArgument);
  EXPECT_THROW(t.narrow(1, 4, 3), InvalidArgument);
  EXPECT_THROW(t.as_strided({4, 7}, {24, 4}, 0), InvalidArgument);
  EXPECT_THROW(t.expand({4, 7}), InvalidArgument);
}

TEST(Tensor, QuantizedShapes) {
  Tensor q = Tensor::empty({3, 512}, DType::q4_k);
  EXPECT_EQ(q.nbytes(), 3u * 2u * 144u);
  EXPECT_TRUE(q.is_contiguous());
  EXPECT_EQ(q.slice(0, 1, 3).offset(), 288);
  EXPECT_THROW(Tensor::empty({3, 100}, DType::q8_0), InvalidArgument);
  EXPECT_THROW(q.transpose(0, 1), InvalidArgument);
  EXPECT_EQ(q.view({3, 1, 512}).shape(), (Shape{3, 1, 512}));
}

TEST(Tensor, OverflowAndBadShapes) {
  EXPECT_THROW(Tensor::empty({int64_t{1} << 40, int64_t{1} << 40}, DType::f32), InvalidArgument);
  EXPECT_THROW(Tensor::empty({-1}, DType::f32), InvalidArgument);
  EXPECT_THROW(Tensor::empty({1, 1, 1, 1, 1, 1, 1, 1, 1}, DType::f32), InvalidArgument);
}

TEST(Registry, CpuBackendPresentAndErrorsNameOp) {
  ASSERT_GE(backend_count(), 1);
  EXPECT_EQ(backend(0).name(), "cpu");
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_THROW(parse_device("cpu:3"), InvalidArgument);
  try {
    parse_device("tpu");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos);
  }
  const int op = kernels().find_op("add");
  ASSERT_GE(op, 0);
  try {
    kernels().get(static_cast<uint16_t>(op), 0, KernelKey{DType::q4_k});
    FAIL();
  } catch (const NotSupported& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos);
    EXPECT_NE(m.find("q4_k"), std::string::npos);
    EXPECT_NE(m.find("cpu"), std::string::npos);
  }
}

TEST(Runtime, StreamsEventsOnCpu) {
  const Device cpu = Device::cpu();
  OwnedStream s(cpu);
  {
    StreamGuard g(s);
    EXPECT_EQ(current_stream(cpu).device(), cpu);
  }
  Event a(cpu), b(cpu);
  a.record(s);
  b.record(s);
  b.synchronize();
  EXPECT_GE(b.elapsed_ms_since(a), 0.0f);
  EXPECT_THROW(backend(0).begin_capture(0, nullptr), NotSupported);
  EXPECT_TRUE(Tensor::empty({2}, DType::f32).is_host_accessible());
}

TEST(Runtime, GraphsAreNotSupportedOnCpu) {
  EXPECT_FALSE(Graph::supported(Device::cpu()));
  bool ran = false;
  EXPECT_THROW(Graph::capture(Device::cpu(), [&] { ran = true; }), NotSupported);
  EXPECT_FALSE(ran) << "work ran although the capture could not begin";
  Graph g;
  EXPECT_FALSE(g.valid());
  EXPECT_THROW(g.replay(), InvalidArgument);
}

TEST(Runtime, CrossDeviceCopyKeepsValuesAndStrides) {
  // copy_from between two host tensors with different layouts goes through copy_strided.
  Tensor src = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  Tensor dst = Tensor::empty({3, 2}, DType::f32).transpose(0, 1);
  dst.copy_from(src);
  EXPECT_EQ(dst.contiguous().to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(dst.copy_from(Tensor::empty({3, 2}, DType::f32)), InvalidArgument);
}
