// The fused sampler and multinomial on CUDA, with the CPU's pipeline (documented at ops::sample in
// src/ops/llm.cpp) and the counter-based draws of src/ops/random.h, so the same (seed, offset)
// gives the same ids as the CPU except where a draw falls within rounding of a bucket boundary
// (sums are reduced in a different order).
//
// sample: one block per row, the row's logits in an f32 workspace. Penalties count history ids
// with global atomics and apply once per distinct id (the thread that swaps the count back to 0).
// top-k: an exact radix select (8-bit digits of the 64-bit key (ordered logit, inverted id), so
// ties keep lower ids) finds the k-th best key; everything below is masked. Temperature divides
// the survivors; weights are exp(l - max) in double. top-p: candidates are narrowed like the CPU
// (weights >= 1e-3, 1e-6, ... until they hold the needed mass; the top-k survivors directly),
// sorted by key in shared memory (bitonic) and the nucleus threshold read off an exclusive scan;
// more than kMaxCand candidates (very flat distributions) take an exact bit-by-bit threshold
// search over the whole row (64 passes: slow but rare). min-p masks weights below min_p. The draw
// walks the survivors in id order: per-thread contiguous chunks, a block scan of the chunk sums,
// and the thread whose chunk crosses u * total finds the id.
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/op_params.h"
#include "ops/random.h"

namespace flagos::cuda::llm {
namespace {

constexpr int kSampleThreads = 1024;
constexpr int kMaxCand = 2048;

__device__ __forceinline__ uint32_t ord_f(float f) {
  if (f == 0.f) f = 0.f;  // -0 == +0
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
// Larger logit first, lower id on ties: a larger key is better.
__device__ __forceinline__ uint64_t key64(float f, int64_t i) {
  return (static_cast<uint64_t>(ord_f(f)) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(i));
}

// Exclusive scan of one double per thread over the block; returns the exclusive prefix and sets
// `total`. scratch: 33 doubles.
__device__ double block_exclusive_scan(double v, double* scratch, double& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  double incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const double n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    double w = lane < nw ? scratch[lane] : 0.0;
    double wi = w;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const double n = __shfl_up_sync(0xffffffffu, wi, o);
      if (lane >= o) wi += n;
    }
    if (lane < nw) scratch[lane] = wi - w;  // exclusive per warp
    if (lane == 31) scratch[32] = wi;
  }
  __syncthreads();
  total = scratch[32];
  return scratch[warp] + incl - v;
}

struct SampleSmem {
  double dscratch[33];
  int64_t iscratch[32];
  uint32_t hist[256];
  uint64_t ckey[kMaxCand];
  double cw[kMaxCand];
  int ncand;
  int64_t pick;
  uint64_t prefix;
  int rem;
  bool done;
};

// Index of the first surviving id (w > 0) whose running sum exceeds target, in id order; the last
// surviving id when rounding leaves target at the total; 0 when nothing survives.
template <typename W>
__device__ int64_t pick_in_order(int64_t n, W weight, double target, SampleSmem& sm) {
  const int64_t chunk = (n + blockDim.x - 1) / blockDim.x;
  const int64_t i0 = static_cast<int64_t>(threadIdx.x) * chunk, i1 = min(n, i0 + chunk);
  double ls = 0;
  int64_t last = -1;
  for (int64_t i = i0; i < i1; ++i) {
    const double w = weight(i);
    if (w > 0) {
      ls += w;
      last = i;
    }
  }
  if (threadIdx.x == 0) sm.pick = INT64_MAX;
  double total;
  const double excl = block_exclusive_scan(ls, sm.dscratch, total);
  if (ls > 0 && excl <= target && target < excl + ls) {
    double cum = excl;
    for (int64_t i = i0; i < i1; ++i) {
      const double w = weight(i);
      if (!(w > 0)) continue;
      cum += w;
      if (cum > target) {
        atomicMin(reinterpret_cast<unsigned long long*>(&sm.pick), static_cast<unsigned long long>(i));
        break;
      }
    }
  }
  const int64_t lastall = block_reduce(last, [](int64_t a, int64_t b) { return a > b ? a : b; }, int64_t{-1}, sm.iscratch);
  __syncthreads();
  const int64_t p = sm.pick;
  __syncthreads();
  if (p != INT64_MAX) return p;
  return lastall < 0 ? 0 : lastall;
}

// The k-th largest key64 over the row (exact radix select, 8-bit digits, early exit when the
// selected bucket holds exactly the remaining count: its lower bits are then free).
__device__ uint64_t kth_largest_key(const float* rb, int64_t V, int64_t k, SampleSmem& sm) {
  if (threadIdx.x == 0) {
    sm.prefix = 0;
    sm.rem = static_cast<int>(k);
    sm.done = false;
  }
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sm.hist[i] = 0;
    __syncthreads();
    const uint64_t prefix = sm.prefix;
    const uint64_t hi_mask = shift == 56 ? 0 : ~uint64_t{0} << (shift + 8);
    const int64_t steps = (V + blockDim.x - 1) / blockDim.x;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t i = s * blockDim.x + threadIdx.x;
      int digit = 256;
      if (i < V) {
        const uint64_t key = key64(rb[i], i);
        if ((key & hi_mask) == (prefix & hi_mask)) digit = static_cast<int>((key >> shift) & 255);
      }
      const unsigned peers = __match_any_sync(0xffffffffu, digit);
      if (digit < 256 && (threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&sm.hist[digit], __popc(peers));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t cum = 0;
      int sel = 0;
      for (int d = 255; d >= 0; --d) {
        if (cum + sm.hist[d] >= static_cast<uint32_t>(sm.rem)) {
          sel = d;
          break;
        }
        cum += sm.hist[d];
      }
      sm.rem -= static_cast<int>(cum);
      sm.prefix |= static_cast<uint64_t>(sel) << shift;
      if (sm.hist[sel] == static_cast<uint32_t>(sm.rem)) sm.done = true;
    }
    __syncthreads();
    if (sm.done) break;
  }
  const uint64_t r = sm.prefix;
  __syncthreads();
  return r;
}

