// softmax / log_softmax over the last dim of a [rows, n] view (any strides; see
// src/ops/reduce.cpp). f32/f16/bf16 compute in f32, f64 in f64. Three paths:
//  registers: contiguous 16-byte aligned rows that fit the block (n <= 32K f32): each thread keeps
//             its VPT vectors of the row in registers; max, sum of exp, write: one read, one write;
//  warp:      short rows (n <= 1024), any strides: a warp per row, an online (max, sum) pass and
//             a write pass;
//  block:     long or strided rows: a block per row, online (max, sum) per thread combined over
//             the block, then a write pass.
// A row that is all -inf gives NaN (as torch and the CPU); a NaN anywhere in a row makes the row NaN.
#include "backends/cuda/llm/llm_common.cuh"

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
__global__ void __launch_bounds__(VPT >= 16 ? 512 : 1024) softmax_reg_kernel(RowArgs<T> a) {
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
template <typename T, bool kLog>
__global__ void softmax_block_kernel(RowArgs<T> a) {
  using C = compute_t<T>;
  __shared__ MaxSum<C> scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.xs;
  T* orow = a.o + row * a.os;
  MaxSum<C> st{-INFINITY, C(0), false};
  for (int64_t i = threadIdx.x; i < a.n; i += blockDim.x) ms_add(st, static_cast<C>(to_f(xr[i * a.xc])));
  st = ms_block(st, scratch);
  const Finisher<C, kLog> fin(st);
  for (int64_t i = threadIdx.x; i < a.n; i += blockDim.x)
    orow[i * a.oc] = store_c<T>(fin(static_cast<C>(to_f(xr[i * a.xc]))));
}

template <typename T, bool kLog, int VPT>
void launch_reg(const RowArgs<T>& ra, int threads, cudaStream_t s) {
  softmax_reg_kernel<T, kLog, VPT><<<static_cast<unsigned>(ra.rows), threads, 0, s>>>(ra);
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
  if (rows_ok && ra.n > 1024 && nvec <= 512 * 16) {
    int64_t need = (nvec + 255) / 256;
    int vpt = 1;
    while (vpt < need && vpt < 16) vpt *= 2;
    int threads = static_cast<int>((nvec + vpt - 1) / vpt);
    threads = (threads + 31) / 32 * 32;
    if (vpt == 16 && threads > 512) vpt = 0;  // does not fit: block path
    switch (vpt) {
      case 1: launch_reg<T, kLog, 1>(ra, threads, s); break;
      case 2: launch_reg<T, kLog, 2>(ra, threads, s); break;
      case 4: launch_reg<T, kLog, 4>(ra, threads, s); break;
      case 8: launch_reg<T, kLog, 8>(ra, threads, s); break;
      case 16: launch_reg<T, kLog, 16>(ra, threads, s); break;
      default: softmax_block_kernel<T, kLog><<<static_cast<unsigned>(ra.rows), 1024, 0, s>>>(ra); break;
    }
  } else if (ra.n <= 1024) {
    constexpr int kWarps = 8;
    softmax_warp_kernel<T, kLog><<<blocks_for(ra.rows, kWarps), kWarps * 32, 0, s>>>(ra);
  } else {
    softmax_block_kernel<T, kLog><<<static_cast<unsigned>(ra.rows), 1024, 0, s>>>(ra);
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
