// rms_norm, add_rms_norm (residual += x fused), layer_norm over the last dim of [rows, H] views,
// and group_norm over contiguous [N, C, S] (see src/ops/norm.cpp for the argument layout).
// Fast paths (contiguous 16-byte aligned rows, contiguous weight), chosen in norm_launch (auto: the
// kAuto16 table there for 16-bit rows of 1K..4K elements, by kind and few/many rows; block otherwise):
//  - warp: one warp per row, the row's 16-byte vectors in registers.
//  - block: one block per row, VPT vectors per thread in registers; block2 forces 2.
// Otherwise a strided path reads the row per pass. FLAGOS_CUDA_NORM_PATH=warp|block|block2|strided
// (read once) forces a path wherever it applies (A/B in one job). Measured and removed (2026-11-30):
// shared-memory ring paths (cp.async or cp.async.bulk rows, 2-3 stages; slower than block2 / block).
// Compute is f32 (f64 for f64), sums reduced over the warp/block, 1/sqrt in double; f16/bf16
// rounded once at the store. layer_norm's mean and variance come from one reduction of the sums of x - x[0] and
// its square (see shift_ok: a second pass where x[0] is far from the row's mean); FLAGOS_CUDA_NORM_REDUCE=old:
// always two reductions. add_rms_norm normalizes the residual as stored (rounded to its dtype).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda::llm {
namespace {

enum class NormKind { rms, add_rms, layer };

template <typename T, typename W>
struct NormArgs {
  const T* x;
  T* res;  // add_rms: residual (read, then written)
  T* out;
  const W* w;     // may be null
  const W* bias;  // layer_norm; may be null
  int64_t H;
  int64_t xs, rs, os;       // row strides (elements)
  int64_t xc, rc, oc;       // column strides (elements; 1 on the fast path)
  int64_t ws, bs;           // weight / bias strides (elements)
  double eps;
  double inv_h;  // 1 / H (unused since the ring paths went; kept so the kernels' code stays as measured)
  bool old_reduce;  // FLAGOS_CUDA_NORM_REDUCE=old: layer_norm reduces the mean, then the squared deviations
                   // (two reductions), and block sums take two barriers
};

template <typename C, typename W, int VE>
__device__ __forceinline__ void load_params(const W* p, int64_t idx, C (&v)[VE]) {
  if constexpr (sizeof(W) * VE <= 16) {
    const Pack<W, VE> pk = *reinterpret_cast<const Pack<W, VE>*>(p + idx);
#pragma unroll
    for (int k = 0; k < VE; ++k) v[k] = static_cast<C>(to_f(pk.v[k]));
  } else {  // wider than 16 bytes (f32 weights of 16-bit x): 16-byte pieces
    constexpr int E = 16 / sizeof(W);
#pragma unroll
    for (int h = 0; h < VE / E; ++h) {
      const Pack<W, E> pk = *reinterpret_cast<const Pack<W, E>*>(p + idx + h * E);
#pragma unroll
      for (int k = 0; k < E; ++k) v[h * E + k] = static_cast<C>(to_f(pk.v[k]));
    }
  }
}

// Fast path: VPT vectors of VE elements per thread, kept in registers as stored (16-bit values stay
// packed: half the registers, more rows in flight per SM). Block mode: one block of blockDim.x
// threads per row, sums reduced over the block. Warp mode (rows of up to 32 * VPT vectors): one warp
// per row, kWarpRows rows per block, sums reduced by shuffles only: no block barrier between a
// row's loads and its stores, and many more rows (bytes) in flight per SM.
constexpr int kWarpRows = 4;

template <typename C>
__device__ __forceinline__ C warp_sum(C v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block with one barrier (for kernels that reduce once: the scratch is never reused):
// warp sums to shared memory, then every warp folds the partials in the same order.
template <typename C>
__device__ __forceinline__ C block_sum_once(C v, C* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = static_cast<int>(blockDim.x >> 5);
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum(lane < nwarps ? scratch[lane] : C(0));
}
// Two sums over the block with one barrier (scratch: 64 values, not reused by the kernel).
template <typename C>
__device__ __forceinline__ void block_sum2_once(C& u, C& v, C* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = static_cast<int>(blockDim.x >> 5);
  u = warp_sum(u), v = warp_sum(v);
  if (lane == 0) scratch[warp] = u, scratch[32 + warp] = v;
  __syncthreads();
  u = warp_sum(lane < nwarps ? scratch[lane] : C(0));
  v = warp_sum(lane < nwarps ? scratch[32 + lane] : C(0));
}

// layer_norm statistics in one reduction: sums of d = x - k0 and d^2 about the row's first element k0,
// then mean = k0 + S1 / H and var = S2 / H - (S1 / H)^2. The subtraction loses about
// (1 + (mean - k0)^2 / var) ulps of the variance, so when (mean - k0)^2 > 8 var (k0 an outlier of its
// row; also NaN rows) the caller redoes the squared deviations about the mean (a second reduction).
template <typename C>
__device__ __forceinline__ bool shift_ok(C md, C var) {
  return md * md <= C(8) * var;
}

template <NormKind K, typename T, typename W, int VPT, bool WARP>
__global__ void norm_vec_kernel(NormArgs<T, W> a, int64_t rows) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  __shared__ C scratch[32];
  const int64_t row = WARP ? static_cast<int64_t>(blockIdx.x) * kWarpRows + (threadIdx.x >> 5) : blockIdx.x;
  if (WARP && row >= rows) return;  // whole warps only
  const int tid = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const int nthr = WARP ? 32 : blockDim.x;
  auto reduce = [&](C v) {
    if constexpr (WARP) return warp_sum(v);
    else return a.old_reduce ? block_sum(v, scratch) : block_sum_once(v, scratch);  // once: rms kinds only
  };
  const int64_t nvec = a.H / VE;
  const T* xr = a.x + row * a.xs;
  T* orow = a.out + row * a.os;
  Pack<T, VE> v[VPT];
  C s1 = 0;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = static_cast<int64_t>(k) * nthr + tid;
    if (iv < nvec) {
      const Pack<T, VE> px = *reinterpret_cast<const Pack<T, VE>*>(xr + iv * VE);
      if constexpr (K == NormKind::add_rms) {
        T* rrow = a.res + row * a.rs;
        const Pack<T, VE> pr = *reinterpret_cast<const Pack<T, VE>*>(rrow + iv * VE);
#pragma unroll
        for (int e = 0; e < VE; ++e)  // the rounded residual is what gets normalized
          v[k].v[e] = store_c<T>(static_cast<C>(to_f(pr.v[e])) + static_cast<C>(to_f(px.v[e])));
        *reinterpret_cast<Pack<T, VE>*>(rrow + iv * VE) = v[k];
      } else {
        v[k] = px;
      }
      if constexpr (K != NormKind::layer)
#pragma unroll
        for (int e = 0; e < VE; ++e) {
          const C x = static_cast<C>(to_f(v[k].v[e]));
          s1 += x * x;
        }
    }
  }
  C mean = 0, r;
  if constexpr (K == NormKind::layer) {
    // sums about k0 (old path: about 0, then the squared deviations about the mean: two reductions)
    const C k0 = a.old_reduce ? C(0) : static_cast<C>(to_f(xr[0]));
    C s2 = 0;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t iv = static_cast<int64_t>(k) * nthr + tid;
      if (iv < nvec)
#pragma unroll
        for (int e = 0; e < VE; ++e) {
          const C d = static_cast<C>(to_f(v[k].v[e])) - k0;
          s1 += d, s2 += d * d;
        }
    }
    bool exact = a.old_reduce;
    if (!exact) {
      __shared__ C scratch2[64];
      if constexpr (WARP) s1 = warp_sum(s1), s2 = warp_sum(s2);
      else block_sum2_once(s1, s2, scratch2);
      const C md = s1 / static_cast<C>(a.H);
      s2 = s2 / static_cast<C>(a.H) - md * md;  // the variance
      mean = k0 + md;
      exact = !shift_ok(md, s2);
      if (!exact) s2 *= static_cast<C>(a.H);
    } else {
      mean = reduce(s1) / static_cast<C>(a.H);
    }
    if (exact) {  // squared deviations about the mean
      s2 = 0;
#pragma unroll
      for (int k = 0; k < VPT; ++k) {
        const int64_t iv = static_cast<int64_t>(k) * nthr + tid;
        if (iv < nvec)
#pragma unroll
          for (int e = 0; e < VE; ++e) {
            const C d = static_cast<C>(to_f(v[k].v[e])) - mean;
            s2 += d * d;
          }
      }
      if constexpr (WARP) s2 = warp_sum(s2);
      else s2 = block_sum(s2, scratch);  // two barriers: scratch may have been used by the mean's sum
    }
    r = static_cast<C>(1.0 / sqrt(static_cast<double>(s2) / static_cast<double>(a.H) + a.eps));
  } else {
    s1 = reduce(s1);
    r = static_cast<C>(1.0 / sqrt(static_cast<double>(s1) / static_cast<double>(a.H) + a.eps));
  }
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = static_cast<int64_t>(k) * nthr + tid;
    if (iv >= nvec) continue;
    C wv[VE] = {}, bv[VE] = {};
    if (a.w) load_params<C, W, VE>(a.w, iv * VE, wv);
    if (K == NormKind::layer && a.bias) load_params<C, W, VE>(a.bias, iv * VE, bv);
    Pack<T, VE> po;