// Sorts the candidates descending by key (bitonic over the next power of two, padded with key 0).
__device__ void sort_candidates(SampleSmem& sm, int n) {
  int np = 1;
  while (np < n) np <<= 1;
  for (int i = n + threadIdx.x; i < np; i += blockDim.x) {
    sm.ckey[i] = 0;
    sm.cw[i] = 0;
  }
  __syncthreads();
  for (int size = 2; size <= np; size <<= 1)
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < np; i += blockDim.x) {
        const int j = i ^ stride;
        if (j > i) {
          const bool up = (i & size) == 0;
          const uint64_t a = sm.ckey[i], b = sm.ckey[j];
          if (up ? a < b : a > b) {
            sm.ckey[i] = b;
            sm.ckey[j] = a;
            const double t = sm.cw[i];
            sm.cw[i] = sm.cw[j];
            sm.cw[j] = t;
          }
        }
      }
      __syncthreads();
    }
}

template <typename T, typename H>
__global__ void __launch_bounds__(kSampleThreads) sample_kernel(const T* logits, int64_t ls0, int64_t ls1, const H* hist,
                                                                int64_t hs0, int64_t hs1, int64_t L, int64_t V,
                                                                SamplerParams p, bool penalize, float* rowbuf,
                                                                int* counts, int64_t* out) {
  __shared__ SampleSmem sm;
  const int64_t r = blockIdx.x;
  float* rb = rowbuf + r * V;
  const int tid = threadIdx.x, nt = blockDim.x;
  for (int64_t i = tid; i < V; i += nt) {
    const float v = to_f(logits[r * ls0 + i * ls1]);
    rb[i] = v != v ? -INFINITY : v;
  }
  __syncthreads();
  // (1) penalties over the distinct history ids
  if constexpr (!std::is_same_v<H, void>) {
    if (penalize) {
      int* cnt = counts + r * V;
      const H* hr = hist + r * hs0;
      for (int64_t j = tid; j < L; j += nt) {
        const int64_t id = static_cast<int64_t>(hr[j * hs1]);
        if (id >= 0 && id < V) atomicAdd(&cnt[id], 1);
      }
      __syncthreads();
      for (int64_t j = tid; j < L; j += nt) {
        const int64_t id = static_cast<int64_t>(hr[j * hs1]);
        if (id < 0 || id >= V) continue;
        const int c = atomicExch(&cnt[id], 0);
        if (c <= 0) continue;
        float x = rb[id];
        if (p.repetition_penalty != 1.0f) x = x > 0 ? x / p.repetition_penalty : __fmul_rn(x, p.repetition_penalty);
        x = __fsub_rn(x, __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(c)), p.presence_penalty));
        rb[id] = x;
      }
      __syncthreads();
    }
  }
  // (2) greedy: argmax, first index on ties
  const bool topk = p.top_k > 0 && p.top_k < V;
  int64_t best = 0;
  if (p.temperature == 0.0f || topk) {
    float bv = -INFINITY;
    int64_t bi = INT64_MAX;
    for (int64_t i = tid; i < V; i += nt) {
      const float v = rb[i];
      if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
    }
    // reduce (value, index) pairs: larger value, then lower index
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
    }
    __syncthreads();
    if ((tid & 31) == 0) {
      sm.dscratch[tid >> 5] = bv;
      sm.iscratch[tid >> 5] = bi;
    }
    __syncthreads();
    if (tid == 0) {
      for (int w = 1; w < nt / 32; ++w) {
        const float ov = static_cast<float>(sm.dscratch[w]);
        const int64_t oi = sm.iscratch[w];
        if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
      }
      sm.pick = bi == INT64_MAX ? 0 : bi;
    }
    __syncthreads();
    best = sm.pick;
    __syncthreads();
    if (p.temperature == 0.0f) {
      if (tid == 0) out[r] = best;
      return;
    }
  }
  // (4) top-k (on the logits before temperature), then (3) temperature
  uint64_t thr_k = 0;
  if (topk) thr_k = kth_largest_key(rb, V, p.top_k, sm);
  float mx = -INFINITY;
  for (int64_t i = tid; i < V; i += nt) {
    const float v = rb[i];
    const float t = topk && key64(v, i) < thr_k ? -INFINITY : v / p.temperature;
    rb[i] = t;
    mx = fmaxf(mx, t);
  }
  mx = block_reduce(mx, [](float a, float b) { return fmaxf(a, b); }, -INFINITY, reinterpret_cast<float*>(sm.dscratch));
  if (mx == -INFINITY) {  // nothing to draw from: the first candidate
    if (tid == 0) out[r] = topk ? best : 0;
    return;
  }
  const double dmx = mx;
  auto weight = [&](int64_t i) {  // masked entries (-inf) skip the f64 exp
    const float v = rb[i];
    return v == -INFINITY ? 0.0 : exp(static_cast<double>(v) - dmx);
  };
  double total = 0;
  for (int64_t i = tid; i < V; i += nt) total += weight(i);
  total = block_sum(total, sm.dscratch);
  // (5) top-p
  if (p.top_p < 1.0f) {
    const double need = static_cast<double>(p.top_p) * total;
    double t = 0;  // candidates: weights >= t (top-k survivors: all of them)
    bool use_list = true;
    if (!topk || p.top_k > kMaxCand) {
      t = 1e-3;
      for (;;) {
        double mass = 0;
        int64_t cnt = 0;
        for (int64_t i = tid; i < V; i += nt) {
          const double w = weight(i);
          if (w >= t) mass += w, ++cnt;
        }
        mass = block_sum(mass, sm.dscratch);
        cnt = block_sum(cnt, sm.iscratch);
        if (mass >= need || t == 0) {
          use_list = cnt <= kMaxCand;
          break;
        }
        t = t < 1e-30 ? 0.0 : t * 1e-3;
      }
    }
    uint64_t thr_p = 0;
    if (use_list) {
      if (tid == 0) sm.ncand = 0;
      __syncthreads();
      for (int64_t i = tid; i < V; i += nt) {
        const double w = weight(i);
        if (w > 0 && w >= t) {
          const int pos = atomicAdd(&sm.ncand, 1);
          sm.ckey[pos] = key64(rb[i], i);
          sm.cw[pos] = w;
        }
      }
      __syncthreads();
      const int n = sm.ncand;
      sort_candidates(sm, n);
      // kept: positions p with p == 0 or (mass before p) < need; a prefix of the sorted list
      int np = 1;
      while (np < n) np <<= 1;
      const int per = (np + nt - 1) / nt;  // <= 2
      double local = 0;
      for (int q = 0; q < per; ++q) {
        const int pos = tid * per + q;
        if (pos < np) local += sm.cw[pos];
      }
      double tot;
      double excl = block_exclusive_scan(local, sm.dscratch, tot);
      int64_t kept = 0;
      for (int q = 0; q < per; ++q) {
        const int pos = tid * per + q;
        if (pos < n && (pos == 0 || excl < need)) ++kept;
        if (pos < np) excl += sm.cw[pos];
      }
      kept = block_sum(kept, sm.iscratch);
      thr_p = sm.ckey[kept > 0 ? kept - 1 : 0];
      __syncthreads();
    } else {
      // exact threshold: the largest key K with mass(keys >= K) >= need, bit by bit
      for (int bit = 63; bit >= 0; --bit) {
        const uint64_t cand = thr_p | (uint64_t{1} << bit);
        double mass = 0;
        for (int64_t i = tid; i < V; i += nt)
          if (key64(rb[i], i) >= cand) mass += weight(i);
        mass = block_sum(mass, sm.dscratch);
        if (mass >= need) thr_p = cand;
      }
    }
    for (int64_t i = tid; i < V; i += nt)
      if (key64(rb[i], i) < thr_p) rb[i] = -INFINITY;
    __syncthreads();
  }
  // (6) min-p relative to the max probability (weight 1)
  if (p.min_p > 0.0f) {
    for (int64_t i = tid; i < V; i += nt)
      if (weight(i) < static_cast<double>(p.min_p)) rb[i] = -INFINITY;
    __syncthreads();
  }
  // (7) draw over the survivors in id order
  double kept = total;
  if (p.top_p < 1.0f || p.min_p > 0.0f) {
    kept = 0;
    for (int64_t i = tid; i < V; i += nt) kept += weight(i);
    kept = block_sum(kept, sm.dscratch);
  }
  __syncthreads();
  const double u = random::uniform(p.seed, p.offset + static_cast<uint64_t>(r));
  const int64_t id = pick_in_order(V, weight, u * kept, sm);
  if (tid == 0) out[r] = id;
}

