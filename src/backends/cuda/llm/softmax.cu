// softmax / log_softmax over the last dim of a [rows, n] view (any strides; see
// src/ops/reduce.cpp). f32/f16/bf16 compute in f32, f64 in f64. Three paths:
//  warp:      short rows (n <= 1024), any strides: a warp per row, an online (max, sum) pass and
//             a write pass;
//  registers: contiguous 16-byte aligned rows of up to 2048 vectors (8192 f32): each of <= 256
//             threads keeps its vectors in registers; max, sum of exp, write: one read, one write;
//  one-read:  contiguous aligned rows of 8K..160K values (f32/f16/bf16): a row split over a
//             thread-block cluster (sm_90) of 2/4 CTAs (<= 32768 values) or 16 CTAs (non-portable
//             cluster size; 8 CTAs of 1024 threads where 16 does not launch) up to 163840 values,
//             each thread keeping its values in registers; (max, sum) exchanged over DSMEM. See
//             softmax_row1_kernel and FLAGOS_CUDA_SOFTMAX_PATH / FLAGOS_CUDA_SOFTMAX_LONG;
//  block:     longer or strided rows: online (max, sum) per thread (16-byte loads when aligned)
//             combined over the block, then a write pass that re-reads the row (from L2). With
//             fewer rows than ~2 blocks per SM, rows are split into segments whose stats a first
//             launch writes and a second combines before writing. Segments and block size come
//             from the "softmax" launch table when it has the shape (see launch_block).
// A row that is all -inf gives NaN (as torch and the CPU); a NaN anywhere in a row makes the row NaN.
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/mma.cuh"
#include "backends/cuda/tuning.h"

#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>