#pragma unroll
    for (int e = 0; e < VE; ++e) {
      const C x = static_cast<C>(to_f(v[k].v[e]));
      C y = K == NormKind::layer ? (x - mean) * r : x * r;
      if (a.w) y = y * wv[e];
      if (K == NormKind::layer && a.bias) y = y + bv[e];
      po.v[e] = store_c<T>(y);
    }
    *reinterpret_cast<Pack<T, VE>*>(orow + iv * VE) = po;
  }
}

// Strided path: any strides, any H; one block per row, the row re-read per pass.
template <NormKind K, typename T, typename W>
__global__ void norm_strided_kernel(NormArgs<T, W> a) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.xs;
  T* orow = a.out + row * a.os;
  T* rrow = K == NormKind::add_rms ? a.res + row * a.rs : nullptr;
  auto value = [&](int64_t i) -> C {
    if constexpr (K == NormKind::add_rms) return static_cast<C>(to_f(rrow[i * a.rc]));
    else return static_cast<C>(to_f(xr[i * a.xc]));
  };
  C s1 = 0;
  for (int64_t i = threadIdx.x; i < a.H; i += blockDim.x) {
    if constexpr (K == NormKind::add_rms) {
      const T sum = store_c<T>(static_cast<C>(to_f(rrow[i * a.rc])) + static_cast<C>(to_f(xr[i * a.xc])));
      rrow[i * a.rc] = sum;
      const C v = static_cast<C>(to_f(sum));
      s1 += v * v;
    } else {
      const C v = value(i);
      s1 += K == NormKind::layer ? v : v * v;
    }
  }
  s1 = block_sum(s1, scratch);
  C mean = 0, r;
  if constexpr (K == NormKind::layer) {
    mean = s1 / static_cast<C>(a.H);
    C s2 = 0;
    for (int64_t i = threadIdx.x; i < a.H; i += blockDim.x) {
      const C d = value(i) - mean;
      s2 += d * d;
    }
    s2 = block_sum(s2, scratch);
    r = static_cast<C>(1.0 / sqrt(static_cast<double>(s2) / static_cast<double>(a.H) + a.eps));
  } else {
    r = static_cast<C>(1.0 / sqrt(static_cast<double>(s1) / static_cast<double>(a.H) + a.eps));
  }
  for (int64_t i = threadIdx.x; i < a.H; i += blockDim.x) {
    const C v = value(i);
    C y = K == NormKind::layer ? (v - mean) * r : v * r;
    if (a.w) y = y * static_cast<C>(to_f(a.w[i * a.ws]));
    if (K == NormKind::layer && a.bias) y = y + static_cast<C>(to_f(a.bias[i * a.bs]));
    orow[i * a.oc] = store_c<T>(y);
  }
}