// ---------------------------------------------------------------- top-k fast path
//
// For top-k sampling (1 <= k <= kFastK, k < V) and greedy decoding (k = 1) every later step only
// sees the k best logits, so the row is reduced to them by the whole GPU first:
//  stage 1 (kTopkSlice logits per block, grid = slices x rows): the slice's keys (key64: larger
//    logit first, lower id on ties; NaN as -inf) in shared memory, its exact top min(k, n) by a
//    radix select over the keys (or a max for k = 1), written to a per-(row, slice) candidate list
//    padded with key 0 (below every real key);
//  stage 2 (one block per row): the exact k-th largest candidate key by the same radix select, the
//    k survivors gathered and ranked (sorted descending by key), then the CPU's pipeline on k values:
//    temperature, f64 weights exp(l - max), top-p prefix, min-p, and the draw in ascending id order
//    (sums taken sequentially in the CPU's order).
// Penalties, when present, are applied first to an f32 copy of the logits, which stage 1 then reads.
constexpr int kFastK = 1024;
constexpr int kTopkSlice = 4096;
constexpr int kTopkThreads = 512;
constexpr int kFinishThreads = 512;

__device__ __forceinline__ float key_logit(uint64_t key) {
  const uint32_t o = static_cast<uint32_t>(key >> 32);
  return __uint_as_float((o & 0x80000000u) ? (o & 0x7fffffffu) : ~o);
}
__device__ __forceinline__ int64_t key_id(uint64_t key) { return static_cast<int64_t>(~static_cast<uint32_t>(key)); }

