// Conformance harness: float64 references, random inputs with a printed seed, poisoned
// outputs, layouts (contiguous / transposed / strided / broadcast), tolerance checks.
// Every test runs on every backend with a device (FLAGOS_TEST_BACKENDS=cpu,cuda narrows it).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "flagos/backend.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"

namespace flagos::test {

// Seed for this process: FLAGOS_TEST_SEED or random; printed once at start and on failures.
uint64_t base_seed();
// A per-test RNG seeded from the base seed and the test's name (reproducible per case).
std::mt19937_64 rng_for_current_test();

// Devices under test: the first device of every registered backend that has one.
std::vector<Device> test_devices();
std::string device_tag(Device d);  // "cpu", "cuda" (for test names)

// How an input tensor is laid out in memory.
enum class Layout { contiguous, transposed, strided, broadcast };
std::string layout_name(Layout l);

// Values drawn uniformly from [lo, hi) (integers: floor); then rounded to `dtype`.
struct Range {
  double lo = -2.0, hi = 2.0;
};
// A tensor with the given logical shape and layout on `dev`:
//  transposed: stored with its last two dims swapped (a transpose view); needs >= 2 dims
//  strided:    every dim sliced with step 2 out of a larger buffer
//  broadcast:  dims of size > 1 at even positions are stride-0 expansions of size 1
Tensor make_input(const Shape& shape, DType dtype, Device dev, std::mt19937_64& rng, Range r = {},
                  Layout layout = Layout::contiguous);
// Sprinkles special values (inf, -inf, NaN) into a float tensor (host copy then back).
Tensor with_specials(const Tensor& t, std::mt19937_64& rng, double fraction = 0.05);

// Host float64 copy of any tensor (quantized: dequantized f32 values), row-major.
std::vector<double> to_f64(const Tensor& t);
// Index helpers for references: row-major flat index <-> coordinates.
std::vector<int64_t> unravel(int64_t flat, const Shape& shape);
int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape);
// Flat index into `shape` of the element that broadcasting maps output coords `idx` to.
int64_t broadcast_index(const std::vector<int64_t>& out_idx, const Shape& in_shape);

// An output tensor filled with a poison value (NaN for floats, 0x5a bytes otherwise).
Tensor poisoned(const Shape& shape, DType dtype, Device dev);

// Default tolerance (relative L2 error) for results stored in dtype.
double default_tol(DType t);
// Checks `got` against the reference: relative L2 error <= tol over finite values; NaN where the
// reference has none fails (and vice versa); infinities must match. Integer/bool dtypes must match
// exactly. `what` is printed with the seed on failure.
void expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what);
void expect_exact(const Tensor& got, const std::vector<double>& ref, const std::string& what);

// Rounds a double to what `dtype` can store (for building references on rounded inputs).
double round_to(double v, DType dtype);

// Standard shape sets.
std::vector<Shape> elementwise_shapes(bool include_large = true);  // 0-d, empty, odd, SIMD tails, large

// gtest parameter name sanitizer: keeps [A-Za-z0-9_].
std::string sanitize(std::string s);

}  // namespace flagos::test