template <NormKind K, typename T, typename W, int VPT>
void launch_vec(const NormArgs<T, W>& na, int64_t rows, int threads, cudaStream_t s) {
  norm_vec_kernel<K, T, W, VPT, false><<<static_cast<unsigned>(rows), threads, 0, s>>>(na, rows);
}
template <NormKind K, typename T, typename W, int VPT>
void launch_warp(const NormArgs<T, W>& na, int64_t rows, cudaStream_t s) {
  const unsigned grid = static_cast<unsigned>((rows + kWarpRows - 1) / kWarpRows);
  norm_vec_kernel<K, T, W, VPT, true><<<grid, 32 * kWarpRows, 0, s>>>(na, rows);
}

enum class NormPath { automatic, warp, block, block2, strided };

NormPath forced_path() {
  static const NormPath p = [] {
    const char* e = std::getenv("FLAGOS_CUDA_NORM_PATH");
    if (!e || !*e || !std::strcmp(e, "auto")) return NormPath::automatic;
    static const std::pair<const char*, NormPath> names[] = {{"warp", NormPath::warp},
                                                             {"block", NormPath::block},
                                                             {"block2", NormPath::block2},
                                                             {"strided", NormPath::strided}};
    for (const auto& [n, v] : names)
      if (!std::strcmp(e, n)) return v;
    fail("FLAGOS_CUDA_NORM_PATH: unknown path '", e, "' (auto, warp, block, block2, strided)");
  }();
  return p;
}


