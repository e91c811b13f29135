// The reduction driver shared by reduce.cu and reduce_stats.cu. Kernels get in[0] = [outer, inner]
// (any byte strides) and out[0] (out[1]: i64 indices for max/min) = [outer] (any stride); see
// src/ops/reduce.cpp. A reducer R supplies State, init(), add(state, value, j), combine(a, b)
// (associative and commutative: index ties are settled by index, so any grouping gives the same
// answer) and finish(state, count, out0, out1).
//
// Two layouts, one kernel: rows (the reduced dim is the fast one, or the general case) give each
// row a group of 32..256 threads that stride along it and combine in shared memory; columns (the
// kept dim is contiguous, the reduced one strided: sum over dim 0 of a row-major matrix) give each
// row one thread walking the reduced dim, so neighbouring threads read neighbouring addresses.
// Long reduced dims are split over blockIdx.y into segments whose states a second kernel combines
// in a fixed order (deterministic results, no atomics).
#pragma once
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace flagos::cuda {

struct ReduceArgs {
  const char* in = nullptr;
  int64_t outer = 0, inner = 0, rs = 0, cs = 0;  // byte strides of in
  char* out0 = nullptr;
  char* out1 = nullptr;
  int64_t os0 = 0, os1 = 0;
  int64_t seg = 0;  // reduced elements per segment
  int splits = 1;   // segments per row (gridDim.y)
  int group = 256;  // threads per row (row layout)
  bool column = false;
  void* partial = nullptr;  // [outer, splits] states when splits > 1
};

template <typename R, typename S>
__device__ __forceinline__ void reduce_emit(const ReduceArgs& a, const R& r, const S& st, int64_t row) {
  if (a.splits == 1)
    r.finish(st, a.inner, a.out0 + row * a.os0, a.out1 ? a.out1 + row * a.os1 : nullptr);
  else
    static_cast<S*>(a.partial)[row * a.splits + blockIdx.y] = st;
}

// Adds elements j0, j0 + step, ... < j1 of one row in order, four loads in flight at a time.
template <typename T, typename R, typename S>
__device__ __forceinline__ void reduce_run(const R& r, S& st, const char* p, int64_t cs, int64_t j0, int64_t j1,
                                           int64_t step) {
  int64_t j = j0;
  for (; j + 3 * step < j1; j += 4 * step) {
    const auto v0 = load(reinterpret_cast<const T*>(p + j * cs));
    const auto v1 = load(reinterpret_cast<const T*>(p + (j + step) * cs));
    const auto v2 = load(reinterpret_cast<const T*>(p + (j + 2 * step) * cs));
    const auto v3 = load(reinterpret_cast<const T*>(p + (j + 3 * step) * cs));
    r.add(st, v0, j);
    r.add(st, v1, j + step);
    r.add(st, v2, j + 2 * step);
    r.add(st, v3, j + 3 * step);
  }
  for (; j < j1; j += step) r.add(st, load(reinterpret_cast<const T*>(p + j * cs)), j);
}

template <typename T, typename R>
__global__ void __launch_bounds__(kThreads) reduce_kernel(ReduceArgs a, R r) {
  using S = typename R::State;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * a.seg;
  const int64_t j1 = j0 + a.seg < a.inner ? j0 + a.seg : a.inner;
  if (a.column) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
    if (row >= a.outer) return;
    S st = r.init();
    reduce_run<T>(r, st, a.in + row * a.rs, a.cs, j0, j1, 1);
    reduce_emit(a, r, st, row);
    return;
  }
  __shared__ alignas(16) unsigned char raw[kThreads * sizeof(S)];
  S* sm = reinterpret_cast<S*>(raw);
  const int g = a.group, lane = static_cast<int>(threadIdx.x) & (g - 1);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / g) + threadIdx.x / g;
  S st = r.init();
  if (row < a.outer) reduce_run<T>(r, st, a.in + row * a.rs, a.cs, j0 + lane, j1, g);
  sm[threadIdx.x] = st;
  __syncthreads();
  for (int s = g / 2; s > 0; s >>= 1) {
    if (lane < s) sm[threadIdx.x] = r.combine(sm[threadIdx.x], sm[threadIdx.x + s]);
    __syncthreads();
  }
  if (lane == 0 && row < a.outer) reduce_emit(a, r, sm[threadIdx.x], row);
}

