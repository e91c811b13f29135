// Helpers shared by the LLM kernels of the CUDA backend (src/backends/cuda/llm/*.cu): element
// loads/stores through f32 (f64 stays f64), NaN-propagating max, block reductions of pairs,
// stream-ordered workspaces, 16-byte vector access checks and the per-file registration hooks.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/cuda_common.cuh"
#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/tensor.h"

namespace flagos::cuda::llm {

// ---------------------------------------------------------------- element access (any float type)
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ double to_f(double v) { return v; }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ double from_f<double>(float v) { return v; }

// Compute type: double for f64 storage, float otherwise.
template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T, typename C>
__device__ __forceinline__ T store_c(C v) {
  if constexpr (std::is_same_v<T, double>) return static_cast<double>(v);
  else return from_f<T>(static_cast<float>(v));
}

// NaN-propagating max (a NaN in either operand wins).
template <typename C>
__device__ __forceinline__ C nan_max(C a, C b) {
  return (b > a || b != b) ? b : a;
}

// Sum over the block of one value per thread; every thread gets the result. Works for any
// blockDim.x that is a multiple of 32 (<= 1024).
template <typename C>
__device__ __forceinline__ C block_sum(C v, C* scratch) {
  return block_reduce(v, SumOp{}, C(0), scratch);
}
template <typename C>
__device__ __forceinline__ C block_max_nan(C v, C* scratch) {
  struct Op {
    __device__ __forceinline__ C operator()(C a, C b) const { return nan_max(a, b); }
  };
  return block_reduce(v, Op{}, C(-INFINITY), scratch);
}

// Element strides of a tensor dim (byte stride / itemsize).
inline int64_t est(const Tensor& t, int d) { return t.stride(d) / static_cast<int64_t>(t.itemsize()); }

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// A stream-ordered scratch buffer on the kernel's device: freed memory goes back to the caching
// allocator of the (current) stream the kernel runs on, so it is reused in order.
inline Tensor workspace(const KernelArgs& a, int64_t bytes) {
  return Tensor::empty(Shape{bytes > 0 ? bytes : 1}, DType::u8, a.stream.device());
}

inline unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// Per-file registration (one function per .cu file, called from register.cu).
void register_norm(KernelRegistry& reg, uint16_t b);
void register_act(KernelRegistry& reg, uint16_t b);
void register_rope(KernelRegistry& reg, uint16_t b);
void register_softmax(KernelRegistry& reg, uint16_t b);
void register_quant(KernelRegistry& reg, uint16_t b);
void register_embedding(KernelRegistry& reg, uint16_t b);
void register_gemm(KernelRegistry& reg, uint16_t b);
void register_linear(KernelRegistry& reg, uint16_t b);
void register_attention(KernelRegistry& reg, uint16_t b);
void register_paged(KernelRegistry& reg, uint16_t b);
void register_sampling(KernelRegistry& reg, uint16_t b);

// Whether sm_90a-only kernels (wgmma, TMA, setmaxnreg, bulk copies) can run on `device`: this file
// was compiled with sm_90a code (FLAGOS_CUDA_SM90A, set per file by the build) and the device is of
// compute capability 9.x. Internal linkage: the answer depends on the including file's flags.
static inline bool sm90a_device(int device) {
#ifdef FLAGOS_CUDA_SM90A
  return compute_major(device) == 9;
#else
  (void)device;
  return false;
#endif
}

}  // namespace flagos::cuda::llm