template <NormKind K, typename T, typename W>
void norm_launch(const KernelArgs& a) {
  const Tensor& x = *a.in[0];
  const Tensor* wt = a.in[K == NormKind::add_rms ? 2 : 1];
  const Tensor* bt = K == NormKind::layer ? a.in[2] : nullptr;
  Tensor& o = *a.out[0];
  Tensor* res = K == NormKind::add_rms ? a.out[1] : nullptr;
  const int64_t rows = x.size(0), H = x.size(1);
  if (rows == 0 || H == 0) return;
  NormArgs<T, W> na{};
  na.x = x.data_as<T>();
  na.out = o.data_as<T>();
  na.res = res ? res->data_as<T>() : nullptr;
  na.w = wt && wt->defined() ? wt->data_as<W>() : nullptr;
  na.bias = bt && bt->defined() ? bt->data_as<W>() : nullptr;
  na.H = H;
  na.xs = est(x, 0), na.xc = est(x, 1), na.os = est(o, 0), na.oc = est(o, 1);
  if (res) na.rs = est(*res, 0), na.rc = est(*res, 1);
  na.ws = na.w ? est(*wt, 0) : 0;
  na.bs = na.bias ? est(*bt, 0) : 0;
  na.eps = a.p<NormParams>().eps;
  na.inv_h = 1.0 / static_cast<double>(H);
  static const bool old_reduce = [] {
    const char* e = std::getenv("FLAGOS_CUDA_NORM_REDUCE");
    return e && std::strcmp(e, "old") == 0;
  }();
  na.old_reduce = old_reduce;
  const cudaStream_t s = kernel_stream(a);
  const int device = a.stream.device().index;

  constexpr int VE = 16 / sizeof(T);
  constexpr int64_t wbytes = static_cast<int64_t>(sizeof(W)) * VE;
  auto row_ok = [&](const void* base, int64_t rs, int64_t cs) {
    return cs == 1 && aligned16(base) && (rs * static_cast<int64_t>(sizeof(T))) % 16 == 0;
  };
  auto param_ok = [&](const W* p, int64_t st) {
    return !p || (st == 1 && reinterpret_cast<uintptr_t>(p) % (wbytes < 16 ? wbytes : 16) == 0);
  };
  const int64_t nvec = H / VE;
  const bool aligned = H % VE == 0 && row_ok(na.x, na.xs, na.xc) && row_ok(na.out, na.os, na.oc) &&
                       (!res || row_ok(na.res, na.rs, na.rc)) && param_ok(na.w, na.ws) && param_ok(na.bias, na.bs);
  const bool vec = aligned && nvec <= 1024 * 8;
  const bool warp_fits = vec && nvec <= 32 * 16;
  const NormPath forced = forced_path();
  NormPath path = NormPath::strided;
  if (forced == NormPath::automatic) {
    // 16-bit rows of 1K..4K elements (LLM hidden sizes): the table below, by kind and row count
    // (decode: up to 4 x SMs rows; prefill: more). Everything else that fits in registers: a block per
    // row. Entries from the H200 run of 2026-11-29 23:10 (docs/perf/cuda.md); flip them from later runs.
    const bool llm_row = vec && sizeof(T) == 2 && nvec > 32 * 4 && nvec <= 32 * 16;
    const bool many = rows > 4 * static_cast<int64_t>(sm_count(device));
    //                                           decode (few rows)  prefill (many rows)
    // H200 2026-11-29 23:45, bf16 3584 (us): rms [1] block2 4.2 / warp 5.2, [4096] block2 21.5 / ring 22.2;
    // add_rms [16] block2 4.4 / ring 6.6, [4096] block2 32.8 / block 40.2. layer_norm in one reduction
    // (2026-11-30 01:52): [4096] block 20.7 / block2 22.6 / ring 27.7, [16 or 1] rows: warp (not re-measured).
    static constexpr NormPath kAuto16[3][2] = {{NormPath::block2, NormPath::block2},  // rms_norm
                                               {NormPath::block2, NormPath::block2},  // add_rms_norm
                                               {NormPath::warp, NormPath::block}};    // layer_norm
    if (llm_row) path = kAuto16[static_cast<int>(K)][many ? 1 : 0];
    else if (vec) path = NormPath::block;
  } else if (forced == NormPath::warp) {
    path = warp_fits ? NormPath::warp : vec ? NormPath::block : NormPath::strided;
  } else if (forced == NormPath::block || forced == NormPath::block2) {
    path = vec ? forced : NormPath::strided;
  }
  if (path == NormPath::warp) {
    // a warp per row, 8..16 vectors per lane
    if (nvec <= 32 * 8) launch_warp<K, T, W, 8>(na, rows, s);
    else if (nvec <= 32 * 12) launch_warp<K, T, W, 12>(na, rows, s);
    else if (nvec <= 32 * 14) launch_warp<K, T, W, 14>(na, rows, s);
    else launch_warp<K, T, W, 16>(na, rows, s);
  } else if (path == NormPath::block || path == NormPath::block2) {
    // block: enough vectors per thread for ILP at 128+ threads, at most 8; threads cover the rest.
    // block2: 2 vectors per thread, up to 512 threads (more rows resident per SM; the kernel has no
    // launch bounds, so no more threads than any register count can launch).
    const int vpt_need = static_cast<int>((nvec + 127) / 128);
    int vpt = vpt_need <= 1 ? 1 : vpt_need <= 2 ? 2 : vpt_need <= 4 ? 4 : 8;
    if (path == NormPath::block2 && nvec <= 1024) vpt = 2;
    int threads = static_cast<int>((nvec + vpt - 1) / vpt);
    threads = (threads + 31) / 32 * 32;
    threads = threads < 32 ? 32 : threads;
    switch (vpt) {
      case 1: launch_vec<K, T, W, 1>(na, rows, threads, s); break;
      case 2: launch_vec<K, T, W, 2>(na, rows, threads, s); break;
      case 4: launch_vec<K, T, W, 4>(na, rows, threads, s); break;
      default: launch_vec<K, T, W, 8>(na, rows, threads, s); break;
    }
  } else {
    const int threads = H >= 1024 ? 512 : (H >= 256 ? 256 : 64);
    norm_strided_kernel<K, T, W><<<static_cast<unsigned>(rows), threads, 0, s>>>(na);
  }
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- group_norm

template <typename T, typename W>
__global__ void group_norm_kernel(const T* __restrict__ x, T* __restrict__ out, const W* w, int64_t ws, const W* bias,
                                  int64_t bs, int64_t G, int64_t cg, int64_t S, double eps) {
  using C = compute_t<T>;
  __shared__ double scratch[32];
  const int64_t grp = blockIdx.x;  // (n, g): the group's cg * S elements are contiguous
  const int64_t len = cg * S, off = grp * len;
  const T* xg = x + off;
  T* og = out + off;
  double s1 = 0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s1 += static_cast<double>(to_f(xg[i]));
  s1 = block_sum(s1, scratch);
  const C mean = static_cast<C>(s1 / static_cast<double>(len));
  double s2 = 0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const double d = static_cast<double>(static_cast<C>(to_f(xg[i])) - mean);
    s2 += d * d;
  }
  s2 = block_sum(s2, scratch);
  const C r = static_cast<C>(1.0 / sqrt(s2 / static_cast<double>(len) + eps));
  const int64_t c0 = (grp % G) * cg;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const int64_t c = c0 + i / S;
    const C scale = w ? r * static_cast<C>(to_f(w[c * ws])) : r;
    const C shift = bias ? static_cast<C>(to_f(bias[c * bs])) : C(0);
    og[i] = store_c<T>((static_cast<C>(to_f(xg[i])) - mean) * scale + shift);
  }
}

