// rms_norm, add_rms_norm, layer_norm (over the last dim of a [rows, H] view, any strides) and
// group_norm (contiguous [N, C, S]); see src/ops/norm.cpp for the argument layout.
// Compute is f32 (f64 for f64 inputs) with 16-lane blocked sums; f16/bf16 rows are converted
// to f32 once into a per-thread row buffer and rounded once at the store. The weight/bias
// (dtype of x or f32, keyed as KernelKey{x, w}) are converted once per task. Rows run in
// parallel. Contiguous f32 rows are read and written directly.
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 2048;

template <typename S>
using Compute = std::conditional_t<std::is_same_v<S, double>, double, float>;

template <typename S>
constexpr bool kHalf = std::is_same_v<S, f16> || std::is_same_v<S, bf16>;

// sum(x) or sum(x^2) or sum((x-c)^2): lanes within 2048-blocks, f64 across blocks.
enum class SumKind { plain, squares, centered };
template <SumKind K, typename C>
double block_sum(const C* x, int64_t n, C c = C{}) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    C acc[kLanes] = {};
    auto term = [&](C v) {
      if constexpr (K == SumKind::plain) return v;
      if constexpr (K == SumKind::squares) return v * v;
      if constexpr (K == SumKind::centered) return (v - c) * (v - c);
    };
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += term(x[i + l]);
    for (; i < e; ++i) acc[0] += term(x[i]);
    for (int l = 0; l < kLanes; ++l) total += static_cast<double>(acc[l]);
  }
  return total;
}

// Loads a strided row of S into C (buf), or returns the row itself when it already is C.
template <typename S, typename C = Compute<S>>
const C* load_row(const char* p, int64_t stride, int64_t n, C* buf) {
  constexpr int64_t es = sizeof(S);
  if constexpr (std::is_same_v<S, C>) {
    if (stride == es) return reinterpret_cast<const C*>(p);
  }
  if constexpr (kHalf<S>) {
    if (stride == es) {
      cvt_to_f32(reinterpret_cast<const S*>(p), buf, n);
      return buf;
    }
  }
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<C>(Io<S>::load(p + i * stride));
  return buf;
}

template <typename S, typename C = Compute<S>>
void store_row(const C* v, char* p, int64_t stride, int64_t n) {
  constexpr int64_t es = sizeof(S);
  if constexpr (kHalf<S>) {
    if (stride == es) {
      cvt_from_f32(v, reinterpret_cast<S*>(p), n);
      return;
    }
  }
  if constexpr (std::is_same_v<S, C>) {
    if (stride == es) {
      if (reinterpret_cast<const char*>(v) != p) std::memcpy(p, v, static_cast<size_t>(n) * es);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) Io<S>::store(p + i * stride, static_cast<typename Io<S>::compute>(v[i]));
}

// Optional 1-D parameter (weight/bias) as C values; empty when undefined.
template <typename W, typename C>
void load_param(const Tensor* t, std::vector<C>& v) {
  v.clear();
  if (!t || !t->defined()) return;
  const int64_t n = t->size(0);
  v.resize(static_cast<size_t>(n));
  const char* p = static_cast<const char*>(t->data());
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<C>(Io<W>::load(p + i * t->stride(0)));
}

// o = x * r * w (w optional), written to a C buffer or directly to the output.
template <typename C>
void scale_row(const C* x, C* o, int64_t n, C r, const C* w) {
  if (w) {
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] * r * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] * r;
  }
}