namespace flagos::cuda::llm {
namespace {

template <typename C>
__device__ __forceinline__ C exp_c(C v) {
  if constexpr (std::is_same_v<C, double>) return exp(v);
  else return expf(v);
}
template <typename C>
__device__ __forceinline__ C log_c(C v) {
  if constexpr (std::is_same_v<C, double>) return log(v);
  else return logf(v);
}

// Running max m (NaN sticky via the flag), sum s of exp(x - m).
template <typename C>
struct MaxSum {
  C m;
  C s;
  bool nan;
};

template <typename C>
__device__ __forceinline__ void ms_add(MaxSum<C>& st, C v) {
  if (v != v) {
    st.nan = true;
  } else if (v > st.m) {
    st.s = st.s * exp_c(st.m - v) + C(1);
    st.m = v;
  } else if (v != -INFINITY) {
    st.s += exp_c(v - st.m);
  }
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_combine(MaxSum<C> a, MaxSum<C> b) {
  MaxSum<C> r;
  r.nan = a.nan || b.nan;
  r.m = a.m > b.m ? a.m : b.m;
  r.s = (a.m == -INFINITY ? C(0) : a.s * exp_c(a.m - r.m)) + (b.m == -INFINITY ? C(0) : b.s * exp_c(b.m - r.m));
  return r;
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_warp(MaxSum<C> st) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<C> other;
    other.m = __shfl_xor_sync(0xffffffffu, st.m, o);
    other.s = __shfl_xor_sync(0xffffffffu, st.s, o);
    other.nan = __shfl_xor_sync(0xffffffffu, static_cast<int>(st.nan), o) != 0;
    st = ms_combine(st, other);
  }
  return st;
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_block(MaxSum<C> st, MaxSum<C>* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  st = ms_warp(st);
  if (lane == 0) scratch[warp] = st;
  __syncthreads();
  st = lane < nw ? scratch[lane] : MaxSum<C>{-INFINITY, C(0), false};
  return ms_warp(st);
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
// Every CTA of the cluster writes its block's (max, sum) into slot `rank` of each peer's `peers`,
// then combines all CL slots in rank order (the same result in every CTA). The caller did
// __cluster_barrier_arrive_relaxed() at its start, so peers' shared memory exists when written.
template <int CL, typename C>
__device__ __forceinline__ MaxSum<C> cluster_max_sum(MaxSum<C> st, MaxSum<C>* peers, int rank) {
  __cluster_barrier_wait();
  if (threadIdx.x < CL) *static_cast<MaxSum<C>*>(__cluster_map_shared_rank(&peers[rank], threadIdx.x)) = st;
  __cluster_barrier_arrive();  // release: the stores above
  __cluster_barrier_wait();    // acquire: every CTA's slot; no remote access after this
  st = peers[0];
#pragma unroll
  for (int r = 1; r < CL; ++r) st = ms_combine(st, peers[r]);
  return st;
}
#endif

// out = exp(v - m) / s, or v - m - log(s); m = NaN when the row has a NaN.
template <typename C, bool kLog>
struct Finisher {
  C m, inv, sub;
  __device__ __forceinline__ explicit Finisher(const MaxSum<C>& st) {
    m = st.nan ? C(NAN) : st.m;
    inv = C(1) / st.s;
    sub = m + log_c(st.s);
  }
  __device__ __forceinline__ C operator()(C v) const { return kLog ? v - sub : exp_c(v - m) * inv; }
};

template <typename T>
struct RowArgs {
  const T* x;
  T* o;
  int64_t rows, n, xs, xc, os, oc;  // element strides
};

// ---------------------------------------------------------------- registers path
template <typename T, bool kLog, int VPT>
__global__ void __launch_bounds__(256) softmax_reg_kernel(RowArgs<T> a) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  __shared__ C scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t nvec = a.n / VE;
  const T* xr = a.x + row * a.xs;
  T* orow = a.o + row * a.os;
  C v[VPT][VE];
  C m = -INFINITY;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = static_cast<int64_t>(k) * blockDim.x + threadIdx.x;
    if (iv < nvec) {
      const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(xr + iv * VE);
#pragma unroll
      for (int e = 0; e < VE; ++e) {
        v[k][e] = static_cast<C>(to_f(p.v[e]));
        m = nan_max(m, v[k][e]);
      }
    }
  }
  m = block_max_nan(m, scratch);
  C s = 0;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = static_cast<int64_t>(k) * blockDim.x + threadIdx.x;
    if (iv < nvec)
#pragma unroll
      for (int e = 0; e < VE; ++e) {
        const C ex = exp_c(v[k][e] - m);
        s += ex;
        if (!kLog) v[k][e] = ex;
      }
  }
  s = block_sum(s, scratch);
  const C inv = C(1) / s, sub = m + log_c(s);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = static_cast<int64_t>(k) * blockDim.x + threadIdx.x;
    if (iv < nvec) {
      Pack<T, VE> p;
#pragma unroll
      for (int e = 0; e < VE; ++e) p.v[e] = store_c<T>(kLog ? v[k][e] - sub : v[k][e] * inv);
      *reinterpret_cast<Pack<T, VE>*>(orow + iv * VE) = p;
    }
  }
}

// ---------------------------------------------------------------- one-read path (long rows)
// Contiguous 16-byte aligned rows too long for the registers path, f32/f16/bf16: a row is split
// over CL CTAs of NT threads (CL > 1: a thread-block cluster, sm_90 only), each thread keeping
// up to VPT vectors (32 values) in registers. Per-thread (max, sum of exp) over its values, one
// block combine; with a cluster, each CTA stores its block's (max, sum) into slot `rank` of every
// CTA's shared memory (distributed shared memory), one cluster barrier, and each CTA combines the
// CL slots in the same order (the same result in every CTA). The row is read once and written once.
// MINB: CTAs per SM the register budget is set for (1024 / NT: 64 registers a thread for 32 values;
// the 16-CTA long-row variant keeps 40 values at 3 CTAs of 256 threads, 80 registers).
template <typename T, bool kLog, int CL, int NT, int VPT, int MINB = 1024 / NT>
__global__ void __launch_bounds__(NT, MINB) softmax_row1_kernel(RowArgs<T> a) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if constexpr (CL > 1) {  // the host launches clusters only on sm_90 code (row1_cluster_ok)
    __trap();
    return;
  }
#endif
  __shared__ MaxSum<C> scratch[32];
  __shared__ MaxSum<C> peers[CL];
  int rank = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CL > 1) {
    __cluster_barrier_arrive_relaxed();  // "started"; waited for before touching the peers' memory
    rank = static_cast<int>(__clusterRelativeBlockRank());
  }