template <typename T, typename W>
void group_norm_launch(const KernelArgs& a) {
  const Tensor& x = *a.in[0];  // contiguous [N, C, S]
  const Tensor* wt = a.in[1];
  const Tensor* bt = a.in[2];
  const int64_t N = x.size(0), Ch = x.size(1), S = x.size(2), G = a.p<NormParams>().groups;
  if (N == 0 || Ch == 0 || S == 0) return;
  const W* w = wt->defined() ? wt->data_as<W>() : nullptr;
  const W* b = bt->defined() ? bt->data_as<W>() : nullptr;
  const cudaStream_t s = kernel_stream(a);
  group_norm_kernel<T, W><<<static_cast<unsigned>(N * G), 512, 0, s>>>(
      x.data_as<T>(), a.out[0]->data_as<T>(), w, w ? est(*wt, 0) : 0, b, b ? est(*bt, 0) : 0, G, Ch / G, S,
      a.p<NormParams>().eps);
  CUDA_CHECK_LAUNCH();
}

template <typename T, typename W>
void add_types(KernelRegistry& reg, uint16_t b, DType t, DType w) {
  reg.add("rms_norm", b, KernelKey{t, w}, &norm_launch<NormKind::rms, T, W>);
  reg.add("add_rms_norm", b, KernelKey{t, w}, &norm_launch<NormKind::add_rms, T, W>);
  reg.add("layer_norm", b, KernelKey{t, w}, &norm_launch<NormKind::layer, T, W>);
  reg.add("group_norm", b, KernelKey{t, w}, &group_norm_launch<T, W>);
}

}  // namespace

void register_norm(KernelRegistry& reg, uint16_t b) {
  add_types<float, float>(reg, b, DType::f32, DType::f32);
  add_types<double, double>(reg, b, DType::f64, DType::f64);
  add_types<double, float>(reg, b, DType::f64, DType::f32);
  add_types<__half, __half>(reg, b, DType::f16, DType::f16);
  add_types<__half, float>(reg, b, DType::f16, DType::f32);
  add_types<__nv_bfloat16, __nv_bfloat16>(reg, b, DType::bf16, DType::bf16);
  add_types<__nv_bfloat16, float>(reg, b, DType::bf16, DType::f32);
}

}  // namespace flagos::cuda::llm
