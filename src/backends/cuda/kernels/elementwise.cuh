// The elementwise kernel shared by the copy, unary and binary families: out[i] = f(in_0[i], ...,
// in_{N-1}[i], i) over tensors of one shape (inputs already broadcast). Contiguous, 16-byte
// aligned operands take a vectorized path (one 16-byte pack per thread per step); anything else
// goes through the strided indexer. Both paths are in one kernel to keep instantiations few.
#pragma once
#include <array>

#include "backends/cuda/cuda_common.cuh"

namespace flagos::cuda {

template <int N>
struct MapArgs {
  int64_t n = 0;
  char* out = nullptr;
  const char* in[N > 0 ? N : 1] = {};
  bool vec = false;
  Indexer<N + 1> ix;  // operand 0 is the output
};

inline constexpr int kUnroll = 4;

template <typename Out, typename In>
inline constexpr int kMapVec = static_cast<int>(16 / (sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out)));

// F: `__device__ Out operator()(const In* v, int64_t i) const` with v holding the N input values.
template <typename Out, typename In, int N, typename F>
__global__ void __launch_bounds__(kThreads) map_kernel(MapArgs<N> a, F f) {
  constexpr int V = kMapVec<Out, In>;
  constexpr int M = N > 0 ? N : 1;
  const int64_t step = grid_threads();
  if (a.vec) {
    // kUnroll independent 16-byte loads per thread before any store: enough bytes in flight to
    // cover HBM latency with one full wave of threads.
    const int64_t nv = a.n / V;
    for (int64_t base = global_thread(); base < nv; base += step * kUnroll) {
      Pack<In, V> x[kUnroll][M];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * step;
#pragma unroll
        for (int k = 0; k < N; ++k)
          if (i < nv) x[u][k] = reinterpret_cast<const Pack<In, V>*>(a.in[k])[i];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * step;
        if (i >= nv) break;
        Pack<Out, V> y;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          In v[M];
#pragma unroll
          for (int k = 0; k < N; ++k) v[k] = x[u][k].v[j];
          y.v[j] = f(v, i * V + j);
        }
        reinterpret_cast<Pack<Out, V>*>(a.out)[i] = y;
      }
    }
    for (int64_t i = nv * V + global_thread(); i < a.n; i += step) {
      In v[M];
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] = reinterpret_cast<const In*>(a.in[k])[i];
      reinterpret_cast<Out*>(a.out)[i] = f(v, i);
    }
    return;
  }
  for (int64_t i = global_thread(); i < a.n; i += step) {
    int64_t off[N + 1];
    a.ix.offsets(i, off);
    In v[M];
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = *reinterpret_cast<const In*>(a.in[k] + off[k + 1]);
    *reinterpret_cast<Out*>(a.out + off[0]) = f(v, i);
  }
}

// Runs f over `out` (any strides) and N inputs of out's shape (any strides, stride 0 for broadcast).
template <typename Out, typename In, int N, typename F>
void launch_map(const Tensor& out, const std::array<const Tensor*, N>& in, cudaStream_t stream, const F& f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  constexpr int V = kMapVec<Out, In>;
  MapArgs<N> m;
  m.n = n;
  m.out = static_cast<char*>(out.data());
  bool vec = out.is_contiguous() && aligned_to(out.data(), sizeof(Pack<Out, V>));
  for (int k = 0; k < N; ++k) {
    m.in[k] = static_cast<const char*>(in[static_cast<size_t>(k)]->data());
    vec = vec && in[static_cast<size_t>(k)]->is_contiguous() &&
          aligned_to(in[static_cast<size_t>(k)]->data(), sizeof(Pack<In, V>));
  }
  m.vec = vec;
  if (!vec) {
    std::array<const Strides*, N + 1> st;
    st[0] = &out.strides();
    for (int k = 0; k < N; ++k) st[static_cast<size_t>(k) + 1] = &in[static_cast<size_t>(k)]->strides();
    m.ix = make_indexer<N + 1>(out.shape(), st);
  }
  const unsigned grid = grid_for(vec ? (n / V + kUnroll - 1) / kUnroll + 1 : n, out.device().index);
  map_kernel<Out, In, N, F><<<grid, kThreads, 0, stream>>>(m, f);
  CUDA_CHECK_LAUNCH();
}

}  // namespace flagos::cuda