#endif
  const int64_t row = blockIdx.x / CL;
  const int64_t nvec = a.n / VE;
  const int64_t per = (nvec + CL - 1) / CL;
  const int64_t v0 = rank * per, v1 = min(nvec, v0 + per);
  const T* xr = a.x + row * a.xs;
  T* orow = a.o + row * a.os;
  C v[VPT][VE];
  C m = -INFINITY;
  bool nan = false;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = v0 + static_cast<int64_t>(k) * NT + threadIdx.x;
    if (iv < v1) {
      const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(xr + iv * VE);
#pragma unroll
      for (int e = 0; e < VE; ++e) {
        v[k][e] = static_cast<C>(to_f(p.v[e]));
        nan |= v[k][e] != v[k][e];
        m = fmax(m, v[k][e]);  // ignores NaN (flagged above)
      }
    }
  }
  C s = 0;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = v0 + static_cast<int64_t>(k) * NT + threadIdx.x;
    if (iv < v1)
#pragma unroll
      for (int e = 0; e < VE; ++e) s += v[k][e] == m ? C(1) : exp_c(v[k][e] - m);  // m = +-inf safe
  }
  MaxSum<C> st = ms_block(MaxSum<C>{m, s, nan}, scratch);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CL > 1) st = cluster_max_sum<CL>(st, peers, rank);
#endif
  (void)peers;
  const Finisher<C, kLog> fin(st);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t iv = v0 + static_cast<int64_t>(k) * NT + threadIdx.x;
    if (iv < v1) {
      Pack<T, VE> p;
#pragma unroll
      for (int e = 0; e < VE; ++e) p.v[e] = store_c<T>(fin(v[k][e]));
      *reinterpret_cast<Pack<T, VE>*>(orow + iv * VE) = p;
    }
  }
}

// The same one-read scheme with the CTA's slice staged in shared memory (dynamic, up to 48 KB) by
// cp.async instead of registers: more CTAs per SM (registers are no limit), three passes over the
// slice in shared memory (max, sum, write). Each thread reads back only the vectors it copied, so
// its own cp.async wait is the only ordering needed. Cluster of CL CTAs (sm_90).
template <typename T, bool kLog, int CL, int NT>
__global__ void __launch_bounds__(NT) softmax_slice_kernel(RowArgs<T> a) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  extern __shared__ uint4 slice[];
  __shared__ MaxSum<C> scratch[32];
  __shared__ MaxSum<C> peers[CL];
  __cluster_barrier_arrive_relaxed();  // "started"; waited for before touching the peers' memory
  const int rank = static_cast<int>(__clusterRelativeBlockRank());
  const int64_t row = blockIdx.x / CL;
  const int64_t nvec = a.n / VE;
  const int64_t per = (nvec + CL - 1) / CL;
  const int64_t v0 = rank * per;
  const int64_t v1 = min(nvec, v0 + per);
  const int cnt = v1 > v0 ? static_cast<int>(v1 - v0) : 0;
  const T* xr = a.x + row * a.xs + v0 * VE;
  T* orow = a.o + row * a.os + v0 * VE;
  for (int i = threadIdx.x; i < cnt; i += NT) cp_async16(&slice[i], xr + static_cast<int64_t>(i) * VE, 16);
  cp_async_commit();
  cp_async_wait_all();
  C m = -INFINITY;
  bool nan = false;
  for (int i = threadIdx.x; i < cnt; i += NT) {
    const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(&slice[i]);
#pragma unroll
    for (int e = 0; e < VE; ++e) {
      const C v = static_cast<C>(to_f(p.v[e]));
      nan |= v != v;
      m = fmax(m, v);  // ignores NaN (flagged above)
    }
  }
  C s = 0;
  for (int i = threadIdx.x; i < cnt; i += NT) {
    const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(&slice[i]);
#pragma unroll
    for (int e = 0; e < VE; ++e) {
      const C v = static_cast<C>(to_f(p.v[e]));
      s += v == m ? C(1) : exp_c(v - m);  // m = +-inf safe
    }
  }
  const MaxSum<C> st = cluster_max_sum<CL>(ms_block(MaxSum<C>{m, s, nan}, scratch), peers, rank);
  const Finisher<C, kLog> fin(st);
  for (int i = threadIdx.x; i < cnt; i += NT) {
    const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(&slice[i]);
    Pack<T, VE> q;
#pragma unroll
    for (int e = 0; e < VE; ++e) q.v[e] = store_c<T>(fin(static_cast<C>(to_f(p.v[e]))));
    *reinterpret_cast<Pack<T, VE>*>(orow + static_cast<int64_t>(i) * VE) = q;
  }
