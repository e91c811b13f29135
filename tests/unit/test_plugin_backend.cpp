// Loads tests/plugin/fake_backend.cpp (a shared library) through load_backend_library and
// checks that tensors, copies across devices, streams, kernel dispatch and NotSupported errors
// work for a backend that is not the CPU.
#include <gtest/gtest.h>

#include "flagos/backend.h"
#include "flagos/ops.h"

using namespace flagos;

namespace {
Device fake_device(int index) {
  static const int id = [] {
    const int existing = find_backend("fake");
    return existing >= 0 ? existing : static_cast<int>(load_backend_library(FLAGOS_FAKE_BACKEND_PATH));
  }();
  return Device{static_cast<uint16_t>(id), static_cast<int16_t>(index)};
}
}  // namespace

TEST(PluginBackend, LoadsAndMovesData) {
  const Device f1 = fake_device(1);
  EXPECT_EQ(to_string(f1), "fake:1");
  EXPECT_EQ(parse_device("fake:1"), f1);
  EXPECT_THROW(parse_device("fake:2"), InvalidArgument);
  Tensor h = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  Tensor d = h.to(f1);
  EXPECT_EQ(d.device(), f1);
  EXPECT_FALSE(d.is_host_accessible());
  // a transposed device view comes back in logical order
  EXPECT_EQ(d.transpose(0, 1).to(Device::cpu()).contiguous().to_vector<float>(),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // device -> other device of the same backend, and a cross-backend strided destination
  Tensor d0 = d.to(fake_device(0));
  EXPECT_EQ(d0.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(PluginBackend, DispatchesItsKernelsAndNamesMissingOnes) {
  const Device f = fake_device(0);
  Tensor t = ops::full({4}, 2.5, DType::f32, f);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{2.5, 2.5, 2.5, 2.5}));
  try {
    ops::add(t, t);
    FAIL() << "add has no kernel on the fake backend";
  } catch (const NotSupported& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("fake"), std::string::npos) << m;
  }
  // mixing devices in one op is an error naming both devices
  Tensor c = ops::full({4}, 1.0);
  EXPECT_THROW(ops::add(t, c), InvalidArgument);
  EXPECT_THROW(ops::full({4}, 1.0, DType::f16, f), NotSupported);
}

TEST(PluginBackend, StreamsAndEvents) {
  const Device f = fake_device(0);
  OwnedStream s(f);
  StreamGuard g(s);
  EXPECT_EQ(current_stream(f).handle(), s.get().handle());
  Event a(f), b(f);
  a.record(s);
  b.record(s);
  b.synchronize();
  EXPECT_GE(b.elapsed_ms_since(a), 0.0f);
}