// rms_norm: in = {x [rows, H], weight [H] or undefined}; add_rms_norm: in = {x, residual, weight},
// out = {out, residual} (residual updated in place first).
template <DType D, DType W, bool kAdd>
void rms_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using WS = typename StorageOf<W>::type;
  using C = Compute<S>;
  const Tensor& x = *a.in[0];
  const Tensor* wt = a.in[kAdd ? 2 : 1];
  const Tensor& o = *a.out[0];
  const Tensor* res = kAdd ? a.out[1] : nullptr;
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  const C eps = static_cast<C>(a.p<NormParams>().eps);
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const int64_t rr = res ? res->stride(0) : 0, rc = res ? res->stride(1) : 0;
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  char* rb = res ? static_cast<char*>(res->data()) : nullptr;
  constexpr int64_t es = sizeof(S);
  const int64_t grain = std::max<int64_t>(1, 16384 / n);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    std::vector<C> w, buf(static_cast<size_t>(n)), buf2;
    load_param<WS, C>(wt, w);
    const C* wp = w.empty() ? nullptr : w.data();
    for (int64_t r = b; r < e; ++r) {
      const char* xp = xb + r * xr;
      char* op = ob + r * orr;
      const C* v;
      if constexpr (kAdd) {
        // residual += x, rounded to the residual's dtype; the norm reads the rounded values.
        buf2.resize(static_cast<size_t>(n));
        char* rp = rb + r * rr;
        const C* xv = load_row<S>(xp, xc, n, buf2.data());
        const C* rv = load_row<S>(rp, rc, n, buf.data());
        C* sum = buf.data();
        for (int64_t i = 0; i < n; ++i) sum[i] = rv[i] + xv[i];
        store_row<S>(sum, rp, rc, n);
        if constexpr (kHalf<S>) {  // round like the stored residual
          for (int64_t i = 0; i < n; ++i) sum[i] = Io<S>::load(rp + i * rc);
        }
        v = sum;
      } else {
        v = load_row<S>(xp, xc, n, buf.data());
      }
      const double ms = block_sum<SumKind::squares>(v, n) / static_cast<double>(n);
      const C inv = static_cast<C>(1.0 / std::sqrt(ms + static_cast<double>(eps)));
      if constexpr (std::is_same_v<S, C>) {
        if (oc == es) {
          scale_row(v, reinterpret_cast<C*>(op), n, inv, wp);
          continue;
        }
      }
      scale_row(v, buf.data(), n, inv, wp);
      store_row<S>(buf.data(), op, oc, n);
    }
  });
}

// layer_norm: in = {x [rows, H], weight [H] or undefined, bias [H] or undefined}.
template <DType D, DType W>
void layer_norm_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using WS = typename StorageOf<W>::type;
  using C = Compute<S>;
  const Tensor& x = *a.in[0];
  const Tensor& o = *a.out[0];
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  const double eps = a.p<NormParams>().eps;
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  constexpr int64_t es = sizeof(S);
  const int64_t grain = std::max<int64_t>(1, 16384 / n);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    std::vector<C> w, bias, buf(static_cast<size_t>(n));
    load_param<WS, C>(a.in[1], w);
    load_param<WS, C>(a.in[2], bias);
    for (int64_t r = b; r < e; ++r) {
      const C* v = load_row<S>(xb + r * xr, xc, n, buf.data());
      const double mean = block_sum<SumKind::plain>(v, n) / static_cast<double>(n);
      const C mc = static_cast<C>(mean);
      const double var = block_sum<SumKind::centered>(v, n, mc) / static_cast<double>(n);
      const C rstd = static_cast<C>(1.0 / std::sqrt(var + eps));
      char* op = ob + r * orr;
      C* dst = buf.data();
      if constexpr (std::is_same_v<S, C>) {
        if (oc == es) dst = reinterpret_cast<C*>(op);
      }
      const C* wp = w.empty() ? nullptr : w.data();
      const C* bp = bias.empty() ? nullptr : bias.data();
      if (wp && bp) {
        for (int64_t i = 0; i < n; ++i) dst[i] = (v[i] - mc) * rstd * wp[i] + bp[i];
      } else if (wp) {
        for (int64_t i = 0; i < n; ++i) dst[i] = (v[i] - mc) * rstd * wp[i];
      } else if (bp) {
        for (int64_t i = 0; i < n; ++i) dst[i] = (v[i] - mc) * rstd + bp[i];
      } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = (v[i] - mc) * rstd;
      }
      if (dst == buf.data()) store_row<S>(dst, op, oc, n);
    }
  });
}