#else
  (void)a;
  __trap();  // the host launches it only on sm_90 code (long_ok)
#endif
}

// ---------------------------------------------------------------- warp path (n <= 1024)
template <typename T, bool kLog>
__global__ void softmax_warp_kernel(RowArgs<T> a) {
  using C = compute_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const int lane = threadIdx.x & 31;
  const T* xr = a.x + row * a.xs;
  T* orow = a.o + row * a.os;
  MaxSum<C> st{-INFINITY, C(0), false};
  for (int64_t i = lane; i < a.n; i += 32) ms_add(st, static_cast<C>(to_f(xr[i * a.xc])));
  st = ms_warp(st);
  const Finisher<C, kLog> fin(st);
  for (int64_t i = lane; i < a.n; i += 32) orow[i * a.oc] = store_c<T>(fin(static_cast<C>(to_f(xr[i * a.xc]))));
}

// ---------------------------------------------------------------- block path
// A block per (row, segment of the row): online (max, sum) over the segment, then either the
// write pass (whole rows) or the partial stats (rows split over blocks: few long rows), which a
// second launch combines before writing its segment. VEC: unit strides, 16-byte aligned rows.
enum class Phase { both, stats, write };

template <typename T, bool VEC>
__device__ __forceinline__ MaxSum<compute_t<T>> segment_stats(const T* xr, int64_t xc, int64_t i0, int64_t i1) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  MaxSum<C> st{-INFINITY, C(0), false};
  if constexpr (VEC) {
    for (int64_t v = i0 / VE + threadIdx.x; v < i1 / VE; v += blockDim.x) {
      const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(xr + v * VE);
#pragma unroll
      for (int e = 0; e < VE; ++e) ms_add(st, static_cast<C>(to_f(p.v[e])));
    }
  } else {
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) ms_add(st, static_cast<C>(to_f(xr[i * xc])));
  }
  return st;
}

template <typename T, bool kLog, bool VEC>
__device__ __forceinline__ void segment_write(const T* xr, int64_t xc, T* orow, int64_t oc, int64_t i0, int64_t i1,
                                              const Finisher<compute_t<T>, kLog>& fin) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  if constexpr (VEC) {
    for (int64_t v = i0 / VE + threadIdx.x; v < i1 / VE; v += blockDim.x) {
      const Pack<T, VE> p = *reinterpret_cast<const Pack<T, VE>*>(xr + v * VE);
      Pack<T, VE> q;
#pragma unroll
      for (int e = 0; e < VE; ++e) q.v[e] = store_c<T>(fin(static_cast<C>(to_f(p.v[e]))));
      *reinterpret_cast<Pack<T, VE>*>(orow + v * VE) = q;
    }
  } else {
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x)
      orow[i * oc] = store_c<T>(fin(static_cast<C>(to_f(xr[i * xc]))));
  }
}

// grid (segments, rows); seg = elements per segment (a multiple of the vector width).
template <typename T, bool kLog, bool VEC, Phase P>
__global__ void softmax_block_kernel(RowArgs<T> a, int64_t seg, MaxSum<compute_t<T>>* part) {
  using C = compute_t<T>;
  __shared__ MaxSum<C> scratch[32];
  const int64_t row = blockIdx.y, sg = blockIdx.x, nseg = gridDim.x;
  const T* xr = a.x + row * a.xs;
  T* orow = a.o + row * a.os;
  const int64_t i0 = sg * seg, i1 = min(a.n, i0 + seg);
  MaxSum<C> st;
  if constexpr (P == Phase::write) {
    st = MaxSum<C>{-INFINITY, C(0), false};
    for (int64_t k = 0; k < nseg; ++k) st = ms_combine(st, part[row * nseg + k]);
  } else {
    st = ms_block(segment_stats<T, VEC>(xr, a.xc, i0, i1), scratch);
    if constexpr (P == Phase::stats) {
      if (threadIdx.x == 0) part[row * nseg + sg] = st;
      return;
    }
  }
  const Finisher<C, kLog> fin(st);
  segment_write<T, kLog, VEC>(xr, a.xc, orow, a.oc, i0, i1, fin);
}

