// A minimal out-of-tree backend, built as a shared library and loaded at run time by the unit
// tests: a "device" with its own (host-allocated but not host-accessible) memory, two devices,
// and one kernel (fill f32). It proves the backend interface and the plugin path work for
// something that is not the CPU backend.
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "flagos/backend.h"
#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace {

using namespace flagos;

void strided_copy(const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  const size_t es = dst.itemsize();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, od = 0, os = 0;
    for (int d = dst.dim() - 1; d >= 0; --d) {
      const int64_t c = rem % dst.size(d);
      rem /= dst.size(d);
      od += c * dst.stride(d);
      os += c * src.stride(d);
    }
    std::memcpy(static_cast<char*>(dst.data()) + od, static_cast<const char*>(src.data()) + os, es);
  }
}

void fill_f32(const KernelArgs& a) {
  Tensor& t = *a.out[0];
  const float v = static_cast<float>(a.p<ScalarParams>().a);
  Tensor flat = t;  // the fake device only supports contiguous fills
  FLAGOS_CHECK(t.is_contiguous(), "fake fill: contiguous only");
  for (int64_t i = 0; i < flat.numel(); ++i) flat.data_as<float>()[i] = v;
}

class FakeBackend final : public Backend {
 public:
  std::string_view name() const override { return "fake"; }
  int device_count() override { return 2; }
  DeviceProps device_props(int) override {
    DeviceProps p;
    p.name = "fake accelerator";
    p.total_memory = size_t{1} << 30;
    p.free_memory = p.total_memory - used_;
    p.compute_units = 1;
    p.async_streams = true;
    return p;
  }
  void register_kernels(KernelRegistry& reg, uint16_t id) override { reg.add("fill", id, KernelKey{DType::f32}, &fill_f32); }
  void* alloc(int, size_t bytes) override {
    if (bytes > (size_t{1} << 30) - used_) fail<OutOfMemory>("fake: cannot allocate ", bytes, " bytes");
    used_ += bytes;
    return std::calloc(1, bytes ? bytes : 1);
  }
  void free(int, void* p) override { std::free(p); }
  void copy_to_device(int, void* d, const void* s, size_t n, StreamHandle) override { std::memcpy(d, s, n); }
  void copy_to_host(int, void* d, const void* s, size_t n, StreamHandle) override { std::memcpy(d, s, n); }
  void copy_on_device(int, void* d, const void* s, size_t n, StreamHandle) override { std::memcpy(d, s, n); }
  void copy_strided(const Tensor& d, const Tensor& s, StreamHandle) override { strided_copy(d, s); }
  void memset(int, void* d, int v, size_t n, StreamHandle) override { std::memset(d, v, n); }
  StreamHandle default_stream(int) override { return &streams_[0]; }
  StreamHandle create_stream(int) override { return new int(1); }
  void destroy_stream(int, StreamHandle s) override {
    if (s != &streams_[0]) delete static_cast<int*>(s);
  }
  void synchronize_stream(int, StreamHandle) override {}
  void synchronize_device(int) override {}
  EventHandle create_event(int, bool) override { return new std::chrono::steady_clock::time_point; }
  void destroy_event(int, EventHandle e) override { delete static_cast<std::chrono::steady_clock::time_point*>(e); }
  void record_event(int, EventHandle e, StreamHandle) override {
    *static_cast<std::chrono::steady_clock::time_point*>(e) = std::chrono::steady_clock::now();
  }
  void stream_wait_event(int, StreamHandle, EventHandle) override {}
  void synchronize_event(int, EventHandle) override {}
  float elapsed_ms(int, EventHandle a, EventHandle b) override {
    using TP = std::chrono::steady_clock::time_point;
    return std::chrono::duration<float, std::milli>(*static_cast<TP*>(b) - *static_cast<TP*>(a)).count();
  }

 private:
  size_t used_ = 0;
  int streams_[1] = {0};
};

}  // namespace

extern "C" flagos::Backend* flagos_create_backend() { return new FakeBackend; }