struct RadixSmem {
  uint32_t hist[256];
  uint64_t prefix;
  int rem;
  bool done;
};

// The k-th largest of the n (distinct) keys key_at(0..n-1), 1 <= k <= n, by 8-bit digits from the
// top; stops early when the selected bucket holds exactly the keys still needed (its lower bits are
// then free): in every case exactly k keys are >= the result. All threads of the block call it.
template <typename KeyAt>
__device__ uint64_t radix_kth(int64_t n, int k, KeyAt key_at, RadixSmem& sm) {
  if (threadIdx.x == 0) {
    sm.prefix = 0;
    sm.rem = k;
    sm.done = false;
  }
  const int lane = threadIdx.x & 31;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sm.hist[i] = 0;
    __syncthreads();
    const uint64_t prefix = sm.prefix;
    const uint64_t hi_mask = shift == 56 ? 0 : ~uint64_t{0} << (shift + 8);
    const int64_t steps = (n + blockDim.x - 1) / blockDim.x;
    for (int64_t st = 0; st < steps; ++st) {
      const int64_t i = st * blockDim.x + threadIdx.x;
      int digit = 256;
      if (i < n) {
        const uint64_t key = key_at(i);
        if (((key ^ prefix) & hi_mask) == 0) digit = static_cast<int>((key >> shift) & 255);
      }
      const unsigned peers = __match_any_sync(0xffffffffu, digit);
      if (digit < 256 && lane == __ffs(peers) - 1) atomicAdd(&sm.hist[digit], static_cast<uint32_t>(__popc(peers)));
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // lane l holds digits 255 - 8l .. 248 - 8l (descending); find the digit where the count of
      // larger keys reaches rem
      const int rem = sm.rem;
      uint32_t h[8], local = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        h[i] = sm.hist[255 - 8 * lane - i];
        local += h[i];
      }
      uint32_t incl = local;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
      }
      const uint32_t excl = incl - local;
      if (excl < static_cast<uint32_t>(rem) && static_cast<uint32_t>(rem) <= incl) {
        uint32_t c = excl;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (c + h[i] >= static_cast<uint32_t>(rem)) {
            const int left = rem - static_cast<int>(c);
            sm.rem = left;
            sm.prefix = prefix | (static_cast<uint64_t>(255 - 8 * lane - i) << shift);
            sm.done = h[i] == static_cast<uint32_t>(left);
            break;
          }
          c += h[i];
        }
      }
    }
    __syncthreads();
    if (sm.done) break;
  }
  const uint64_t r = sm.prefix;
  __syncthreads();
  return r;
}

struct TopkSmem {
  uint64_t key[kTopkSlice];
  RadixSmem rs;
  unsigned long long red[32];
  int count;
};

// Stage 1: the top min(k, n) keys of slice blockIdx.x % nslices of row blockIdx.x / nslices.
template <typename T>
__global__ void __launch_bounds__(kTopkThreads) topk_stage1_kernel(const T* logits, int64_t ls0, int64_t ls1,
                                                                   int64_t V, int k, int64_t nslices,
                                                                   uint64_t* cand) {
  __shared__ TopkSmem sm;
  const int64_t r = blockIdx.x / nslices, sl = blockIdx.x - r * nslices;
  const int64_t i0 = sl * kTopkSlice;
  const int n = static_cast<int>(V - i0 < kTopkSlice ? V - i0 : kTopkSlice);
  uint64_t* out = cand + (r * nslices + sl) * k;
  const T* lr = logits + r * ls0;
  unsigned long long best = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = to_f(lr[(i0 + i) * ls1]);
    const uint64_t key = key64(v != v ? -INFINITY : v, i0 + i);
    sm.key[i] = key;
    best = key > best ? key : best;
  }
  if (k == 1) {
    best = block_reduce(best, [](unsigned long long a, unsigned long long b) { return a > b ? a : b; },
                        0ull, sm.red);
    if (threadIdx.x == 0) out[0] = best;
    return;
  }
  __syncthreads();
  if (n <= k) {  // the whole slice, padded
    for (int i = threadIdx.x; i < k; i += blockDim.x) out[i] = i < n ? sm.key[i] : 0;
    return;
  }
  const uint64_t thr = radix_kth(n, k, [&](int64_t i) { return sm.key[i]; }, sm.rs);
  if (threadIdx.x == 0) sm.count = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const uint64_t key = sm.key[i];
    if (key >= thr) {
      const int pos = atomicAdd(&sm.count, 1);
      if (pos < k) out[pos] = key;
    }
  }
}