template <typename R>
__global__ void __launch_bounds__(kThreads) reduce_finish_kernel(ReduceArgs a, R r) {
  using S = typename R::State;
  const int64_t row = global_thread();
  if (row >= a.outer) return;
  const S* part = static_cast<const S*>(a.partial) + row * a.splits;
  S st = part[0];
  for (int k = 1; k < a.splits; ++k) st = r.combine(st, part[k]);
  r.finish(st, a.inner, a.out0 + row * a.os0, a.out1 ? a.out1 + row * a.os1 : nullptr);
}

template <typename T, typename R>
void run_reduce(const KernelArgs& args, const R& r) {
  using S = typename R::State;
  const Tensor& x = *args.in[0];
  ReduceArgs a;
  a.outer = x.size(0);
  a.inner = x.size(1);
  if (a.outer == 0) return;
  cudaStream_t stream = kernel_stream(args);
  const int dev = x.device().index;
  a.in = static_cast<const char*>(x.data());
  a.rs = x.stride(0);
  a.cs = x.stride(1);
  a.out0 = static_cast<char*>(args.out[0]->data());
  a.os0 = args.out[0]->stride(0);
  if (args.out.size() > 1) {
    a.out1 = static_cast<char*>(args.out[1]->data());
    a.os1 = args.out[1]->stride(0);
  }
  const int64_t es = static_cast<int64_t>(sizeof(T));
  const int64_t target = int64_t{sm_count(dev)} * 8;  // blocks of one full wave
  a.column = a.inner > 1 && a.outer > 1 && a.cs != es && a.rs == es;
  int64_t gx, splits;
  if (a.column) {
    gx = (a.outer + kThreads - 1) / kThreads;
    splits = std::clamp<int64_t>(target / gx, 1, std::max<int64_t>(1, a.inner / 64));
  } else {
    int g = 32;
    while (g < kThreads && g < a.inner) g *= 2;
    a.group = g;
    gx = (a.outer + (kThreads / g) - 1) / (kThreads / g);
    splits = g == kThreads ? std::clamp<int64_t>(target / gx, 1, std::max<int64_t>(1, a.inner / (kThreads * 8))) : 1;
  }
  splits = std::min<int64_t>(splits, 65535);
  a.seg = splits > 1 ? (a.inner + splits - 1) / splits : a.inner;
  if (splits > 1) splits = (a.inner + a.seg - 1) / a.seg;
  a.splits = static_cast<int>(splits);
  Tensor partial;
  if (a.splits > 1) {
    partial = Tensor::empty({a.outer * splits * static_cast<int64_t>(sizeof(S))}, DType::u8, x.device());
    a.partial = partial.data();
  }
  reduce_kernel<T, R><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(splits)), kThreads, 0, stream>>>(a, r);
  CUDA_CHECK_LAUNCH();
  if (a.splits > 1) {
    reduce_finish_kernel<R><<<grid_for(a.outer, dev), kThreads, 0, stream>>>(a, r);
    CUDA_CHECK_LAUNCH();
  }
}

// Stores a reducer's result (computed in C) as the output element type T.
template <typename T, typename C>
__device__ __forceinline__ void store_result(char* p, C v) {
  store(reinterpret_cast<T*>(p), static_cast<acc_t<T>>(v));
}

#define FLAGOS_CUDA_FLOATS(X) X(f32) X(f64) X(f16) X(bf16)
#define FLAGOS_CUDA_INTS(X) X(i8) X(u8) X(i16) X(i32) X(i64)

}  // namespace flagos::cuda
