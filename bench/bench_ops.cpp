#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "backends/cpu/thread_pool.h"
#include "bench.h"
#include "flagos/backend.h"
#include "flagos/ops.h"

namespace flagos::bench {

Tensor random_tensor(const Shape& shape, DType dtype, Device dev, double lo, double hi, uint64_t seed) {
  // Benchmarks need plausible values fast (some tables have 5e8 elements): a counter-based hash
  // per element in parallel, written as f32 and cast once.
  Tensor h = Tensor::empty(shape, DType::f32);
  float* p = h.data_as<float>();
  const float a = static_cast<float>(lo), w = static_cast<float>(hi - lo);
  const bool integral = !is_float(dtype) && !is_quant(dtype);
  cpu::parallel_for(h.numel(), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      float v = a + w * static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
      p[i] = integral ? std::floor(v) : v;
    }
  });
  Tensor t = is_quant(dtype) ? ops::quantize(h, dtype) : (dtype == DType::f32 ? h : ops::cast(h, dtype));
  return t.to(dev);
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (int i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds between two events around `f` on the current stream of an asynchronous device.
template <typename F>
double device_seconds(Device dev, F&& f) {
  const Stream s = current_stream(dev);
  Event e0(dev), e1(dev);
  e0.record(s);
  f();
  e1.record(s);
  e1.synchronize();
  return e1.elapsed_ms_since(e0) * 1e-3;
}

// Median time of one run: warm-up, then repeat within a time budget. On a device with its own
// streams the runs are timed with events around batches of ~4 ms and at least 4 runs (host clocks
// would add launch and synchronization latency to every run; the stream is idle when a batch's
// start event is recorded, so the first run's host work counts once per batch); the median of the
// batch means is reported. bench/gpu/torch_ops.py times torch the same way.
double time_case(const Case& c, Device dev, bool quick) {
  const double budget = quick ? 0.15 : 0.6;
  c.run();
  backend_of(dev).synchronize_device(dev.index);
  std::vector<double> t;
  const double start = now_s();
  if (!dev.is_cpu()) {
    const double one = device_seconds(dev, [&] { c.run(); });
    const int per = static_cast<int>(std::clamp(4e-3 / std::max(one, 1e-7), 4.0, 500.0));
    while (t.size() < 5 || (now_s() - start < budget && t.size() < 500))
      t.push_back(device_seconds(dev, [&] {
                    for (int i = 0; i < per; ++i) c.run();
                  }) / per);
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    return t[t.size() / 2];
  }
  while (t.size() < 5 || (now_s() - start < budget && t.size() < 2000)) {
    const double a = now_s();
    c.run();
    backend_of(dev).synchronize_device(dev.index);
    t.push_back(now_s() - a);
  }
  std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

}  // namespace

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(int64_t iters) {
  typedef float v8 __attribute__((vector_size(32)));
  v8 a[8], b = {1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f},
           c = {1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f};
  for (auto& x : a) x = c;
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : a) x = x * b + c;  // contracted to FMA
  float s = 0;
  for (auto& x : a)
    for (int j = 0; j < 8; ++j) s += x[j];
  return s;
}
#endif