struct FinishSmem {
  uint64_t top[kFastK];     // the k survivors (gather order)
  uint64_t sorted[kFastK];  // descending key
  double w[kFastK];         // weights, descending key order
  int32_t order[kFastK];    // kept positions (descending key order) sorted by ascending id
  RadixSmem rs;
  int count;
  int keep;
};

// Stage 2: one block per row over its nslices * k candidate keys.
__global__ void __launch_bounds__(kFinishThreads) topk_finish_kernel(const uint64_t* cand, int64_t nslices, int k,
                                                                     SamplerParams p, int64_t* out) {
  __shared__ FinishSmem sm;
  const int64_t r = blockIdx.x;
  const int tid = threadIdx.x, nt = blockDim.x;
  const uint64_t* cr = cand + r * nslices * k;
  const int64_t n = nslices * k;
  const uint64_t thr = n > k ? radix_kth(n, k, [&](int64_t i) { return cr[i]; }, sm.rs) : 1;
  if (tid == 0) sm.count = 0;
  __syncthreads();
  for (int64_t i = tid; i < n; i += nt) {
    const uint64_t key = cr[i];
    if (key != 0 && key >= thr) {
      const int pos = atomicAdd(&sm.count, 1);
      if (pos < k) sm.top[pos] = key;
    }
  }
  __syncthreads();
  const int kk = sm.count < k ? sm.count : k;  // == k (V > k real keys)
  // rank = number of larger keys (keys are distinct)
  for (int i = tid; i < kk; i += nt) {
    const uint64_t key = sm.top[i];
    int rank = 0;
    for (int j = 0; j < kk; ++j) rank += sm.top[j] > key;
    sm.sorted[rank] = key;
  }
  __syncthreads();
  if (p.temperature == 0.0f) {  // greedy: k = 1, the best key
    if (tid == 0) out[r] = kk > 0 ? key_id(sm.sorted[0]) : 0;
    return;
  }
  // (3) temperature; the max is the first (division by a positive number keeps the order)
  const float mx = key_logit(sm.sorted[0]) / p.temperature;
  if (mx == -INFINITY) {  // nothing to draw from: the first candidate
    if (tid == 0) out[r] = key_id(sm.sorted[0]);
    return;
  }
  for (int i = tid; i < kk; i += nt) {
    const float l = key_logit(sm.sorted[i]) / p.temperature;
    sm.w[i] = exp(static_cast<double>(l) - static_cast<double>(mx));
  }
  __syncthreads();
  // (5) top-p and (6) min-p on the descending list, sequentially as the CPU
  if (tid == 0) {
    int keep = kk;
    if (p.top_p < 1.0f) {
      double total = 0;
      for (int j = 0; j < kk; ++j) total += sm.w[j];
      const double need = static_cast<double>(p.top_p) * total;
      double before = 0;
      keep = 0;
      while (keep < kk && (keep == 0 || before < need)) before += sm.w[keep++];
    }
    if (p.min_p > 0.0f)
      for (int j = 0; j < keep; ++j)
        if (sm.w[j] < static_cast<double>(p.min_p)) sm.w[j] = 0;  // dropped (weights are > 0 otherwise)
    sm.keep = keep;
  }
  __syncthreads();
  const int keep = sm.keep;
  // survivors (w > 0 among the first keep) ranked by ascending id
  for (int i = tid; i < keep; i += nt) {
    if (!(sm.w[i] > 0)) continue;
    const int64_t id = key_id(sm.sorted[i]);
    int rank = 0;
    for (int j = 0; j < keep; ++j) rank += sm.w[j] > 0 && key_id(sm.sorted[j]) < id;
    sm.order[rank] = i;
  }
  __syncthreads();
  // (7) draw over the survivors in ascending id order
  if (tid == 0) {
    int ns = 0;
    for (int j = 0; j < keep; ++j) ns += sm.w[j] > 0;
    double kept = 0;
    for (int j = 0; j < ns; ++j) kept += sm.w[sm.order[j]];
    const double target = random::uniform(p.seed, p.offset + static_cast<uint64_t>(r)) * kept;
    double cum = 0;
    int64_t pick = -1;
    for (int j = 0; j < ns; ++j) {
      cum += sm.w[sm.order[j]];
      pick = key_id(sm.sorted[sm.order[j]]);
      if (cum > target) break;
    }
    out[r] = pick < 0 ? 0 : pick;
  }
}

