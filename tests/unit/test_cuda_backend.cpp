// The CUDA backend through the backend interface: registration without a GPU, the caching
// allocator (reuse, release_cached, the out-of-memory message, stream-ordered reuse across
// streams), copies, events and graph capture/replay. Cases that need a GPU skip without one.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "flagos/backend.h"
#include "flagos/graph.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"

using namespace flagos;

namespace {

using cudatest::cuda_id;
using cudatest::cuda0;



}  // namespace

TEST(CudaBackend, RegistersEvenWithoutADevice) {
  if (cuda_id() < 0) GTEST_SKIP() << "built without the CUDA backend";
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  EXPECT_EQ(b.name(), "cuda");
  const int n = b.device_count();
  EXPECT_GE(n, 0);
  if (n == 0) {
    try {
      parse_device("cuda:0");
      ADD_FAILURE() << "parse_device(cuda:0) succeeded without a device";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("0 device"), std::string::npos) << e.what();
    }
  } else {
    const DeviceProps p = b.device_props(0);
    EXPECT_FALSE(p.name.empty());
    EXPECT_GT(p.total_memory, 0u);
    EXPECT_GT(p.compute_units, 0);
    EXPECT_FALSE(p.host_accessible);
    EXPECT_TRUE(p.async_streams);
    EXPECT_NE(p.capabilities.find("sm_"), std::string::npos) << p.capabilities;
  }
}

TEST(CudaAllocator, ReusesFreedBlocksAndReleasesThem) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  b.synchronize_device(0);
  b.release_cached(0);
  EXPECT_EQ(b.cached_bytes(0), 0u);
  void* p = b.alloc(0, 3 << 20);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  b.free(0, p);
  EXPECT_GE(b.cached_bytes(0), size_t{3} << 20);
  void* q = b.alloc(0, (3 << 20) - 100);  // same size class, same (default) stream: the same block
  EXPECT_EQ(q, p);
  EXPECT_EQ(b.cached_bytes(0), 0u);
  b.free(0, q);
  b.release_cached(0);
  EXPECT_EQ(b.cached_bytes(0), 0u);
  // Many small blocks come back from the cache.
  std::vector<void*> v;
  for (int i = 0; i < 64; ++i) v.push_back(b.alloc(0, 1000 + 37 * static_cast<size_t>(i)));
  for (void* x : v) b.free(0, x);
  const size_t cached = b.cached_bytes(0);
  EXPECT_GT(cached, 0u);
  for (int i = 0; i < 64; ++i) v[static_cast<size_t>(i)] = b.alloc(0, 1000 + 37 * static_cast<size_t>(i));
  EXPECT_EQ(b.cached_bytes(0), 0u);
  for (void* x : v) b.free(0, x);
  b.release_cached(0);
}

TEST(CudaAllocator, OutOfMemoryNamesTheRequest) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  const size_t absurd = size_t{1} << 52;  // 4 PiB
  try {
    b.alloc(0, absurd);
    ADD_FAILURE() << "allocating 4 PiB succeeded";
  } catch (const OutOfMemory& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(std::to_string(absurd)), std::string::npos) << m;
    EXPECT_NE(m.find("free of"), std::string::npos) << m;
    EXPECT_NE(m.find("cached"), std::string::npos) << m;
  }
  // The device is still usable afterwards.
  Tensor t = ops::full({1000}, 2.5, DType::f32, cuda0());
  EXPECT_EQ(t.to_vector<float>()[999], 2.5f);
}

// A block freed on one stream while that stream still has queued work using it must not be
// overwritten by another stream that reuses it: the allocator makes the new stream wait.
TEST(CudaAllocator, CrossStreamReuseWaitsForTheOwner) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  b.synchronize_device(0);
  b.release_cached(0);
  const int64_t n = 1 << 22;
  OwnedStream sa(cuda0()), sb(cuda0());
  for (int round = 0; round < 3; ++round) {
    {
      StreamGuard g(sa);
      Tensor x = Tensor::empty({n}, DType::f32, cuda0());
      for (int k = 0; k < 50; ++k) ops::fill(x, 1.0);  // a long queue on stream a
    }  // x freed: its block is cached for stream a, with that work still queued
    Tensor y;
    {
      StreamGuard g(sb);
      y = Tensor::empty({n}, DType::f32, cuda0());  // takes a's block after waiting for a
      ops::fill(y, 2.0);
    }
    sa.get().synchronize();
    sb.get().synchronize();
    const std::vector<float> v = y.to_vector<float>();
    int64_t bad = 0;
    for (float f : v) bad += f != 2.0f;
    EXPECT_EQ(bad, 0) << "round " << round;
  }
}