template <typename T, bool kLog, int VPT>
void launch_reg(const RowArgs<T>& ra, int threads, cudaStream_t s) {
  softmax_reg_kernel<T, kLog, VPT><<<static_cast<unsigned>(ra.rows), threads, 0, s>>>(ra);
}

// FLAGOS_CUDA_SOFTMAX_PATH (read once) picks the path for rows longer than the registers path
// holds: "cluster" (default: softmax_row1_kernel over a cluster of 2 or 4 CTAs of 256 threads up
// to 32768 values a row, and of 16 or 8 CTAs beyond, see FLAGOS_CUDA_SOFTMAX_LONG; sm_90 devices
// running sm_90 code), "block" (the block path below for every long row) or "row1024"
// (softmax_row1_kernel, one CTA of 1024 threads, up to 32768 values a row; block path beyond).
enum class LongPath { block, cluster, row1024 };
LongPath long_path() {
  static const LongPath p = [] {
    const char* e = std::getenv("FLAGOS_CUDA_SOFTMAX_PATH");
    const std::string v = e ? e : "";
    // Default: cluster (H200 2026-11-29 23:45: [4096,32000] f32 385.7 us vs block 405.0; it falls
    // back to block where the device or binary has no sm_90 code).
    if (v.empty()) return LongPath::cluster;
    if (v == "block") return LongPath::block;
    if (v == "cluster") return LongPath::cluster;
    if (v == "row1024") return LongPath::row1024;
    throw InvalidArgument("FLAGOS_CUDA_SOFTMAX_PATH: '" + v + "' is none of block, cluster, row1024");
  }();
  return p;
}

constexpr int kRow1Values = 32;  // values a thread keeps in registers

// Whether the cluster kernel has sm_90 code on this device (compute capability 9.x and a binary
// built for it); cached per device.
template <typename T, bool kLog>
bool row1_cluster_ok(int device) {
  static std::atomic<int> ok[64];  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= 64) return false;
  int v = ok[device].load(std::memory_order_relaxed);
  if (v == 0) {
    const int major = compute_major(device);
    cudaFuncAttributes fa{};
    CUDA_CHECK(cudaFuncGetAttributes(&fa, softmax_row1_kernel<T, kLog, 4, 256, kRow1Values * sizeof(T) / 16>));
    v = major >= 9 && fa.binaryVersion >= 90 ? 2 : 1;
    ok[device].store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

template <typename T, bool kLog, int CL, int NT, int VPT, int MINB>
cudaLaunchConfig_t row1_config(const RowArgs<T>& ra, cudaStream_t s, cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ra.rows * CL));
  cfg.blockDim = dim3(NT);
  cfg.stream = s;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = CL;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cfg;
}

template <typename T, bool kLog, int CL, int NT, int VPT = kRow1Values * static_cast<int>(sizeof(T)) / 16,
          int MINB = 1024 / NT>
void launch_row1(const RowArgs<T>& ra, cudaStream_t s) {
  auto* k = &softmax_row1_kernel<T, kLog, CL, NT, VPT, MINB>;
  if constexpr (CL == 1) {
    k<<<static_cast<unsigned>(ra.rows), NT, 0, s>>>(ra);
  } else {
    cudaLaunchAttribute attr[1];
    const cudaLaunchConfig_t cfg = row1_config<T, kLog, CL, NT, VPT, MINB>(ra, s, attr);
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, k, ra));
  }
}

