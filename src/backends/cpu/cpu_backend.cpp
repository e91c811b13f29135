#include "backends/cpu/cpu_backend.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "backends/cpu/loops.h"
#include "backends/cpu/thread_pool.h"
#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/tensor.h"

namespace flagos::cpu {
namespace {

std::string pick_isa() {
  bool have_avx512 = false, have_avx2 = false;
#ifdef FLAGOS_HAVE_ISA_AVX512
  have_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
#endif
#ifdef FLAGOS_HAVE_ISA_AVX2
  have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
#endif
  bool have_generic = false;
#ifdef FLAGOS_HAVE_ISA_GENERIC
  have_generic = true;
#endif
  if (const char* e = std::getenv("FLAGOS_CPU_ISA")) {
    const std::string want = e;
    const bool ok = (want == "avx512" && have_avx512) || (want == "avx2" && have_avx2) ||
                    (want == "generic" && have_generic);
    if (!ok) fail<NotSupported>("FLAGOS_CPU_ISA=", want, ": not built into this binary or not supported by this CPU");
    return want;
  }
  if (have_avx512) return "avx512";
  if (have_avx2) return "avx2";
  if (have_generic) return "generic";
  fail<NotSupported>("this CPU supports none of the instruction sets flagos was built for (FLAGOS_CPU_ISAS)");
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "CPU";
}

// Caches large host blocks: a fresh multi-MiB allocation from glibc is a new mmap whose every
// page faults on first touch, which costs more than the memory-bound op that writes it. Blocks
// >= kMinCached are rounded to one of 8 size classes per power of two and reused by class; the
// cache holds at most a quarter of RAM (release_cached() empties it). Off under ASan, so
// use-after-free stays detectable, and with FLAGOS_CPU_CACHE=0.
class HostBlockCache {
 public:
  static constexpr size_t kMinCached = size_t{4} << 20;

  HostBlockCache() {
#if defined(__SANITIZE_ADDRESS__)
    enabled_ = false;
#endif
    if (const char* e = std::getenv("FLAGOS_CPU_CACHE")) enabled_ = std::strcmp(e, "0") != 0;
    limit_ = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGE_SIZE)) / 4;
  }
  ~HostBlockCache() { release(); }

  void* alloc(size_t bytes) {
    if (!enabled_ || bytes < kMinCached) return raw_alloc(bytes, bytes);
    const size_t cls = size_class(bytes);
    {
      std::lock_guard lk(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        live_[p] = cls;
        return p;
      }
    }
    void* p = raw_alloc(cls, bytes);
    std::lock_guard lk(mu_);
    live_[p] = cls;
    return p;
  }

  void free(void* p) {
    if (!p) return;
    if (enabled_) {
      std::lock_guard lk(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const size_t cls = it->second;
        live_.erase(it);
        if (cached_ + cls <= limit_) {
          free_[cls].push_back(p);
          cached_ += cls;
          return;
        }
      }
    }
    std::free(p);
  }

  size_t cached() {
    std::lock_guard lk(mu_);
    return cached_;
  }