// group_norm: in = {x contiguous [N, C, S], weight [C] or undefined, bias [C] or undefined},
// out contiguous [N, C, S]; params.groups divides C.
template <DType D, DType W>
void group_norm_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using WS = typename StorageOf<W>::type;
  using C = Compute<S>;
  const Tensor& x = *a.in[0];
  const int64_t N = x.size(0), Ch = x.size(1), Sp = x.size(2);
  const int64_t G = a.p<NormParams>().groups;
  const double eps = a.p<NormParams>().eps;
  if (N == 0 || Ch == 0 || Sp == 0) return;
  const int64_t cg = Ch / G, gsize = cg * Sp;
  const S* xb = static_cast<const S*>(x.data());
  S* ob = static_cast<S*>(a.out[0]->data());
  std::vector<C> w, bias;
  load_param<WS, C>(a.in[1], w);
  load_param<WS, C>(a.in[2], bias);
  parallel_for(N * G, std::max<int64_t>(1, 16384 / gsize), [&](int64_t b, int64_t e) {
    std::vector<C> buf(static_cast<size_t>(gsize));
    for (int64_t t = b; t < e; ++t) {
      const int64_t off = t * gsize;  // group t of sample t / G is contiguous
      const C* v = load_row<S>(reinterpret_cast<const char*>(xb + off), sizeof(S), gsize, buf.data());
      const double mean = block_sum<SumKind::plain>(v, gsize) / static_cast<double>(gsize);
      const C mc = static_cast<C>(mean);
      const double var = block_sum<SumKind::centered>(v, gsize, mc) / static_cast<double>(gsize);
      const C rstd = static_cast<C>(1.0 / std::sqrt(var + eps));
      C* dst = buf.data();
      if constexpr (std::is_same_v<S, C>) dst = reinterpret_cast<C*>(ob + off);
      const int64_t c0 = (t % G) * cg;
      for (int64_t c = 0; c < cg; ++c) {
        const C scale = rstd * (w.empty() ? C{1} : w[static_cast<size_t>(c0 + c)]);
        const C shift = bias.empty() ? C{0} : bias[static_cast<size_t>(c0 + c)];
        const C* vs = v + c * Sp;
        C* ds = dst + c * Sp;
        // (x - mean) first: folding mean into the shift cancels badly when rstd is large.
        for (int64_t i = 0; i < Sp; ++i) ds[i] = (vs[i] - mc) * scale + shift;
      }
      if constexpr (!std::is_same_v<S, C>) store_row<S>(dst, reinterpret_cast<char*>(ob + off), sizeof(S), gsize);
    }
  });
}

}  // namespace

void register_norm(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG(t, w)                                                                           \
  reg.add("rms_norm", b, KernelKey{DType::t, DType::w}, &rms_k<DType::t, DType::w, false>);        \
  reg.add("add_rms_norm", b, KernelKey{DType::t, DType::w}, &rms_k<DType::t, DType::w, true>);     \
  reg.add("layer_norm", b, KernelKey{DType::t, DType::w}, &layer_norm_k<DType::t, DType::w>);      \
  reg.add("group_norm", b, KernelKey{DType::t, DType::w}, &group_norm_k<DType::t, DType::w>);
  FLAGOS_REG(f32, f32)
  FLAGOS_REG(f64, f64)
  FLAGOS_REG(f64, f32)
  FLAGOS_REG(f16, f16)
  FLAGOS_REG(f16, f32)
  FLAGOS_REG(bf16, bf16)
  FLAGOS_REG(bf16, f32)
#undef FLAGOS_REG
}

}  // namespace flagos::cpu::FLAGOS_ISA