// ---- rows of 32K..160K values (vocabularies): the one-read kernel over a cluster of 16 CTAs
// (a non-portable cluster size) or 8. FLAGOS_CUDA_SOFTMAX_LONG (read once) picks the variant:
//   auto (default) c16s for f32 rows, block for 16-bit rows;
//   c16s 16 CTAs x 256 threads, the slice in shared memory (softmax_slice_kernel, <= 48 KB a CTA:
//        196608 f32 values a row), CTAs per SM set by shared memory (4-5 at 152064 f32); c8 where
//        a cluster of 16 does not launch on the device;
//   c8   8 CTAs x 1024 threads x 20 values (24 for 16-bit types) in registers, 1 CTA per SM
//        (portable size; up to 163840 f32 values a row);
//   block: the block path (split into segments; the behavior before these kernels).
// Longer rows take the block path. H200 2026-11-30 01:40, us at [64,152064]: f32 c16s 39.2 / c8 51.1 /
// block 44.8 (log_softmax 43.2 / 50.1 / 44.3), bf16 block 30.3 / c16s 33.1 / c8 44.9; [1,152064] f32
// c16s 9.6 / c8 9.9 / block 12.5. Two more register variants (16 CTAs x 256 x 40 values, 16 x 512 x 20)
// lost at every shape (54.9 / 52.3 us at [64,152064] f32) and were removed.
enum class LongVariant { automatic, c8, c16s, block };
LongVariant long_variant() {
  static const LongVariant p = [] {
    const char* e = std::getenv("FLAGOS_CUDA_SOFTMAX_LONG");
    const std::string v = e ? e : "";
    if (v.empty() || v == "auto") return LongVariant::automatic;
    if (v == "c8") return LongVariant::c8;
    if (v == "c16s") return LongVariant::c16s;
    if (v == "block") return LongVariant::block;
    throw InvalidArgument("FLAGOS_CUDA_SOFTMAX_LONG: '" + v + "' is none of auto, c8, c16s, block");
  }();
  return p;
}

constexpr int vpt_for(int values, int esize) { return (values * esize + 15) / 16; }

// Long-row variants as (cluster, threads, vectors per thread, CTAs per SM).
template <typename T, bool kLog, LongVariant V>
struct LongCfg;
template <typename T, bool kLog>
struct LongCfg<T, kLog, LongVariant::c8> {
  static constexpr int CL = 8, NT = 1024, VPT = vpt_for(20, sizeof(T)), MINB = 1;
};

template <typename T, bool kLog, LongVariant V>
constexpr int64_t long_max_values() {
  using L = LongCfg<T, kLog, V>;
  return static_cast<int64_t>(L::CL) * L::NT * L::VPT * (16 / static_cast<int>(sizeof(T)));
}

// Whether variant V launches on `device`: sm_90 code for it, and (16 CTAs) the non-portable cluster
// size allowed and at least one cluster resident (cudaOccupancyMaxActiveClusters). Cached per device.
template <typename T, bool kLog, LongVariant V>
bool long_ok(int device) {
  static std::atomic<int> ok[64];  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= 64) return false;
  int v = ok[device].load(std::memory_order_relaxed);
  if (v == 0) {
    using L = LongCfg<T, kLog, V>;
    auto* k = &softmax_row1_kernel<T, kLog, L::CL, L::NT, L::VPT, L::MINB>;
    cudaFuncAttributes fa{};
    CUDA_CHECK(cudaFuncGetAttributes(&fa, k));
    bool good = compute_major(device) >= 9 && fa.binaryVersion >= 90;
    if (good && L::CL > 8) good = cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
    if (good) {
      RowArgs<T> probe{nullptr, nullptr, 1, 1, 0, 1, 0, 1};
      cudaLaunchAttribute attr[1];
      const cudaLaunchConfig_t cfg = row1_config<T, kLog, L::CL, L::NT, L::VPT, L::MINB>(probe, nullptr, attr);
      int clusters = 0;
      good = cudaOccupancyMaxActiveClusters(&clusters, k, &cfg) == cudaSuccess && clusters > 0;
    }
    (void)cudaGetLastError();  // a refused query above is an answer, not a pending error
    v = good ? 2 : 1;
    ok[device].store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

constexpr int kSliceCl = 16, kSliceThreads = 256, kSliceMaxBytes = 48 * 1024;

// Whether the shared-memory variant launches on `device` (as long_ok); cached per device.
template <typename T, bool kLog>
bool slice_ok(int device) {
  static std::atomic<int> ok[64];  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= 64) return false;
  int v = ok[device].load(std::memory_order_relaxed);
  if (v == 0) {
    auto* k = &softmax_slice_kernel<T, kLog, kSliceCl, kSliceThreads>;
    cudaFuncAttributes fa{};
    CUDA_CHECK(cudaFuncGetAttributes(&fa, k));
    bool good = compute_major(device) >= 9 && fa.binaryVersion >= 90 &&
                cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess &&
                cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, kSliceMaxBytes) == cudaSuccess &&
                cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout,
                                     cudaSharedmemCarveoutMaxShared) == cudaSuccess;
    if (good) {
      RowArgs<T> probe{nullptr, nullptr, 1, 1, 0, 1, 0, 1};
      cudaLaunchAttribute attr[1];
      cudaLaunchConfig_t cfg = row1_config<T, kLog, kSliceCl, kSliceThreads, 1, 1>(probe, nullptr, attr);
      cfg.dynamicSmemBytes = kSliceMaxBytes;
      int clusters = 0;
      good = cudaOccupancyMaxActiveClusters(&clusters, k, &cfg) == cudaSuccess && clusters > 0;
    }
    (void)cudaGetLastError();
    v = good ? 2 : 1;
    ok[device].store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