  void release() {
    std::lock_guard lk(mu_);
    for (auto& [cls, v] : free_)
      for (void* p : v) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  static size_t size_class(size_t bytes) {
    const int lg = 63 - __builtin_clzll(bytes);
    const size_t step = size_t{1} << (lg - 3);
    return (bytes + step - 1) / step * step;
  }
  static void* raw_alloc(size_t rounded, size_t requested) {
    const size_t r = (rounded + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, r ? r : 64);
    if (!p) fail<OutOfMemory>("cpu: cannot allocate ", requested, " bytes (", requested >> 20, " MiB)");
    return p;
  }

  bool enabled_ = true;
  size_t limit_ = 0, cached_ = 0;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
};

struct CpuEvent {
  std::chrono::steady_clock::time_point t{};
};

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  int device_count() override { return 1; }
  DeviceProps device_props(int) override {
    DeviceProps p;
    p.name = cpu_model_name();
    const long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), ps = sysconf(_SC_PAGE_SIZE);
    p.total_memory = static_cast<size_t>(pages) * static_cast<size_t>(ps);
    p.free_memory = static_cast<size_t>(avail) * static_cast<size_t>(ps);
    p.compute_units = num_threads();
    p.host_accessible = true;
    p.async_streams = false;
    p.graphs = false;
    p.capabilities = "isa=" + active_isa();
    return p;
  }
  void register_kernels(KernelRegistry& reg, uint16_t id) override {
    register_portable_kernels(reg, id);
    const std::string& isa = active_isa();
    (void)isa;
#ifdef FLAGOS_HAVE_ISA_GENERIC
    if (isa == "generic") generic::register_simd_kernels(reg, id);
#endif
#ifdef FLAGOS_HAVE_ISA_AVX2
    if (isa == "avx2") avx2::register_simd_kernels(reg, id);
#endif
#ifdef FLAGOS_HAVE_ISA_AVX512
    if (isa == "avx512") avx512::register_simd_kernels(reg, id);
#endif
  }

  bool host_accessible(int) const override { return true; }
  void* alloc(int, size_t bytes) override { return cache_.alloc(bytes); }
  void free(int, void* p) override { cache_.free(p); }
  size_t cached_bytes(int) override { return cache_.cached(); }
  void release_cached(int) override { cache_.release(); }
  void copy_to_device(int, void* dst, const void* src, size_t n, StreamHandle) override { copy_bytes(dst, src, n); }
  void copy_to_host(int, void* dst, const void* src, size_t n, StreamHandle) override { copy_bytes(dst, src, n); }
  void copy_on_device(int, void* dst, const void* src, size_t n, StreamHandle) override { copy_bytes(dst, src, n); }
  void memset(int, void* dst, int v, size_t n, StreamHandle) override {
    parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
      std::memset(static_cast<char*>(dst) + b, v, static_cast<size_t>(e - b));
    });
  }
  void copy_strided(const Tensor& dst, const Tensor& src, StreamHandle) override;

  StreamHandle default_stream(int) override { return nullptr; }
  StreamHandle create_stream(int) override { return nullptr; }
  void destroy_stream(int, StreamHandle) override {}
  void synchronize_stream(int, StreamHandle) override {}
  void synchronize_device(int) override {}
  EventHandle create_event(int, bool) override { return new CpuEvent; }
  void destroy_event(int, EventHandle e) override { delete static_cast<CpuEvent*>(e); }
  void record_event(int, EventHandle e, StreamHandle) override {
    static_cast<CpuEvent*>(e)->t = std::chrono::steady_clock::now();
  }
  void stream_wait_event(int, StreamHandle, EventHandle) override {}
  void synchronize_event(int, EventHandle) override {}
  float elapsed_ms(int, EventHandle a, EventHandle b) override {
    return std::chrono::duration<float, std::milli>(static_cast<CpuEvent*>(b)->t - static_cast<CpuEvent*>(a)->t)
        .count();
  }

 private:
  HostBlockCache cache_;
  static void copy_bytes(void* dst, const void* src, size_t n) {
    parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
      std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, static_cast<size_t>(e - b));
    });
  }
};

template <size_t S>
void copy_runs(char** p, const int64_t* s, int64_t n) {
  if (s[0] == static_cast<int64_t>(S) && s[1] == static_cast<int64_t>(S)) {
    std::memcpy(p[0], p[1], static_cast<size_t>(n) * S);
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * s[0], p[1] + i * s[1], S);
}

void CpuBackend::copy_strided(const Tensor& dst, const Tensor& src, StreamHandle) {
  if (dst.numel() == 0) return;
  if (is_quant(dst.dtype())) {  // rows of blocks: copy row by row
    const int64_t rb = static_cast<int64_t>(row_bytes(dst.dtype(), dst.shape().back()));
    Shape outer(dst.shape().begin(), dst.shape().end() - 1);
    Tensor d = Tensor::from_blob_strided(dst.data(), outer, Strides(dst.strides().begin(), dst.strides().end() - 1),
                                         DType::u8, dst.device());
    Tensor s = Tensor::from_blob_strided(src.data(), outer, Strides(src.strides().begin(), src.strides().end() - 1),
                                         DType::u8, src.device());
    if (outer.size() == 0) {
      std::memcpy(dst.data(), src.data(), static_cast<size_t>(rb));
      return;
    }
    const Tensor* ts[2] = {&d, &s};
    for_each_run<2>(ts, std::max<int64_t>(1, kElementwiseGrain / rb), [rb](char** p, const int64_t* st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * st[0], p[1] + i * st[1], static_cast<size_t>(rb));
    });
    return;
  }
  const Tensor* ts[2] = {&dst, &src};
  switch (dst.itemsize()) {
    case 1: for_each_run<2>(ts, kElementwiseGrain, copy_runs<1>); break;
    case 2: for_each_run<2>(ts, kElementwiseGrain, copy_runs<2>); break;
    case 4: for_each_run<2>(ts, kElementwiseGrain, copy_runs<4>); break;
    case 8: for_each_run<2>(ts, kElementwiseGrain, copy_runs<8>); break;
    default: fail<NotSupported>("cpu copy_strided: item size ", dst.itemsize());
  }
}

}  // namespace

const std::string& active_isa() {
  static const std::string isa = pick_isa();
  return isa;
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace flagos::cpu
