// Scans: cumsum / cumprod over the last dim of a [rows, n] view (any strides; the op layer moves
// the scanned dim last). Floats keep their dtype and accumulate in f32 (f64 for f64); integers and
// bool accumulate in 64 bits (wrapping) and give i64. Short rows take a thread each; long rows a
// block each, scanned 256 elements at a time (warp shuffles, then the warp totals) with a carry.
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels/families.h"

namespace flagos::cuda {
namespace {

struct ScanArgs {
  const char* in = nullptr;
  char* out = nullptr;
  int64_t rows = 0, n = 0, xr = 0, xc = 0, orr = 0, oc = 0;  // byte strides
  bool prod = false;
};

template <typename T>
using ScanAcc = std::conditional_t<is_float_v<T>, acc_t<T>, uint64_t>;

template <typename T>
__device__ __forceinline__ ScanAcc<T> scan_load(const char* p) {
  if constexpr (is_float_v<T>)
    return load(reinterpret_cast<const T*>(p));
  else
    return static_cast<uint64_t>(static_cast<int64_t>(*reinterpret_cast<const T*>(p)));
}

template <typename T>
__device__ __forceinline__ void scan_store(char* p, ScanAcc<T> v) {
  if constexpr (is_float_v<T>)
    store(reinterpret_cast<T*>(p), v);
  else
    *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v);
}

template <typename A>
__device__ __forceinline__ A scan_op(bool prod, A a, A b) {
  return prod ? a * b : a + b;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scan_rows_kernel(ScanArgs a) {
  using A = ScanAcc<T>;
  const int64_t r = global_thread();
  if (r >= a.rows) return;
  const char* x = a.in + r * a.xr;
  char* o = a.out + r * a.orr;
  A acc = a.prod ? A(1) : A(0);
  for (int64_t i = 0; i < a.n; ++i) {
    acc = scan_op(a.prod, acc, scan_load<T>(x + i * a.xc));
    scan_store<T>(o + i * a.oc, acc);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scan_block_kernel(ScanArgs a) {
  using A = ScanAcc<T>;
  __shared__ A warp_tot[32];
  __shared__ A carry_sm;
  const int64_t r = blockIdx.x;
  const char* x = a.in + r * a.xr;
  char* o = a.out + r * a.orr;
  const A id = a.prod ? A(1) : A(0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  A carry = id;
  for (int64_t base = 0; base < a.n; base += kThreads) {
    const int64_t j = base + threadIdx.x;
    A v = j < a.n ? scan_load<T>(x + j * a.xc) : id;
#pragma unroll
    for (int s = 1; s < 32; s <<= 1) {
      const A t = __shfl_up_sync(0xffffffffu, v, s);
      if (lane >= s) v = scan_op(a.prod, t, v);
    }
    if (lane == 31) warp_tot[warp] = v;
    __syncthreads();
    if (warp == 0) {
      A w = lane < kThreads / 32 ? warp_tot[lane] : id;
#pragma unroll
      for (int s = 1; s < 32; s <<= 1) {
        const A t = __shfl_up_sync(0xffffffffu, w, s);
        if (lane >= s) w = scan_op(a.prod, t, w);
      }
      warp_tot[lane] = w;
    }
    __syncthreads();
    if (warp > 0) v = scan_op(a.prod, warp_tot[warp - 1], v);
    v = scan_op(a.prod, carry, v);
    if (j < a.n) scan_store<T>(o + j * a.oc, v);
    if (threadIdx.x == kThreads - 1) carry_sm = v;
    __syncthreads();
    carry = carry_sm;
    __syncthreads();  // warp_tot and carry_sm are rewritten next round
  }
}

template <DType D, bool kProd>
void scan_k(const KernelArgs& args) {
  using T = type_of<D>;
  const Tensor& x = *args.in[0];
  const Tensor& o = *args.out[0];
  ScanArgs a;
  a.rows = x.size(0);
  a.n = x.size(1);
  if (a.rows == 0 || a.n == 0) return;
  a.in = static_cast<const char*>(x.data());
  a.out = static_cast<char*>(o.data());
  a.xr = x.stride(0);
  a.xc = x.stride(1);
  a.orr = o.stride(0);
  a.oc = o.stride(1);
  a.prod = kProd;
  cudaStream_t s = kernel_stream(args);
  if (a.n <= 128 && a.rows > 1) {
    scan_rows_kernel<T><<<static_cast<unsigned>((a.rows + kThreads - 1) / kThreads), kThreads, 0, s>>>(a);
  } else {
    scan_block_kernel<T><<<static_cast<unsigned>(a.rows), kThreads, 0, s>>>(a);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void register_scan(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG(t)                                                   \
  reg.add("cumsum", b, KernelKey{DType::t}, &scan_k<DType::t, false>);  \
  reg.add("cumprod", b, KernelKey{DType::t}, &scan_k<DType::t, true>);
  FLAGOS_REG(f32) FLAGOS_REG(f64) FLAGOS_REG(f16) FLAGOS_REG(bf16) FLAGOS_REG(i8) FLAGOS_REG(u8) FLAGOS_REG(i16)
  FLAGOS_REG(i32) FLAGOS_REG(i64) FLAGOS_REG(boolean)
#undef FLAGOS_REG
}

}  // namespace flagos::cuda
