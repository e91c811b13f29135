// softmax / log_softmax over the last dim of a [rows, n] view (any strides; see
// src/ops/reduce.cpp). f32/f16/bf16 compute in f32, one 2048-element L1 block at a time (16-bit
// and strided rows are converted per block, no row buffers):
//   pass 1 reads the row once, keeping a running max and sum of exp(x - max) (the sum is
//          rescaled when the max grows; exp is the AVX2 Cephes polynomial in row_simd.h);
//   pass 2 reads it again (from L2) and writes exp(x - max) / sum, or x - max - log(sum).
// Contiguous f32 softmax rows of <= 64K elements instead run max, exp stored + summed, scale
// in place (x and out stay in L2), so exp runs once per element (measured faster for
// [4096,32000]).
// Rows that fit one block keep their exps from pass 1 (one exp per element). Large contiguous
// f32 outputs are written with streaming stores, so memory traffic is one read and one write.
// Rows run in parallel; when there are fewer rows than a few per thread, long rows are also
// split into segments whose (max, sum) states are combined before pass 2.
// f64 computes in f64 (max, exp-store+sum, scale). A row that is all -inf gives NaN (as
// torch); NaN propagates.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/row_simd.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 1024;   // f64 path
constexpr int64_t kFBlock = 2048;  // f32 compute path

// ------------------------------------------------------------------ f32 compute (f32/f16/bf16)
struct MaxSum {
  float m = -std::numeric_limits<float>::infinity();
  double s = 0;
  bool nan = false;
};

MaxSum combine(const MaxSum& a, const MaxSum& b) {
  MaxSum r;
  r.nan = a.nan || b.nan;
  if (a.m == -std::numeric_limits<float>::infinity()) return r.m = b.m, r.s = b.s, r;
  if (b.m == -std::numeric_limits<float>::infinity()) return r.m = a.m, r.s = a.s, r;
  r.m = a.m > b.m ? a.m : b.m;
  r.s = a.s * std::exp(static_cast<double>(a.m) - r.m) + b.s * std::exp(static_cast<double>(b.m) - r.m);
  return r;
}

// Pass 1 over elements [j0, j1) of a row.
template <typename S>
MaxSum scan_row(const char* row, int64_t cs, int64_t j0, int64_t j1, float* buf) {
  MaxSum st;
  for (int64_t j = j0; j < j1; j += kFBlock) {
    const int64_t len = std::min(kFBlock, j1 - j);
    const float* v = rowsimd::load_f32<S>(row + j * cs, cs, len, buf);
    bool bn = false;
    const float mb = rowsimd::max_f32(v, len, bn);
    st.nan |= bn;
    if (mb > st.m) {
      st.s *= std::exp(static_cast<double>(st.m) - static_cast<double>(mb));
      st.m = mb;
    }
    if (st.m == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far: adds 0
    st.s += rowsimd::exp_sub_sum(v, len, st.m);
  }
  return st;
}

// Pass 2 over elements [j0, j1): out = exp(x - m) * inv, or x - sub for log_softmax.
template <typename S, bool kLog>
void write_row(const char* row, int64_t cs, char* orow, int64_t oc, int64_t j0, int64_t j1, const MaxSum& st,
               bool stream, float* buf, float* tmp) {
  const float m = st.nan ? std::numeric_limits<float>::quiet_NaN() : st.m;
  const float inv = static_cast<float>(1.0 / st.s);
  const float sub = static_cast<float>(static_cast<double>(m) + std::log(st.s));
  constexpr bool kF32 = std::is_same_v<S, float>;
  const bool direct = kF32 && oc == 4 && !stream;
  for (int64_t j = j0; j < j1; j += kFBlock) {
    const int64_t len = std::min(kFBlock, j1 - j);
    const float* v = rowsimd::load_f32<S>(row + j * cs, cs, len, buf);
    float* dst = direct ? reinterpret_cast<float*>(orow + j * oc) : tmp;
    if constexpr (kLog) {
      for (int64_t i = 0; i < len; ++i) dst[i] = v[i] - sub;
    } else {
      rowsimd::exp_sub_block(v, dst, len, m, inv);
    }
    if (direct) continue;
    if (kF32 && oc == 4) {
      rowsimd::store_stream(dst, reinterpret_cast<float*>(orow + j * oc), len, stream);
    } else {
      rowsimd::store_f32<S>(dst, orow + j * oc, oc, len);
    }
  }
}

// A row that fits one block: exps computed once and kept in tmp.
template <typename S, bool kLog>
void short_row(const char* row, int64_t cs, char* orow, int64_t oc, int64_t n, float* buf, float* tmp) {
  const float* v = rowsimd::load_f32<S>(row, cs, n, buf);
  bool nan = false;
  float m = rowsimd::max_f32(v, n, nan);
  if (nan) m = std::numeric_limits<float>::quiet_NaN();
  rowsimd::exp_sub_block(v, tmp, n, m);
  const double s = rowsimd::sum_f32(tmp, n);
  if constexpr (kLog) {
    const float sub = static_cast<float>(static_cast<double>(m) + std::log(s));
    for (int64_t i = 0; i < n; ++i) tmp[i] = v[i] - sub;
  } else {
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t i = 0; i < n; ++i) tmp[i] *= inv;
  }
  rowsimd::store_f32<S>(tmp, orow, oc, n);
}

