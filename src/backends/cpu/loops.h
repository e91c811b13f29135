// Strided iteration shared by CPU kernels: coalesces dims of tensors with one shape and walks
// them as 1-D runs (innermost dim), split across the thread pool.
#pragma once
#include <cstdint>
#include <cstring>

#include "backends/cpu/thread_pool.h"
#include "flagos/tensor.h"

namespace flagos::cpu {

// Elements per parallel task for cheap elementwise work.
inline constexpr int64_t kElementwiseGrain = 32768;

template <int N>
struct LoopPlan {
  int ndim = 0;                     // after coalescing; innermost last
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};  // bytes
  char* base[N] = {};
  int64_t numel = 0;
};

// All tensors must have the same shape (inputs already broadcast by the op layer).
template <int N>
LoopPlan<N> plan_loop(const Tensor* const (&ts)[N]) {
  LoopPlan<N> p;
  const Shape& s = ts[0]->shape();
  p.numel = ts[0]->numel();
  for (int k = 0; k < N; ++k) p.base[k] = static_cast<char*>(ts[k]->data());
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == 1) continue;
    const int d = p.ndim;
    if (d > 0) {  // merge with the previous dim when every tensor is contiguous across the pair
      bool merge = true;
      for (int k = 0; k < N; ++k)
        if (p.strides[k][d - 1] != ts[k]->stride(i) * s[i]) merge = false;
      if (merge) {
        p.shape[d - 1] *= s[i];
        for (int k = 0; k < N; ++k) p.strides[k][d - 1] = ts[k]->stride(i);
        continue;
      }
    }
    p.shape[d] = s[i];
    for (int k = 0; k < N; ++k) p.strides[k][d] = ts[k]->stride(i);
    ++p.ndim;
  }
  if (p.ndim == 0) {  // scalar or all size-1
    p.ndim = 1;
    p.shape[0] = p.numel;
    for (int k = 0; k < N; ++k) p.strides[k][0] = 0;
  }
  return p;
}

// fn(char* ptr[N], const int64_t stride[N], int64_t count) over every innermost run.
template <int N, typename F>
void for_each_run(const LoopPlan<N>& p, int64_t grain, F&& fn) {
  if (p.numel == 0) return;
  const int d = p.ndim;
  const int64_t inner = p.shape[d - 1];
  int64_t inner_stride[N];
  for (int k = 0; k < N; ++k) inner_stride[k] = p.strides[k][d - 1];
  // Split by elements: a task covers a range of flat element indices.
  auto body = [&](int64_t begin, int64_t end) {
    int64_t idx[kMaxDims] = {};
    int64_t rem = begin;
    for (int i = d - 1; i >= 0; --i) {
      idx[i] = rem % p.shape[i];
      rem /= p.shape[i];
    }
    char* ptr[N];
    for (int k = 0; k < N; ++k) {
      ptr[k] = p.base[k];
      for (int i = 0; i < d; ++i) ptr[k] += idx[i] * p.strides[k][i];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t cnt = std::min(inner - idx[d - 1], end - pos);
      fn(ptr, inner_stride, cnt);
      pos += cnt;
      // advance: move to the next run
      for (int k = 0; k < N; ++k) ptr[k] += cnt * inner_stride[k];
      idx[d - 1] += cnt;
      for (int i = d - 1; i > 0 && idx[i] == p.shape[i]; --i) {
        idx[i] = 0;
        ++idx[i - 1];
        for (int k = 0; k < N; ++k) ptr[k] += p.strides[k][i - 1] - p.shape[i] * p.strides[k][i];
      }
    }
  };
  parallel_for(p.numel, grain, body);
}

template <int N, typename F>
void for_each_run(const Tensor* const (&ts)[N], int64_t grain, F&& fn) {
  for_each_run<N>(plan_loop<N>(ts), grain, std::forward<F>(fn));
}

// Typed element load/store converting through float (f16/bf16 computed in f32).
template <typename T>
struct Io {
  using compute = T;
  static T load(const void* p) { T v; std::memcpy(&v, p, sizeof(T)); return v; }
  static void store(void* p, T v) { std::memcpy(p, &v, sizeof(T)); }
};
template <>
struct Io<f16> {
  using compute = float;
  static float load(const void* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }
  static void store(void* p, float v) { const uint16_t h = f32_to_f16(v); std::memcpy(p, &h, 2); }
};
template <>
struct Io<bf16> {
  using compute = float;
  static float load(const void* p) { uint16_t h; std::memcpy(&h, p, 2); return bf16_to_f32(h); }
  static void store(void* p, float v) { const uint16_t h = f32_to_bf16(v); std::memcpy(p, &h, 2); }
};

// C++ storage type for a dtype (bool as uint8_t with values 0/1).
template <DType D> struct StorageOf;
template <> struct StorageOf<DType::f32> { using type = float; };
template <> struct StorageOf<DType::f64> { using type = double; };
template <> struct StorageOf<DType::f16> { using type = f16; };
template <> struct StorageOf<DType::bf16> { using type = bf16; };
template <> struct StorageOf<DType::i8> { using type = int8_t; };
template <> struct StorageOf<DType::u8> { using type = uint8_t; };
template <> struct StorageOf<DType::i16> { using type = int16_t; };
template <> struct StorageOf<DType::i32> { using type = int32_t; };
template <> struct StorageOf<DType::i64> { using type = int64_t; };
template <> struct StorageOf<DType::boolean> { using type = uint8_t; };

}  // namespace flagos::cpu
