// softmax / log_softmax over the last dim of a [rows, n] view (any strides; see
// src/ops/reduce.cpp). Rows run in parallel. Per row: a max pass, an exp pass that stores
// exp(x - max) and sums it (16 f32 lanes per 1024-block, f64 across blocks), and a scale pass
// over the (cache-resident) output. Contiguous f32 rows are processed in place in the output;
// other dtypes and layouts go through a per-thread f32 row buffer. f64 computes in f64.
// A row that is all -inf gives NaN (as torch); NaN propagates.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 1024;

template <typename C>
inline C exp_c(C v) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_f32(v);
  } else {
    return std::exp(v);
  }
}

// Max with NaN propagation (vectorized lanes).
template <typename C>
C row_max(const C* x, int64_t n) {
  C acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<C>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const C v = x[i + l];
      acc[l] = (v > acc[l] || v != v) ? v : acc[l];
    }
  for (; i < n; ++i) acc[0] = (x[i] > acc[0] || x[i] != x[i]) ? x[i] : acc[0];
  C m = acc[0];
  for (int l = 1; l < kLanes; ++l) m = (acc[l] > m || acc[l] != acc[l]) ? acc[l] : m;
  // NaN in an earlier lane may be replaced by a later compare; recheck.
  for (int l = 0; l < kLanes; ++l)
    if (acc[l] != acc[l]) m = acc[l];
  return m;
}

// o[i] = exp(x[i] - m) (when o is non-null); returns the sum.
template <typename C, bool kStore>
double exp_sum(const C* x, C* o, int64_t n, C m) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    C acc[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const C y = exp_c(x[i + l] - m);
        if constexpr (kStore) o[i + l] = y;
        acc[l] += y;
      }
    for (; i < e; ++i) {
      const C y = exp_c(x[i] - m);
      if constexpr (kStore) o[i] = y;
      acc[0] += y;
    }
    for (int l = 0; l < kLanes; ++l) total += static_cast<double>(acc[l]);
  }
  return total;
}

// Computes softmax / log_softmax of x into o (o may equal x).
template <typename C, bool kLog>
void row_softmax(const C* x, C* o, int64_t n) {
  const C m = row_max(x, n);
  if constexpr (kLog) {
    const double s = exp_sum<C, false>(x, nullptr, n, m);
    const C sub = static_cast<C>(static_cast<double>(m) + std::log(s));
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] - sub;
  } else {
    const double s = exp_sum<C, true>(x, o, n, m);
    const C inv = static_cast<C>(1.0 / s);
    for (int64_t i = 0; i < n; ++i) o[i] *= inv;
  }
}

template <DType D, bool kLog>
void softmax_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using C = std::conditional_t<D == DType::f64, double, float>;
  const Tensor& x = *a.in[0];
  const Tensor& o = *a.out[0];
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  constexpr int64_t es = sizeof(S);
  const int64_t grain = std::max<int64_t>(1, 16384 / n);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    std::vector<C> buf;
    for (int64_t r = b; r < e; ++r) {
      const char* xp = xb + r * xr;
      char* op = ob + r * orr;
      if constexpr (std::is_same_v<S, C>) {
        if (xc == es && oc == es) {
          row_softmax<C, kLog>(reinterpret_cast<const C*>(xp), reinterpret_cast<C*>(op), n);
          continue;
        }
      }
      buf.resize(static_cast<size_t>(n));
      C* bp = buf.data();
      if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
        if (xc == es) {
          cvt_to_f32(reinterpret_cast<const S*>(xp), bp, n);
        } else {
          for (int64_t i = 0; i < n; ++i) bp[i] = Io<S>::load(xp + i * xc);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) bp[i] = Io<S>::load(xp + i * xc);
      }
      row_softmax<C, kLog>(bp, bp, n);
      if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
        if (oc == es) {
          cvt_from_f32(bp, reinterpret_cast<S*>(op), n);
          continue;
        }
      }
      for (int64_t i = 0; i < n; ++i) Io<S>::store(op + i * oc, bp[i]);
    }
  });
}

}  // namespace

void register_softmax(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG(t)                                                                \
  reg.add("softmax", b, KernelKey{DType::t}, &softmax_k<DType::t, false>);           \
  reg.add("log_softmax", b, KernelKey{DType::t}, &softmax_k<DType::t, true>);
  FLAGOS_REG(f32) FLAGOS_REG(f64) FLAGOS_REG(f16) FLAGOS_REG(bf16)
#undef FLAGOS_REG
}

}  // namespace flagos::cpu::FLAGOS_ISA