template <typename S, bool kLog>
void softmax_f32(const Tensor& x, const Tensor& o) {
  const int64_t rows = x.size(0), n = x.size(1);
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  const bool stream = std::is_same_v<S, float> && oc == 4 && rows * n * 4 >= (int64_t{8} << 20);
  const int64_t nt = num_threads();
  if (n <= kFBlock) {
    parallel_for(rows, std::max<int64_t>(1, 16384 / n), [&](int64_t b, int64_t e) {
      float buf[kFBlock], tmp[kFBlock];
      for (int64_t r = b; r < e; ++r) short_row<S, kLog>(xb + r * xr, xc, ob + r * orr, oc, n, buf, tmp);
    });
    return;
  }
  int64_t nseg = 1;
  if (nt > 1 && rows < 4 * nt && n >= 8 * kFBlock) nseg = std::min<int64_t>((4 * nt + rows - 1) / rows, n / (4 * kFBlock));
  if (nseg <= 1) {
    // Contiguous f32 rows that fit L2 with their output: three passes, one exp per element.
    const bool mid = std::is_same_v<S, float> && xc == 4 && oc == 4 && n <= 65536;
    parallel_for(rows, std::max<int64_t>(1, 16384 / n), [&](int64_t b, int64_t e) {
      float buf[kFBlock], tmp[kFBlock];
      for (int64_t r = b; r < e; ++r) {
        if constexpr (std::is_same_v<S, float>) {
          if (mid && !kLog) {  // max, exp stored + summed, scale in place (row in L2): one exp
            const float* xp = reinterpret_cast<const float*>(xb + r * xr);
            float* op = reinterpret_cast<float*>(ob + r * orr);
            bool nan = false;
            float m = rowsimd::max_f32(xp, n, nan);
            if (nan) m = std::numeric_limits<float>::quiet_NaN();
            double s = 0;
            for (int64_t j = 0; j < n; j += kFBlock) {
              const int64_t len = std::min(kFBlock, n - j);
              rowsimd::exp_sub_block(xp + j, op + j, len, m);
              s += rowsimd::sum_f32(op + j, len);
            }
            const float inv = static_cast<float>(1.0 / s);
            for (int64_t i = 0; i < n; ++i) op[i] *= inv;
            continue;
          }
        }
        const MaxSum st = scan_row<S>(xb + r * xr, xc, 0, n, buf);
        write_row<S, kLog>(xb + r * xr, xc, ob + r * orr, oc, 0, n, st, stream, buf, tmp);
      }
      if (stream) rowsimd::fence();
    });
    return;
  }
  // Few long rows: segments (multiples of the block) run in parallel, states combined in order.
  const int64_t seg = (n / nseg + kFBlock - 1) / kFBlock * kFBlock;
  nseg = (n + seg - 1) / seg;
  std::vector<MaxSum> parts(static_cast<size_t>(rows * nseg));
  parallel_for(rows * nseg, 1, [&](int64_t b, int64_t e) {
    float buf[kFBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t r = t / nseg, j0 = (t % nseg) * seg;
      parts[static_cast<size_t>(t)] = scan_row<S>(xb + r * xr, xc, j0, std::min(n, j0 + seg), buf);
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    MaxSum st = parts[static_cast<size_t>(r * nseg)];
    for (int64_t k = 1; k < nseg; ++k) st = combine(st, parts[static_cast<size_t>(r * nseg + k)]);
    parts[static_cast<size_t>(r * nseg)] = st;
  }
  parallel_for(rows * nseg, 1, [&](int64_t b, int64_t e) {
    float buf[kFBlock], tmp[kFBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t r = t / nseg, j0 = (t % nseg) * seg;
      write_row<S, kLog>(xb + r * xr, xc, ob + r * orr, oc, j0, std::min(n, j0 + seg),
                         parts[static_cast<size_t>(r * nseg)], stream, buf, tmp);
    }
    if (stream) rowsimd::fence();
  });
}

// ------------------------------------------------------------------ f64
// Max with NaN propagation (NaN detected on the side through x * 0, confirmed by a rescan).
double row_max(const double* x, int64_t n) {
  double acc[kLanes], z[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<double>::infinity(), z[l] = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double v = x[i + l];
      acc[l] = v > acc[l] ? v : acc[l];
      z[l] += v * 0.0;
    }
  double m = -std::numeric_limits<double>::infinity(), zz = 0;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m, zz += x[i] * 0.0;
  for (int l = 0; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m, zz += z[l];
  if (zz != zz)
    for (int64_t k = 0; k < n; ++k)
      if (x[k] != x[k]) return x[k];
  return m;
}

// o[i] = exp(x[i] - m) when store (else into a scratch block); returns the sum.
double exp_sum(const double* x, double* o, int64_t n, double m, bool store) {
  double total = 0;
  double tmp[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    double* dst = store ? o + b : tmp;
    for (int64_t i = 0; i < len; ++i) dst[i] = std::exp(x[b + i] - m);
    double acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += dst[i + l];
    for (; i < len; ++i) acc[0] += dst[i];
    for (int l = 0; l < kLanes; ++l) total += acc[l];
  }
  return total;
}

template <bool kLog>
void row_softmax(const double* x, double* o, int64_t n) {
  const double m = row_max(x, n);
  if constexpr (kLog) {
    const double sub = m + std::log(exp_sum(x, nullptr, n, m, false));
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] - sub;
  } else {
    const double inv = 1.0 / exp_sum(x, o, n, m, true);
    for (int64_t i = 0; i < n; ++i) o[i] *= inv;
  }
}

template <DType D, bool kLog>
void softmax_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  const Tensor& x = *a.in[0];
  const Tensor& o = *a.out[0];
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  if constexpr (!std::is_same_v<S, double>) {
    softmax_f32<S, kLog>(x, o);
  } else {
    const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
    const char* xb = static_cast<const char*>(x.data());
    char* ob = static_cast<char*>(o.data());
    parallel_for(rows, std::max<int64_t>(1, 16384 / n), [&](int64_t b, int64_t e) {
      std::vector<double> buf;
      for (int64_t r = b; r < e; ++r) {
        const char* xp = xb + r * xr;
        char* op = ob + r * orr;
        if (xc == 8 && oc == 8) {
          row_softmax<kLog>(reinterpret_cast<const double*>(xp), reinterpret_cast<double*>(op), n);
          continue;
        }
        buf.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = Io<double>::load(xp + i * xc);
        row_softmax<kLog>(buf.data(), buf.data(), n);
        for (int64_t i = 0; i < n; ++i) Io<double>::store(op + i * oc, buf[static_cast<size_t>(i)]);
      }
    });
  }
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