template <typename T, bool kLog>
bool try_slice(const RowArgs<T>& ra, int device, cudaStream_t s) {
  constexpr int VE = 16 / sizeof(T);
  const int64_t per = (ra.n / VE + kSliceCl - 1) / kSliceCl;
  if (per * 16 > kSliceMaxBytes || ra.rows * kSliceCl > INT32_MAX || !slice_ok<T, kLog>(device)) return false;
  cudaLaunchAttribute attr[1];
  cudaLaunchConfig_t cfg = row1_config<T, kLog, kSliceCl, kSliceThreads, 1, 1>(ra, s, attr);
  cfg.dynamicSmemBytes = static_cast<size_t>(per * 16);
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, &softmax_slice_kernel<T, kLog, kSliceCl, kSliceThreads>, ra));
  return true;
}

template <typename T, bool kLog, LongVariant V>
bool try_long(const RowArgs<T>& ra, int device, cudaStream_t s) {
  using L = LongCfg<T, kLog, V>;
  if (ra.n > long_max_values<T, kLog, V>() || ra.rows * L::CL > INT32_MAX || !long_ok<T, kLog, V>(device)) return false;
  launch_row1<T, kLog, L::CL, L::NT, L::VPT, L::MINB>(ra, s);
  return true;
}

// The one-read path for a long contiguous row when FLAGOS_CUDA_SOFTMAX_PATH asks for it and the
// row fits; false: not taken.
template <typename T, bool kLog>
bool try_row1(const KernelArgs& a, const RowArgs<T>& ra, cudaStream_t s) {
  if constexpr (sizeof(T) > 4) {
    return false;
  } else {
    const LongPath p = long_path();
    if (p == LongPath::block) return false;
    const int dev = a.stream.device().index;
    if (ra.n > 4 * 256 * kRow1Values) {
      if (p != LongPath::cluster) return false;
      LongVariant v = long_variant();
      if (v == LongVariant::automatic) v = sizeof(T) == 4 ? LongVariant::c16s : LongVariant::block;
      switch (v) {
        case LongVariant::automatic:
        case LongVariant::block: return false;
        case LongVariant::c8: return try_long<T, kLog, LongVariant::c8>(ra, dev, s);
        case LongVariant::c16s: return try_slice<T, kLog>(ra, dev, s) || try_long<T, kLog, LongVariant::c8>(ra, dev, s);
      }
      return false;
    }
    if (ra.rows * 4 > INT32_MAX) return false;
    if (p == LongPath::row1024) {
      launch_row1<T, kLog, 1, 1024>(ra, s);
      return true;
    }
    if (!row1_cluster_ok<T, kLog>(dev)) return false;
    if (ra.n <= 2 * 256 * kRow1Values) launch_row1<T, kLog, 2, 256>(ra, s);
    else launch_row1<T, kLog, 4, 256>(ra, s);
    return true;
  }
}