TEST(CudaBackend, CopiesMemsetAndEvents) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  std::mt19937 rng(7);
  std::vector<uint8_t> host(1 << 20), back(1 << 20);
  for (auto& c : host) c = static_cast<uint8_t>(rng());
  void* d0 = b.alloc(0, host.size());
  void* d1 = b.alloc(0, host.size());
  b.copy_to_device(0, d0, host.data(), host.size(), nullptr);
  b.copy_on_device(0, d1, d0, host.size(), nullptr);
  b.copy_to_host(0, back.data(), d1, back.size(), nullptr);
  EXPECT_EQ(host, back);
  b.memset(0, d1, 0x5a, 1000, nullptr);
  b.copy_to_host(0, back.data(), d1, 2000, nullptr);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(back[static_cast<size_t>(i)], 0x5a) << i;
  for (int i = 1000; i < 2000; ++i) ASSERT_EQ(back[static_cast<size_t>(i)], host[static_cast<size_t>(i)]) << i;
  // Queued on a stream, ordered by an event into another stream.
  OwnedStream s1(cuda0()), s2(cuda0());
  Event e(cuda0(), true), start(cuda0(), true);
  start.record(s1);
  b.memset(0, d0, 0x11, host.size(), s1.get().handle());
  e.record(s1);
  e.wait(s2);
  b.copy_to_host(0, back.data(), d0, back.size(), s2.get().handle());
  s2.get().synchronize();
  for (size_t i = 0; i < back.size(); i += 4099) ASSERT_EQ(back[i], 0x11) << i;
  e.synchronize();
  EXPECT_GE(e.elapsed_ms_since(start), 0.0f);
  b.free(0, d0);
  b.free(0, d1);
}

TEST(CudaBackend, StridedCopiesAcrossDevices) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Tensor h = Tensor::empty({37, 53}, DType::f32);
  for (int64_t i = 0; i < h.numel(); ++i) h.data_as<float>()[i] = static_cast<float>(i) * 0.5f - 7.0f;
  Tensor d = h.to(cuda0());
  // A transposed, sliced view copied to a contiguous device tensor and back.
  Tensor v = d.transpose(0, 1).slice(0, 3, 50, 2);
  Tensor c = v.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  const std::vector<float> got = c.to_vector<float>();
  const Tensor hv = h.transpose(0, 1).slice(0, 3, 50, 2);
  const std::vector<float> want = hv.to_vector<float>();
  EXPECT_EQ(got, want);
  // Host data into a strided device view.
  Tensor dst = ops::zeros({53, 37}, DType::f32, cuda0());
  dst.transpose(0, 1).copy_from(h);
  EXPECT_EQ(dst.transpose(0, 1).to_vector<float>(), h.to_vector<float>());
}

// The runtime's Graph wrapper over the backend: capture, replay, move, and an exception inside
// the captured work (the capture is abandoned, the stream stays usable).
TEST(CudaBackend, GraphWrapper) {
  SKIP_WITHOUT_CUDA_DEVICE();
  ASSERT_TRUE(Graph::supported(cuda0()));
  OwnedStream s(cuda0());
  StreamGuard guard(s);
  Tensor x = ops::full({1000}, 2.0, DType::f32, cuda0());
  Tensor y;
  s.get().synchronize();
  Graph g = Graph::capture(cuda0(), [&] { y = ops::mul(x, 5.0); });
  ASSERT_TRUE(g.valid());
  Graph moved = std::move(g);
  EXPECT_FALSE(g.valid());
  for (int r = 1; r <= 2; ++r) {
    ops::fill(x, static_cast<double>(r));
    moved.replay();
    EXPECT_EQ(y.to_vector<float>().back(), 5.0f * static_cast<float>(r));
  }
  EXPECT_THROW(Graph::capture(cuda0(), [&] { throw InvalidArgument("stop"); }), InvalidArgument);
  EXPECT_EQ(ops::add(x, 1.0).to_vector<float>().front(), 3.0f) << "the stream is unusable after an abandoned capture";
}

TEST(CudaBackend, GraphCaptureAndReplay) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Backend& b = backend(static_cast<uint16_t>(cuda_id()));
  OwnedStream s(cuda0());
  StreamGuard g(s);
  Tensor x = ops::full({4096}, 1.0, DType::f32, cuda0());
  Tensor y = Tensor::empty({4096}, DType::f32, cuda0());
  s.get().synchronize();
  b.begin_capture(0, s.get().handle());
  {
    Tensor t = ops::mul(x, 3.0);  // a temporary allocated (and freed) inside the capture
    ops::add(t, x, y);
  }
  GraphHandle graph = b.end_capture(0, s.get().handle());
  ASSERT_NE(graph, nullptr);
  // Memory handed out after the capture must not alias the graph's temporary, which replays write.
  Tensor other = ops::full({4096}, -5.0, DType::f32, cuda0());
  for (int r = 1; r <= 3; ++r) {
    ops::fill(x, static_cast<double>(r));
    b.replay(0, graph, s.get().handle());
    s.get().synchronize();
    const std::vector<float> v = y.to_vector<float>();
    EXPECT_EQ(v.front(), 4.0f * static_cast<float>(r));
    EXPECT_EQ(v.back(), 4.0f * static_cast<float>(r));
    const std::vector<float> o = other.to_vector<float>();
    EXPECT_EQ(o.front(), -5.0f);
    EXPECT_EQ(o.back(), -5.0f);
  }
  b.destroy_graph(0, graph);
}
