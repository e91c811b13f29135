// `flagos bench ops`: op cases on LLM and generic shapes, timed against the machine's floors.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "flagos/device.h"
#include "flagos/tensor.h"

namespace flagos::bench {

struct Options {
  Device device;
  bool quick = false;  // fewer, smaller cases (the README's main job, CI smoke)
};

struct Case {
  std::string name;    // "op shape dtype", e.g. "add [16,3584] f32"
  std::string family;  // "elementwise", "reduce", ...
  double bytes = 0;    // minimum memory traffic of one run
  double flops = 0;    // arithmetic of one run
  std::function<void()> run;  // one synchronous run (inputs prepared by the factory)
  std::string note;    // e.g. "incumbent: OpenBLAS sgemm"
};

// Case factories, one per op family (bench/cases_<family>.cpp).
#define FLAGOS_BENCH_FAMILIES(X) X(creation) X(elementwise) X(reduce) X(norm) X(linalg) X(quant) X(llm) X(index)
#define FLAGOS_DECLARE_BENCH(f) void cases_##f(std::vector<Case>& out, const Options& o);
FLAGOS_BENCH_FAMILIES(FLAGOS_DECLARE_BENCH)
#undef FLAGOS_DECLARE_BENCH

// Random tensor helpers for factories (uniform in [lo, hi), fixed seed).
Tensor random_tensor(const Shape& shape, DType dtype, Device dev, double lo = -1.0, double hi = 1.0,
                     uint64_t seed = 1);

// "[4096,3584]": the shape format of case names.
std::string shape_str(const Shape& s);

struct Floors {
  double bandwidth = 0;  // bytes/s, measured with a large copy
  double peak_flops = 0; // flop/s: f32 FMA loop on all CPU threads; a bf16 matmul on other devices
  std::string peak_note = "f32 (measured FMA)";
};
Floors measure_floors(Device dev);

int run_ops_benchmark(const Options& o, const std::string& filter, const std::string& json_path);

}  // namespace flagos::bench