// Segments per row and block size from the "softmax" launch table (backends/cuda/tuning.h), else
// the heuristic: few long rows split so that ~2 blocks per SM run, 256 threads.
template <typename T, bool kLog, bool VEC>
void launch_block(const KernelArgs& a, const RowArgs<T>& ra, cudaStream_t s) {
  using C = compute_t<T>;
  constexpr int VE = 16 / sizeof(T);
  const tuning::SoftmaxConfig c =
      tuning::softmax_config(a.stream.device().index, static_cast<int>(sizeof(T)), ra.rows, ra.n);
  int64_t nseg = std::max(1, c.segments);
  const int64_t seg = ((ra.n + nseg - 1) / nseg + VE - 1) / VE * VE;
  nseg = (ra.n + seg - 1) / seg;
  const dim3 grid(static_cast<unsigned>(nseg), static_cast<unsigned>(ra.rows));
  if (nseg == 1) {
    softmax_block_kernel<T, kLog, VEC, Phase::both><<<grid, c.threads, 0, s>>>(ra, seg, nullptr);
    return;
  }
  Tensor ws = workspace(a, ra.rows * nseg * static_cast<int64_t>(sizeof(MaxSum<C>)));
  auto* part = static_cast<MaxSum<C>*>(ws.data());
  softmax_block_kernel<T, kLog, VEC, Phase::stats><<<grid, c.threads, 0, s>>>(ra, seg, part);
  CUDA_CHECK_LAUNCH();
  softmax_block_kernel<T, kLog, VEC, Phase::write><<<grid, c.threads, 0, s>>>(ra, seg, part);
}

template <typename T, bool kLog>
void softmax_launch(const KernelArgs& a) {
  const Tensor& x = *a.in[0];
  Tensor& o = *a.out[0];
  RowArgs<T> ra{x.data_as<T>(), o.data_as<T>(), x.size(0), x.size(1), est(x, 0), est(x, 1), est(o, 0), est(o, 1)};
  if (ra.rows == 0 || ra.n == 0) return;
  if (ra.n == 1) {  // a single column keeps the strides meaningful only along rows
    ra.xc = ra.oc = 1;
  }
  if (ra.rows == 1) ra.xs = ra.os = 0;
  const cudaStream_t s = kernel_stream(a);
  constexpr int VE = 16 / sizeof(T);
  const int64_t nvec = ra.n / VE;
  const bool rows_ok = ra.xc == 1 && ra.oc == 1 && ra.n % VE == 0 && aligned16(ra.x) && aligned16(ra.o) &&
                       (ra.xs * static_cast<int64_t>(sizeof(T))) % 16 == 0 &&
                       (ra.os * static_cast<int64_t>(sizeof(T))) % 16 == 0;
  if (ra.n <= 1024) {
    constexpr int kWarps = 8;
    softmax_warp_kernel<T, kLog><<<blocks_for(ra.rows, kWarps), kWarps * 32, 0, s>>>(ra);
  } else if (rows_ok && nvec <= 256 * 8) {
    // registers: up to 8 vectors per thread, at most 256 threads (several rows in flight per SM)
    const int64_t need = (nvec + 255) / 256;
    int vpt = 1;
    while (vpt < need) vpt *= 2;
    int threads = static_cast<int>((nvec + vpt - 1) / vpt);
    threads = (threads + 31) / 32 * 32;
    switch (vpt) {
      case 1: launch_reg<T, kLog, 1>(ra, threads, s); break;
      case 2: launch_reg<T, kLog, 2>(ra, threads, s); break;
      case 4: launch_reg<T, kLog, 4>(ra, threads, s); break;
      default: launch_reg<T, kLog, 8>(ra, threads, s); break;
    }
  } else if (rows_ok && try_row1<T, kLog>(a, ra, s)) {
  } else if (rows_ok) {
    launch_block<T, kLog, true>(a, ra, s);
  } else {
    launch_block<T, kLog, false>(a, ra, s);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void register_softmax(KernelRegistry& reg, uint16_t b) {
  reg.add("softmax", b, KernelKey{DType::f32}, &softmax_launch<float, false>);
  reg.add("softmax", b, KernelKey{DType::f64}, &softmax_launch<double, false>);
  reg.add("softmax", b, KernelKey{DType::f16}, &softmax_launch<__half, false>);
  reg.add("softmax", b, KernelKey{DType::bf16}, &softmax_launch<__nv_bfloat16, false>);
  reg.add("log_softmax", b, KernelKey{DType::f32}, &softmax_launch<float, true>);
  reg.add("log_softmax", b, KernelKey{DType::f64}, &softmax_launch<double, true>);
  reg.add("log_softmax", b, KernelKey{DType::f16}, &softmax_launch<__half, true>);
  reg.add("log_softmax", b, KernelKey{DType::bf16}, &softmax_launch<__nv_bfloat16, true>);
}

}  // namespace flagos::cuda::llm