// f32 copy of the logits (NaN as -inf) for the penalties.
template <typename T>
__global__ void copy_logits_kernel(const T* logits, int64_t ls0, int64_t ls1, int64_t B, int64_t V, float* rowbuf) {
  for (int64_t i = global_thread(); i < B * V; i += grid_threads()) {
    const int64_t r = i / V, c = i - r * V;
    const float v = to_f(logits[r * ls0 + c * ls1]);
    rowbuf[i] = v != v ? -INFINITY : v;
  }
}

// (1) penalties over the distinct history ids of row blockIdx.x, applied to rowbuf in place.
template <typename H>
__global__ void penalty_kernel(const H* hist, int64_t hs0, int64_t hs1, int64_t L, int64_t V, SamplerParams p,
                               float* rowbuf, int* counts) {
  const int64_t r = blockIdx.x;
  float* rb = rowbuf + r * V;
  int* cnt = counts + r * V;
  const H* hr = hist + r * hs0;
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    const int64_t id = static_cast<int64_t>(hr[j * hs1]);
    if (id >= 0 && id < V) atomicAdd(&cnt[id], 1);
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    const int64_t id = static_cast<int64_t>(hr[j * hs1]);
    if (id < 0 || id >= V) continue;
    const int c = atomicExch(&cnt[id], 0);
    if (c <= 0) continue;
    float x = rb[id];
    if (p.repetition_penalty != 1.0f) x = x > 0 ? x / p.repetition_penalty : __fmul_rn(x, p.repetition_penalty);
    x = __fsub_rn(x, __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(c)), p.presence_penalty));
    rb[id] = x;
  }
}

// Greedy in one launch (grid = slices x rows, kGreedyThreads): each block takes the max key64 of
// its kTopkSlice logits (NaN as -inf; the key order is the same as stage 1 + stage 2 above: larger
// logit, then lower id), thread 0 stores it in cand[row, slice], fences and takes a ticket from the
// row's counter; the block that takes the last ticket reads the row's partials (L2, after a fence)
// and writes the id. atomicInc wraps the counter back to 0 on the last ticket, so the next launch
// (or a graph replay) starts clean. The counters are one per row in an array owned by the stream
// (greedy_tickets below: launches on one stream never overlap, launches on two streams never share
// counters); rows beyond kGreedyTicketRows take the two-launch path.
constexpr int kGreedyThreads = 256;
constexpr int64_t kGreedyTicketRows = 4096;

template <typename T>
__global__ void __launch_bounds__(kGreedyThreads) greedy_kernel(const T* logits, int64_t ls0, int64_t ls1, int64_t V,
                                                                int64_t nslices, unsigned long long* cand,
                                                                unsigned int* ticket, int64_t* out) {
  __shared__ unsigned long long red[32];
  __shared__ bool last;
  const int64_t r = blockIdx.x / nslices, sl = blockIdx.x - r * nslices;
  const int64_t i0 = sl * kTopkSlice;
  const int n = static_cast<int>(V - i0 < kTopkSlice ? V - i0 : kTopkSlice);
  const T* lr = logits + r * ls0 + i0 * ls1;
  unsigned long long best = 0;
#pragma unroll 16  // a full slice: 16 independent loads per thread
  for (int i = threadIdx.x; i < n; i += kGreedyThreads) {
    const float v = to_f(lr[i * ls1]);
    const unsigned long long key = key64(v != v ? -INFINITY : v, i0 + i);
    best = key > best ? key : best;
  }
  best = block_reduce(best, [](unsigned long long a, unsigned long long b) { return a > b ? a : b; }, 0ull, red);
  unsigned long long* cr = cand + r * nslices;
  if (threadIdx.x == 0) {
    cr[sl] = best;
    __threadfence();
    const unsigned t = atomicInc(&ticket[r], static_cast<unsigned>(nslices - 1));
    last = nslices == 1 || t == static_cast<unsigned>(nslices - 1);
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  unsigned long long m = 0;
  for (int64_t j = threadIdx.x; j < nslices; j += kGreedyThreads) {
    const unsigned long long c = __ldcg(cr + j);
    m = c > m ? c : m;
  }
  m = block_reduce(m, [](unsigned long long a, unsigned long long b) { return a > b ? a : b; }, 0ull, red);
  if (threadIdx.x == 0) out[r] = m != 0 ? key_id(m) : 0;
}

bool greedy_old() {
  static const bool v = [] {
    const char* e = std::getenv("FLAGOS_CUDA_GREEDY_OLD");
    return e && e[0] == '1';
  }();
  return v;
}

// The zeroed ticket counters of `s` (kGreedyTicketRows of them, 16 KiB), made at the stream's first
// greedy launch and kept for the process (a reused stream handle finds its counters back at 0: every
// complete launch returns them there). nullptr while `s` is capturing a graph and has none yet (the
// caller takes the two-launch path: memory cannot be made and cleared inside a capture).
unsigned int* greedy_tickets(cudaStream_t s) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, unsigned int*> tickets;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  auto it = tickets.find({dev, s});
  if (it != tickets.end()) return it->second;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(s, &cap));
  if (cap != cudaStreamCaptureStatusNone) return nullptr;
  unsigned int* t = nullptr;
  CUDA_CHECK(cudaMalloc(&t, kGreedyTicketRows * sizeof(unsigned int)));
  CUDA_CHECK(cudaMemset(t, 0, kGreedyTicketRows * sizeof(unsigned int)));
  tickets.emplace(std::make_pair(dev, s), t);
  return t;
}

