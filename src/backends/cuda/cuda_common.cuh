// Device-side helpers shared by every CUDA kernel file (kernels/*.cu, llm/*.cu): dtype traits
// (f32 / f64 / __half / __nv_bfloat16 / integers / bool, 16-bit floats loaded and stored as f32),
// a strided indexer for up to 8-dim tensors with byte strides, grid-size helpers, 16-byte vector
// packs, and warp/block reductions. Host-side checks (CUDA_CHECK, CUDA_CHECK_LAUNCH,
// kernel_stream) come from cuda_check.h.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "backends/cuda/cuda_check.h"
#include "flagos/tensor.h"

namespace flagos::cuda {

// ---------------------------------------------------------------- dtype traits
// The C++ type of each plain dtype (bool is stored as one byte holding 0 or 1).
template <DType D> struct TypeOf;
template <> struct TypeOf<DType::f32> { using type = float; };
template <> struct TypeOf<DType::f64> { using type = double; };
template <> struct TypeOf<DType::f16> { using type = __half; };
template <> struct TypeOf<DType::bf16> { using type = __nv_bfloat16; };
template <> struct TypeOf<DType::i8> { using type = int8_t; };
template <> struct TypeOf<DType::u8> { using type = uint8_t; };
template <> struct TypeOf<DType::i16> { using type = int16_t; };
template <> struct TypeOf<DType::i32> { using type = int32_t; };
template <> struct TypeOf<DType::i64> { using type = int64_t; };
template <> struct TypeOf<DType::boolean> { using type = bool; };
template <DType D> using type_of = typename TypeOf<D>::type;

// The type arithmetic is done in: f32 for 16-bit floats, the type itself otherwise.
template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<__half> { using type = float; };
template <> struct AccOf<__nv_bfloat16> { using type = float; };
template <typename T> using acc_t = typename AccOf<T>::type;

template <typename T>
inline constexpr bool is_float_v = std::is_floating_point_v<T> || std::is_same_v<T, __half> ||
                                   std::is_same_v<T, __nv_bfloat16>;

#define FLAGOS_HD __host__ __device__ __forceinline__

template <typename T>
FLAGOS_HD acc_t<T> load(const T* p) { return *p; }
FLAGOS_HD float load(const __half* p) { return __half2float(*p); }
FLAGOS_HD float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

template <typename T>
FLAGOS_HD void store(T* p, acc_t<T> v) { *p = v; }
FLAGOS_HD void store(__half* p, float v) { *p = __float2half_rn(v); }
FLAGOS_HD void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Value conversion between any two element types (the copy/cast op): floats go through f32
// (f64 directly), bool is `!= 0`, float -> integer truncates toward zero.
template <typename To, typename From>
FLAGOS_HD To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, __half> || std::is_same_v<From, __nv_bfloat16>) {
    return convert<To>(load(&v));
  } else if constexpr (std::is_same_v<To, __half>) {
    return __float2half_rn(static_cast<float>(v));  // f64 too: through f32, as the CPU backend
  } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    // Saturating, NaN -> 0 (as the CPU backend).
    // (The bounds round to powers of two in From, so the comparisons are exact.)
    constexpr From lo = static_cast<From>(std::numeric_limits<To>::lowest());
    constexpr From hi = static_cast<From>(std::numeric_limits<To>::max());
    if (v != v) return To(0);
    if (v <= lo) return std::numeric_limits<To>::lowest();
    if (v >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);  // integer -> integer wraps; integer -> float rounds
  }
}

// ---------------------------------------------------------------- strided indexing
// Maps a linear element index (row-major over `size`) to byte offsets in N operands with
// arbitrary byte strides. Built on the host by make_indexer, which drops size-1 dims and merges
// dims that are contiguous in every operand, so most views index with one or two divisions.
template <int N>
struct Indexer {
  int ndim = 0;
  bool small = true;  // every size and the element count fit 32 bits: cheaper divisions
  int64_t size[kMaxDims] = {};
  int64_t stride[N][kMaxDims] = {};

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (ndim == 1) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i * stride[k][0];
    } else if (small) {
      uint32_t r = static_cast<uint32_t>(i);
      for (int d = ndim - 1; d >= 0; --d) {
        const uint32_t s = static_cast<uint32_t>(size[d]);
        const uint32_t q = r / s;
        const int64_t c = r - q * s;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
        r = q;
      }
    } else {
      for (int d = ndim - 1; d >= 0; --d) {
        const int64_t q = i / size[d];
        const int64_t c = i - q * size[d];
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
        i = q;
      }
    }
  }
};

// An indexer over `shape` for N operands given by their byte strides (same rank as shape).
template <int N>
Indexer<N> make_indexer(const Shape& shape, const std::array<const Strides*, N>& strides) {
  Indexer<N> ix;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int prev = ix.ndim - 1;
    bool merge = prev >= 0;
    for (int k = 0; k < N && merge; ++k) merge = ix.stride[k][prev] == (*strides[k])[d] * shape[d];
    if (merge) {
      ix.size[prev] *= shape[d];
      for (int k = 0; k < N; ++k) ix.stride[k][prev] = (*strides[k])[d];
      continue;
    }
    ix.size[ix.ndim] = shape[d];
    for (int k = 0; k < N; ++k) ix.stride[k][ix.ndim] = (*strides[k])[d];
    ++ix.ndim;
  }
  ix.small = shape.numel() <= int64_t{0xffffffff};
  return ix;
}

// True when every tensor is contiguous (the vectorized fast paths).
inline bool all_contiguous(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (!t->is_contiguous()) return false;
  return true;
}

// ---------------------------------------------------------------- launch geometry
inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `n` items with `threads` per block: enough to fill the
// device a few times over, never more than the work needs.
inline unsigned grid_for(int64_t n, int device, int threads = kThreads) {
  const int64_t need = (n + threads - 1) / threads;
  const int64_t cap = int64_t{sm_count(device)} * 8;
  const int64_t g = need < cap ? need : cap;
  return static_cast<unsigned>(g > 0 ? g : 1);
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// V elements of T loaded/stored as one aligned vector access (16 bytes for V = 16 / sizeof(T)).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
template <typename T>
inline constexpr int kVec16 = static_cast<int>(16 / sizeof(T));

inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// ---------------------------------------------------------------- reductions
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduces one value per thread of the block; every thread gets the result. `scratch` holds
// 32 values; blockDim.x is a multiple of 32.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nwarps = static_cast<int>(blockDim.x >> 5);
  v = lane < nwarps ? scratch[lane] : identity;
  return warp_reduce(v, op);
}

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};

}  // namespace flagos::cuda