Floors measure_floors(Device dev) {
  Floors f;
  // Bandwidth: a 256 MiB copy (read + write counted), best of a few.
  const int64_t n = 64ll << 20;
  Tensor a = ops::full({n}, 1.0, DType::f32, dev), b = Tensor::empty({n}, DType::f32, dev);
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    if (!dev.is_cpu()) {
      best = std::min(best, device_seconds(dev, [&] { ops::copy(b, a); }));
      continue;
    }
    const double t0 = now_s();
    ops::copy(b, a);
    backend_of(dev).synchronize_device(dev.index);
    best = std::min(best, now_s() - t0);
  }
  f.bandwidth = 2.0 * static_cast<double>(n) * 4.0 / best;
  if (!dev.is_cpu()) {  // matrix peak: a bf16 product of random 8192-square matrices through ops::matmul
    const int64_t m = 8192;
    Tensor x = random_tensor({m, m}, DType::bf16, dev, -1, 1, 11), y = random_tensor({m, m}, DType::bf16, dev, -1, 1, 12);
    Tensor z = Tensor::empty({m, m}, DType::bf16, dev);
    ops::matmul(x, y, z);
    double tb = 1e9;
    for (int i = 0; i < 5; ++i) tb = std::min(tb, device_seconds(dev, [&] { ops::matmul(x, y, z); }));
    f.peak_flops = 2.0 * static_cast<double>(m * m) * static_cast<double>(m) / tb;
    f.peak_note = "bf16 (measured 8192^3 matmul)";
    return f;
  }
  if (dev.is_cpu()) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      const int64_t iters = 2'000'000;
      std::vector<double> sink(static_cast<size_t>(cpu::num_threads()));
      const double t0 = now_s();
      cpu::parallel_for(cpu::num_threads(), 1, [&](int64_t b0, int64_t e0) {
        for (int64_t i = b0; i < e0; ++i) sink[static_cast<size_t>(i)] = fma_loop_avx2(iters);
      });
      const double dt = now_s() - t0;
      f.peak_flops = static_cast<double>(cpu::num_threads()) * static_cast<double>(iters) * 8 * 8 * 2 / dt;
    }
#endif
    if (f.peak_flops == 0) f.peak_flops = 1e9 * cpu::num_threads();
  }
  return f;
}

int run_ops_benchmark(const Options& o, const std::string& filter, const std::string& json_path) {
  const Floors fl = measure_floors(o.device);
  const DeviceProps props = backend_of(o.device).device_props(o.device.index);
  std::printf("device %s: %s (%s)\nfloors: memory bandwidth %.1f GB/s (measured copy), peak %.1f GFLOP/s %s\n\n",
              to_string(o.device).c_str(), props.name.c_str(), props.capabilities.c_str(), fl.bandwidth / 1e9,
              fl.peak_flops / 1e9, fl.peak_note.c_str());
  std::vector<Case> cases;
#define FLAGOS_RUN_FACTORY(f) cases_##f(cases, o);
  FLAGOS_BENCH_FAMILIES(FLAGOS_RUN_FACTORY)
#undef FLAGOS_RUN_FACTORY
  const std::regex re(filter.empty() ? ".*" : filter);
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-44s %11s %9s %9s %8s  %s\n", "case", "time", "GB/s", "GFLOP/s", "%floor", "note");
  int failed = 0;
  for (const Case& c : cases) {
    if (!std::regex_search(c.name, re)) continue;
    double t = 0;
    try {
      t = time_case(c, o.device, o.quick);
    } catch (const std::exception& e) {
      std::printf("%-44s  error: %s\n", c.name.c_str(), e.what());
      ++failed;
      continue;
    }
    const double floor_t = std::max(c.bytes / fl.bandwidth, c.flops / fl.peak_flops);
    const double pct = floor_t > 0 ? 100.0 * floor_t / t : 0.0;
    const double us = t * 1e6;
    std::printf("%-44s %9.2fus %9.2f %9.2f %7.1f%%  %s\n", c.name.c_str(), us, c.bytes / t / 1e9, c.flops / t / 1e9,
                pct, c.note.c_str());
    std::fflush(stdout);
    rows.push_back({{"name", c.name}, {"family", c.family}, {"time_us", us}, {"bytes", c.bytes}, {"flops", c.flops},
                    {"gbps", c.bytes / t / 1e9}, {"gflops", c.flops / t / 1e9}, {"pct_of_floor", pct},
                    {"note", c.note}});
  }
  if (!json_path.empty()) {
    nlohmann::json j = {{"device", to_string(o.device)},
                        {"device_name", props.name},
                        {"capabilities", props.capabilities},
                        {"threads", props.compute_units},
                        {"bandwidth_gbps", fl.bandwidth / 1e9},
                        {"peak_gflops", fl.peak_flops / 1e9},
                        {"cases", rows}};
    std::ofstream f(json_path);
    if (!f) fail("cannot write ", json_path);
    f << j.dump(2) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace flagos::bench