template <typename T>
void topk_sample(const T* logits, int64_t ls0, int64_t ls1, int64_t B, int64_t V, int k, const SamplerParams& p,
                 uint64_t* cand, int64_t* out, cudaStream_t s) {
  const int64_t nslices = (V + kTopkSlice - 1) / kTopkSlice;
  unsigned int* ticket = k == 1 && p.temperature == 0.0f && B <= kGreedyTicketRows && !greedy_old()
                             ? greedy_tickets(s)
                             : nullptr;
  if (ticket) {
    greedy_kernel<T><<<static_cast<unsigned>(B * nslices), kGreedyThreads, 0, s>>>(
        logits, ls0, ls1, V, nslices, reinterpret_cast<unsigned long long*>(cand), ticket, out);
    CUDA_CHECK_LAUNCH();
    return;
  }
  topk_stage1_kernel<T><<<static_cast<unsigned>(B * nslices), kTopkThreads, 0, s>>>(logits, ls0, ls1, V, k, nslices,
                                                                                    cand);
  CUDA_CHECK_LAUNCH();
  topk_finish_kernel<<<static_cast<unsigned>(B), kFinishThreads, 0, s>>>(cand, nslices, k, p, out);
  CUDA_CHECK_LAUNCH();
}

template <typename T, typename H>
void sample_launch(const KernelArgs& a) {
  const SamplerParams& p = a.p<SamplerParams>();
  const Tensor& logits = *a.in[0];
  const Tensor* hist = a.in.size() > 1 ? a.in[1] : nullptr;
  Tensor& out = *a.out[0];
  const int64_t B = logits.size(0), V = logits.size(1);
  const cudaStream_t s = kernel_stream(a);
  const bool penalize = hist && hist->size(1) > 0 &&
                        (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
  const int k = p.temperature == 0.0f ? 1 : (p.top_k > 0 && p.top_k < V && p.top_k <= kFastK ? p.top_k : 0);
  if (k > 0) {
    const int64_t nslices = (V + kTopkSlice - 1) / kTopkSlice;
    const int64_t cand_bytes = (B * nslices * k * 8 + 255) / 256 * 256;
    const int64_t rb_bytes = penalize ? (B * V * 4 + 255) / 256 * 256 : 0;
    Tensor ws = workspace(a, cand_bytes + (penalize ? rb_bytes + B * V * 4 : 0));
    auto* cand = static_cast<uint64_t*>(ws.data());
    int64_t* o = out.data_as<int64_t>();
    if constexpr (!std::is_same_v<H, void>) {
      if (penalize) {
        float* rowbuf = reinterpret_cast<float*>(static_cast<char*>(ws.data()) + cand_bytes);
        int* counts = reinterpret_cast<int*>(static_cast<char*>(ws.data()) + cand_bytes + rb_bytes);
        CUDA_CHECK(cudaMemsetAsync(counts, 0, static_cast<size_t>(B * V * 4), s));
        copy_logits_kernel<T><<<grid_for(B * V, a.stream.device().index), kThreads, 0, s>>>(
            logits.data_as<T>(), est(logits, 0), est(logits, 1), B, V, rowbuf);
        CUDA_CHECK_LAUNCH();
        penalty_kernel<H><<<static_cast<unsigned>(B), 256, 0, s>>>(hist->data_as<H>(), est(*hist, 0), est(*hist, 1),
                                                                  hist->size(1), V, p, rowbuf, counts);
        CUDA_CHECK_LAUNCH();
        topk_sample<float>(rowbuf, V, 1, B, V, k, p, cand, o, s);
        return;
      }
    }
    topk_sample<T>(logits.data_as<T>(), est(logits, 0), est(logits, 1), B, V, k, p, cand, o, s);
    return;
  }
  const int64_t rb_bytes = (B * V * 4 + 255) / 256 * 256;
  Tensor ws = workspace(a, rb_bytes + (penalize ? B * V * 4 : 0));
  float* rowbuf = static_cast<float*>(ws.data());
  int* counts = penalize ? reinterpret_cast<int*>(static_cast<char*>(ws.data()) + rb_bytes) : nullptr;
  if (penalize) CUDA_CHECK(cudaMemsetAsync(counts, 0, static_cast<size_t>(B * V * 4), s));
  const int64_t ls0 = est(logits, 0), ls1 = est(logits, 1);
  if constexpr (std::is_same_v<H, void>) {
    sample_kernel<T, void><<<static_cast<unsigned>(B), kSampleThreads, 0, s>>>(
        logits.data_as<T>(), ls0, ls1, nullptr, 0, 0, 0, V, p, false, rowbuf, counts, out.data_as<int64_t>());
  } else {
    sample_kernel<T, H><<<static_cast<unsigned>(B), kSampleThreads, 0, s>>>(
        logits.data_as<T>(), ls0, ls1, hist->data_as<H>(), est(*hist, 0), est(*hist, 1), hist->size(1), V, p, penalize,
        rowbuf, counts, out.data_as<int64_t>());
  }
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- multinomial

// One block per row. With replacement: the row's cdf (in id order) in a workspace, each sample a
// binary search (the first id whose cdf exceeds u * total). Without: samples one by one, each
// drawn from the remaining weights and then removed.
template <typename T>
__global__ void multinomial_kernel(const T* probs, int64_t ps0, int64_t ps1, int64_t C, RandomParams p, double* wbuf,
                                   int64_t* out, int64_t os0, int64_t os1) {
  __shared__ SampleSmem sm;
  const int64_t r = blockIdx.x;
  double* w = wbuf + r * C;
  const int tid = threadIdx.x, nt = blockDim.x;
  for (int64_t c = tid; c < C; c += nt) {
    const double v = static_cast<double>(to_f(probs[r * ps0 + c * ps1]));
    w[c] = v > 0 ? v : 0.0;
  }
  __syncthreads();
  const int64_t ns = p.num_samples;
  const uint64_t base = p.offset + static_cast<uint64_t>(r * ns);
  if (p.replacement) {
    // in-place inclusive scan of w into the cdf, chunk per thread
    const int64_t chunk = (C + nt - 1) / nt;
    const int64_t i0 = static_cast<int64_t>(tid) * chunk, i1 = min(C, i0 + chunk);
    double ls = 0;
    int64_t last = -1;
    for (int64_t i = i0; i < i1; ++i) {
      ls += w[i];
      if (w[i] > 0) last = i;
    }
    double total;
    double run = block_exclusive_scan(ls, sm.dscratch, total);
    __syncthreads();
    for (int64_t i = i0; i < i1; ++i) {
      run += w[i];
      w[i] = run;
    }
    const int64_t lastall = block_reduce(last, [](int64_t a, int64_t b) { return a > b ? a : b; }, int64_t{-1}, sm.iscratch);
    __syncthreads();
    for (int64_t s = tid; s < ns; s += nt) {
      const double target = random::uniform(p.seed, base + static_cast<uint64_t>(s)) * total;
      int64_t lo = 0, hi = C;  // first index with cdf > target
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (w[mid] > target) hi = mid;
        else lo = mid + 1;
      }
      out[r * os0 + s * os1] = lo >= C ? (lastall < 0 ? 0 : lastall) : lo;
    }
  } else {
    for (int64_t s = 0; s < ns; ++s) {
      double total = 0;
      for (int64_t c = tid; c < C; c += nt) total += w[c];
      total = block_sum(total, sm.dscratch);
      const double target = random::uniform(p.seed, base + static_cast<uint64_t>(s)) * total;
      const int64_t i = pick_in_order(C, [&](int64_t c) { return w[c]; }, target, sm);
      if (tid == 0) {
        w[i] = 0;
        out[r * os0 + s * os1] = i;
      }
      __syncthreads();
    }
  }
}

template <typename T>
void multinomial_launch(const KernelArgs& a) {
  const RandomParams& p = a.p<RandomParams>();
  const Tensor& probs = *a.in[0];
  Tensor& out = *a.out[0];
  const int64_t N = probs.size(0), C = probs.size(1);
  if (N == 0) return;
  const cudaStream_t s = kernel_stream(a);
  Tensor ws = workspace(a, N * C * 8);
  const int threads = C >= 4096 ? 1024 : 256;
  multinomial_kernel<T><<<static_cast<unsigned>(N), threads, 0, s>>>(probs.data_as<T>(), est(probs, 0), est(probs, 1),
                                                                    C, p, static_cast<double*>(ws.data()),
                                                                    out.data_as<int64_t>(), est(out, 0), est(out, 1));
  CUDA_CHECK_LAUNCH();
}

template <DType D>
void add_dtype(KernelRegistry& reg, uint16_t b) {
  using T = type_of<D>;
  reg.add("multinomial", b, KernelKey{D}, &multinomial_launch<T>);
  if constexpr (D != DType::f64) {
    reg.add("sample", b, KernelKey{D, DType::count_}, &sample_launch<T, void>);
    reg.add("sample", b, KernelKey{D, DType::i32}, &sample_launch<T, int32_t>);
    reg.add("sample", b, KernelKey{D, DType::i64}, &sample_launch<T, int64_t>);
  }
}

}  // namespace

void register_sampling(KernelRegistry& reg, uint16_t b) {
  add_dtype<DType::f32>(reg, b);
  add_dtype<DType::f64>(reg, b);
  add_dtype<DType::f16>(reg, b);
  add_dtype<DType::bf16>(reg, b);
}

}  // namespace flagos::cuda::llm
