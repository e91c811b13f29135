// Paged KV cache ops on CUDA. Nothing here reads device data on the host or synchronizes, and
// scratch memory comes from the caching allocator, so both ops can be captured in a CUDA graph.
//
// kv_cache_store: a thread per 16-byte piece of a (row, kv head) when rows are 16-byte aligned
// with unit feature stride, else a thread per element (any strides). Negative or out-of-range
// slots skip the row.
//
// paged_attention, tensor-core path (bf16/f16, D in {64, 128, 256}, unit feature strides, 16-byte
// aligned cache rows): a warp owns a tile of 16 "rows" of one (item, kv head): rows are (query
// position, query head of the GQA group) pairs, position-major, so each K/V byte a warp reads
// serves every head of the group (decode: the 7 heads of a 28/4 group in one tile). A block is one
// warp (decode), or 4 warps with consecutive row tiles of the same (item, kv head) sharing every
// K/V tile in shared memory when items average >= 4 row tiles (prefill: 4x less K/V traffic).
// Keys come in tiles of 32 (one per lane: the lane looks its key's block up in the block table,
// the warp shares the row offsets by shuffles), double-buffered in shared memory with cp.async;
// S = Q K^T and O += P V run on mma.sync m16n8k16 with f32 accumulation and an online softmax in
// registers (as attention_mma.cu). Grid = (item x kv head, row-tile slots, key splits): the item's
// row tiles are strided over the slots (their number is on the device), and each split takes an
// equal share of the item's keys (split-KV / flash-decoding when items x heads cannot fill the
// GPU, >= 64 keys each); split partials (max, sum, acc) are merged by a second kernel (a block per
// (row, head) reading all splits in parallel), which also zeros rows past q_start[B].
// Switches (read once per process), to turn a regression off without a rebuild:
//   FLAGOS_CUDA_PAGED_GENERIC=1    the general path for everything
//   FLAGOS_CUDA_PAGED_OLD_MERGE=1  the first version's merge kernel and split heuristic (>= 128 keys)
//   FLAGOS_CUDA_PAGED_ONE_WARP=1   one-warp blocks for prefill too (no K/V tile sharing)
//   FLAGOS_CUDA_PAGED_NO_D256=1    head dim 256 on the general path (and dense decode as before)
// General path (f32, other head dims, any strides): a warp per (query row, head), the owning item
// found by binary search over q_start, one key at a time (correct everywhere, not fast).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/mma.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda::llm {
namespace {

// ---------------------------------------------------------------- kv_cache_store

struct StoreArgs {
  const char* src[2];  // k, v
  char* dst[2];        // k_cache, v_cache
  const int32_t* slots;
  int64_t ss[2][3];    // byte strides of k, v
  int64_t cs[2][4];    // byte strides of the caches
  int64_t slot_stride;  // elements
  int64_t N, Hkv, D, bs, cap;
};

// VEC: one 16-byte piece per index (unit feature strides, aligned rows); else one element.
template <int ES, bool VEC>
__global__ void kv_store_kernel(StoreArgs a) {
  const int64_t U = VEC ? a.D * ES / 16 : a.D;
  const int64_t total = a.N * a.Hkv * U;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t u = i % U, nh = i / U, h = nh % a.Hkv, n = nh / a.Hkv;
    const int64_t slot = a.slots[n * a.slot_stride];
    if (slot < 0 || slot >= a.cap) continue;
    const int64_t blk = slot / a.bs, off = slot % a.bs;
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const char* s = a.src[t] + n * a.ss[t][0] + h * a.ss[t][1] + u * (VEC ? 16 : a.ss[t][2]);
      char* d = a.dst[t] + blk * a.cs[t][0] + h * a.cs[t][1] + off * a.cs[t][2] + u * (VEC ? 16 : a.cs[t][3]);
      if constexpr (VEC) {
        *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(s);
      } else if constexpr (ES == 4) {
        *reinterpret_cast<uint32_t*>(d) = *reinterpret_cast<const uint32_t*>(s);
      } else {
        *reinterpret_cast<uint16_t*>(d) = *reinterpret_cast<const uint16_t*>(s);
      }
    }
  }
}

// in: k, v, slots; out: k_cache, v_cache.
template <int ES>
void kv_cache_store_launch(const KernelArgs& a) {
  const Tensor* src[2] = {a.in[0], a.in[1]};
  const Tensor* dst[2] = {a.out[0], a.out[1]};
  const Tensor& slots = *a.in[2];
  StoreArgs sa{};
  bool vec = (src[0]->size(2) * ES) % 16 == 0;
  for (int t = 0; t < 2; ++t) {
    sa.src[t] = static_cast<const char*>(src[t]->data());
    sa.dst[t] = static_cast<char*>(dst[t]->data());
    for (int d = 0; d < 3; ++d) sa.ss[t][d] = src[t]->stride(d);
    for (int d = 0; d < 4; ++d) sa.cs[t][d] = dst[t]->stride(d);
    vec = vec && sa.ss[t][2] == ES && sa.cs[t][3] == ES && aligned16(sa.src[t]) && aligned16(sa.dst[t]);
    for (int d = 0; d < 2; ++d) vec = vec && sa.ss[t][d] % 16 == 0;
    for (int d = 0; d < 3; ++d) vec = vec && sa.cs[t][d] % 16 == 0;
  }
  sa.slots = slots.data_as<int32_t>();
  sa.slot_stride = est(slots, 0);
  sa.N = src[0]->size(0), sa.Hkv = src[0]->size(1), sa.D = src[0]->size(2);
  sa.bs = dst[0]->size(2), sa.cap = dst[0]->size(0) * sa.bs;
  const int64_t total = sa.N * sa.Hkv * (vec ? sa.D * ES / 16 : sa.D);
  if (total == 0) return;
  const cudaStream_t s = kernel_stream(a);
  const unsigned grid = grid_for(total, a.stream.device().index);
  if (vec)
    kv_store_kernel<ES, true><<<grid, kThreads, 0, s>>>(sa);
  else
    kv_store_kernel<ES, false><<<grid, kThreads, 0, s>>>(sa);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- paged_attention

struct PagedArgs {
  const void* q;
  void* o;
  const void* kc;
  const void* vc;
  const int32_t* bt;
  const int32_t* seq_lens;
  const int32_t* q_start;
  int64_t qs[3], os[3], ks[4], vs[4];   // element strides of q, o and the caches
  int64_t bts0, bts1, sls, qss;         // element strides of block_table, seq_lens, q_start
  int64_t N, B, Hq, Hkv, G, D, bs, nblocks, max_blocks;
  bool causal;
  int64_t window;
  float scale, scale_log2, cap;
  float* part_acc;  // [N * Hq][nsplit][D] (split only)
  float* part_ml;   // [N * Hq][nsplit][2]: max (log2 domain), sum
  int64_t dense_tk;  // > 0: dense decode (ops::attention with Tq = 1): item b = query row b, block b,
                     // dense_tk keys; block_table, seq_lens and q_start are unused
};

// One item as the kernels see it: query rows [q0, q0 + nq), keys [0, nk) (nk: seq_lens clamped to
// the block table), query row j at position off + j. Clamped so nothing is addressed out of bounds.
struct Item {
  int64_t q0, nq, nk, off;
};

__device__ __forceinline__ Item item_of(const PagedArgs& a, int64_t b) {
  if (a.dense_tk > 0) return Item{b, 1, a.dense_tk, a.dense_tk - 1};
  int64_t s = a.q_start[b * a.qss], e = a.q_start[(b + 1) * a.qss];
  s = min(max(s, int64_t{0}), a.N);
  e = min(max(e, s), a.N);
  const int64_t len = max(static_cast<int64_t>(a.seq_lens[b * a.sls]), int64_t{0});
  return Item{s, e - s, min(len, a.max_blocks * a.bs), len - (e - s)};
}

// Block of key p of item b, or -1 when the table holds an id outside [0, nblocks).
__device__ __forceinline__ int64_t block_of(const PagedArgs& a, int64_t b, int64_t p) {
  if (a.dense_tk > 0) return b;
  const int64_t blk = a.bt[b * a.bts0 + (p / a.bs) * a.bts1];
  return blk >= 0 && blk < a.nblocks ? blk : -1;
}

// ---- general path: a warp per (query row, head)
template <typename T>
__global__ void __launch_bounds__(128) paged_general_kernel(PagedArgs a) {
  constexpr int kPer = 16;  // D <= 512
  const int lane = threadIdx.x & 31;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (w >= a.N * a.Hq) return;
  const int64_t n = w / a.Hq, h = w % a.Hq, hkv = h / a.G;
  T* orow = static_cast<T*>(a.o) + n * a.os[0] + h * a.os[1];
  // the item owning row n: the last b with q_start[b] <= n (skips empty items)
  int64_t lo = 0, hi = a.B - 1, b = -1;
  while (lo <= hi) {
    const int64_t mid = (lo + hi) / 2;
    if (a.q_start[mid * a.qss] <= n) {
      b = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  float acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = 0.f;
  float l = 0.f;
  if (b >= 0) {
    const Item it = item_of(a, b);
    if (n >= it.q0 && n < it.q0 + it.nq) {
      const T* qrow = static_cast<const T*>(a.q) + n * a.qs[0] + h * a.qs[1];
      float qv[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int64_t d = lane + 32 * i;
        qv[i] = d < a.D ? to_f(qrow[d * a.qs[2]]) * a.scale : 0.f;
      }
      const int64_t qpos = it.off + (n - it.q0);
      int64_t kend = it.nk, kbeg = 0;
      if (a.causal) kend = min(kend, qpos + 1);
      if (a.window > 0) kbeg = max(kbeg, qpos - a.window + 1);
      const T* kb = static_cast<const T*>(a.kc) + hkv * a.ks[1];
      const T* vb = static_cast<const T*>(a.vc) + hkv * a.vs[1];
      float m = -INFINITY;
      for (int64_t p = kbeg; p < kend; ++p) {
        const int64_t blk = block_of(a, b, p);
        if (blk < 0) continue;  // bad block id: the key is skipped
        const T* kr = kb + blk * a.ks[0] + (p % a.bs) * a.ks[2];
        const T* vr = vb + blk * a.vs[0] + (p % a.bs) * a.vs[2];
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
          const int64_t d = lane + 32 * i;
          if (d < a.D) dot = fmaf(qv[i], to_f(kr[d * a.ks[3]]), dot);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        const float s = a.cap > 0.f ? a.cap * tanhf(dot / a.cap) : dot;
        const float mnew = fmaxf(m, s);
        const float alpha = expf(m - mnew);  // m = -inf -> 0
        const float pe = expf(s - mnew);
        l = l * alpha + pe;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
          const int64_t d = lane + 32 * i;
          acc[i] = acc[i] * alpha + (d < a.D ? pe * to_f(vr[d * a.vs[3]]) : 0.f);
        }
        m = mnew;
      }
    }
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < a.D) orow[d * a.os[2]] = from_f<T>(acc[i] * inv);
  }
}

// ---- tensor-core path
constexpr int kKeys = 32;        // keys per tile (one per lane)
constexpr int kMaxSplits = 64;
constexpr int kMinSplitKeys = 64;      // two key tiles: a split's loads are all in flight at once
constexpr int kOldMinSplitKeys = 128;  // FLAGOS_CUDA_PAGED_OLD_MERGE=1

// NW warps per block: warp w owns row tile (group * NW + w) of the block's group of NW tiles, and
// the warps share each K/V tile in shared memory (loaded by all of them, for the union of their
// key ranges; every score is still masked per row, and a warp skips the math of a key tile that
// none of its rows can see).
template <typename T, int D, int NW>
__global__ void __launch_bounds__(32 * NW) paged_mma_kernel(PagedArgs a) {
  constexpr int P = D + 8;     // padded smem row pitch (elements): conflict-free ldmatrix
  constexpr int KS = D / 16;   // k-steps over the head dim
  constexpr int NT = D / 8;    // n-tiles of the output
  constexpr int CPR = D / 8;   // 16-byte pieces per row
  static_assert(CPR % NW == 0, "paged_mma_kernel: 16-byte pieces of a key row split over the warps");
  constexpr bool QS = D > 128;  // Q fragments in shared memory (registers go to the D = 256 accumulators)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* ksm = reinterpret_cast<T*>(smem_raw);  // [2][kKeys][P]
  T* vsm = ksm + 2 * kKeys * P;              // [2][kKeys][P]
  // QS: [NW][KS][4][32] Q fragment words, each lane reading back only the words it wrote
  uint32_t* qf = reinterpret_cast<uint32_t*>(vsm + 2 * kKeys * P) + (threadIdx.x >> 5) * (KS * 4 * 32);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int64_t b = blockIdx.x / a.Hkv, hkv = blockIdx.x % a.Hkv;
  const Item it = item_of(a, b);
  const int64_t rows = it.nq * a.G, ntile = (rows + 15) / 16;
  const int64_t split = blockIdx.z, nsplit = gridDim.z;
  const int64_t split_len = ((it.nk + nsplit - 1) / nsplit + kKeys - 1) / kKeys * kKeys;
  const int64_t s_beg = split * split_len, s_end = min(it.nk, s_beg + split_len);
  const T* kb = static_cast<const T*>(a.kc) + hkv * a.ks[1];
  const T* vb = static_cast<const T*>(a.vc) + hkv * a.vs[1];

  for (int64_t grp = blockIdx.y; grp * NW < ntile; grp += gridDim.y) {  // uniform over the block
    const int64_t tile = grp * NW + warp;  // past ntile: the warp only helps load
    const int64_t r0 = tile * 16;
    const int64_t rr[2] = {r0 + g, r0 + g + 8};  // this thread's rows
    int64_t qpos[2], qn[2], qh[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int64_t r = rr[hr] < rows ? rr[hr] : rows - 1;  // rows past the item: a copy of the last (not stored)
      qpos[hr] = it.off + r / a.G;
      qn[hr] = it.q0 + r / a.G;
      qh[hr] = hkv * a.G + r % a.G;
    }
    // key range of the block's tiles within this split (uniform), and of this warp's tile
    int64_t kbeg = s_beg, kend = s_end, wbeg = s_beg, wend = s_end;
    {
      const int64_t g0 = grp * NW * 16;
      const int64_t jlo = g0 / a.G, jhi = (min(g0 + NW * 16, rows) - 1) / a.G;
      if (a.causal) kend = min(kend, it.off + jhi + 1);
      if (a.window > 0) kbeg = max(kbeg, it.off + jlo - a.window + 1);
      const int64_t wlo = min(r0, rows - 1) / a.G, whi = (min(r0 + 16, rows) - 1) / a.G;
      if (a.causal) wend = min(wend, it.off + whi + 1);
      if (a.window > 0) wbeg = max(wbeg, it.off + wlo - a.window + 1);
      if (r0 >= rows) wend = wbeg;  // no rows: no math
    }

    // Q fragments (A operand, row-major 16 x D) straight from global memory; padding rows are zeros
    uint32_t qa[QS ? 1 : KS][4];
    {
      const T* qp[2];
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) qp[hr] = static_cast<const T*>(a.q) + qn[hr] * a.qs[0] + qh[hr] * a.qs[1];
#pragma unroll
      for (int kk = 0; kk < KS; ++kk)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int hr = i & 1, col = kk * 16 + (i >> 1) * 8 + 2 * t4;
          const uint32_t qw = rr[hr] < rows ? *reinterpret_cast<const uint32_t*>(qp[hr] + col) : 0u;
          if constexpr (QS) qf[(kk * 4 + i) * 32 + lane] = qw;
          else qa[kk][i] = qw;
        }
    }
    float o[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};

    if (kend > kbeg) {
      const int64_t j00 = kbeg / kKeys * kKeys;
      const int64_t ntiles = (kend - j00 + kKeys - 1) / kKeys;
      // Loads the tile of keys [j0, j0 + 32) into buffer `buf`; returns the mask of valid keys.
      auto load = [&](int buf, int64_t j0) -> uint32_t {
        const int64_t p = j0 + lane;
        int64_t blk = -1;
        if (p >= kbeg && p < kend) blk = block_of(a, b, p);
        const int64_t koff = blk < 0 ? 0 : blk * a.ks[0] + (p % a.bs) * a.ks[2];
        const int64_t voff = blk < 0 ? 0 : blk * a.vs[0] + (p % a.bs) * a.vs[2];
        const uint32_t valid = __ballot_sync(0xffffffffu, blk >= 0);
        T* kd = ksm + buf * kKeys * P;
        T* vd = vsm + buf * kKeys * P;
#pragma unroll 4
        for (int c = 0; c < CPR / NW; ++c) {
          const int idx = (c * NW + warp) * 32 + lane, key = idx / CPR, ch = idx % CPR;
          const int64_t ko = __shfl_sync(0xffffffffu, koff, key), vo = __shfl_sync(0xffffffffu, voff, key);
          const int nb = (valid >> key) & 1u ? 16 : 0;
          cp_async16(kd + key * P + ch * 8, kb + ko + ch * 8, nb);
          cp_async16(vd + key * P + ch * 8, vb + vo + ch * 8, nb);
        }
        return valid;
      };
      uint32_t vmask[2];
      vmask[0] = load(0, j00);
      cp_async_commit();
      for (int64_t ti = 0; ti < ntiles; ++ti) {
        const int buf = static_cast<int>(ti & 1);
        const int64_t j0 = j00 + ti * kKeys;
        if (ti + 1 < ntiles) vmask[buf ^ 1] = load(buf ^ 1, j0 + kKeys);
        cp_async_commit();
        cp_async_wait_1();  // this tile's group is complete
        if constexpr (NW == 1) __syncwarp();
        else __syncthreads();  // every warp's pieces of the tile are in
        const T* kt = ksm + buf * kKeys * P;
        const T* vt = vsm + buf * kKeys * P;
        const uint32_t valid = vmask[buf];
        if (j0 < wend && j0 + kKeys > wbeg) {  // some key of the tile is in the warp's range (uniform over the warp)
          // ---- S = Q K^T (16 rows x 32 keys)
          float s[kKeys / 8][4];
#pragma unroll
          for (int nt = 0; nt < kKeys / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
          for (int kk = 0; kk < KS; ++kk) {
            uint32_t qk[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              if constexpr (QS) qk[i] = qf[(kk * 4 + i) * 32 + lane];
              else qk[i] = qa[kk][i];
            }
#pragma unroll
            for (int nt = 0; nt < kKeys / 8; nt += 2) {
              uint32_t bf[4];
              const int mi = lane >> 3;
              ldmatrix_x4(bf, kt + (8 * (nt + (mi >> 1)) + (lane & 7)) * P + kk * 16 + (mi & 1) * 8);
              mma16816<T>(s[nt], qk, bf[0], bf[1]);
              mma16816<T>(s[nt + 1], qk, bf[2], bf[3]);
            }
          }
          // ---- scale (log2 domain), softcap, visibility
#pragma unroll
          for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int kj = nt * 8 + 2 * t4 + (e & 1);
              const int64_t p = j0 + kj, qp = qpos[e >> 1];
              float x = s[nt][e];
              if (a.cap > 0.f) x = a.cap * tanhf(x * a.scale / a.cap) * 1.4426950408889634f;
              else x *= a.scale_log2;
              bool vis = (valid >> kj) & 1u;
              if (a.causal && p > qp) vis = false;
              if (a.window > 0 && qp - p >= a.window) vis = false;
              s[nt][e] = vis ? x : -INFINITY;
            }
          online_softmax_tile(s, mrow, lrow, o);  // s becomes P
          accumulate_pv<T, P>(o, s, vt, lane);     // O += P V
        }
        if constexpr (NW == 1) __syncwarp();  // every lane is done with `buf` before the next load overwrites it
        else __syncthreads();
      }
      cp_async_wait_all();
    }
    // ---- results: the normalized rows, or this split's partial (max, sum, acc)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float l = lrow[hr];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      if (rr[hr] >= rows) continue;
      if (nsplit == 1) {
        const float inv = l > 0.f ? 1.f / l : 0.f;
        T* orow = static_cast<T*>(a.o) + qn[hr] * a.os[0] + qh[hr] * a.os[1];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          *reinterpret_cast<uint32_t*>(orow + nt * 8 + 2 * t4) = pack2<T>(o[nt][2 * hr] * inv, o[nt][2 * hr + 1] * inv);
      } else {
        const int64_t pi = (qn[hr] * a.Hq + qh[hr]) * nsplit + split;
        float* pa = a.part_acc + pi * D;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          *reinterpret_cast<float2*>(pa + nt * 8 + 2 * t4) = make_float2(o[nt][2 * hr], o[nt][2 * hr + 1]);
        if (t4 == 0) {
          a.part_ml[pi * 2] = mrow[hr];
          a.part_ml[pi * 2 + 1] = l;
        }
      }
    }
  }
}

// A warp per (query row, head): rows at or past q_start[B] get zeros; with splits, the others get
// sum_s acc_s 2^(m_s - M) / sum_s l_s 2^(m_s - M).
template <typename T>
__global__ void __launch_bounds__(128) paged_merge_kernel(PagedArgs a, int nsplit) {
  const int lane = threadIdx.x & 31;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (w >= a.N * a.Hq) return;
  const int64_t n = w / a.Hq, h = w % a.Hq;
  T* orow = static_cast<T*>(a.o) + n * a.os[0] + h * a.os[1];
  const int64_t qend =
      a.dense_tk > 0 ? a.N : min(max(static_cast<int64_t>(a.q_start[a.B * a.qss]), int64_t{0}), a.N);
  if (n >= qend) {
    for (int64_t d = lane; d < a.D; d += 32) orow[d * a.os[2]] = from_f<T>(0.f);
    return;
  }
  if (nsplit == 1) return;  // written by the attention kernel
  const int64_t pi = (n * a.Hq + h) * nsplit;
  float M = -INFINITY;
  for (int sp = lane; sp < nsplit; sp += 32) M = fmaxf(M, a.part_ml[(pi + sp) * 2]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  float L = 0.f;
  for (int sp = 0; sp < nsplit; ++sp) {
    const float m = a.part_ml[(pi + sp) * 2];
    if (m != -INFINITY) L += exp2f(m - M) * a.part_ml[(pi + sp) * 2 + 1];
  }
  const float inv = L > 0.f ? 1.f / L : 0.f;
  for (int64_t d = lane; d < a.D; d += 32) {
    float num = 0.f;
    for (int sp = 0; sp < nsplit; ++sp) {
      const float m = a.part_ml[(pi + sp) * 2];
      if (m != -INFINITY) num += exp2f(m - M) * a.part_acc[(pi + sp) * a.D + d];
    }
    orow[d * a.os[2]] = from_f<T>(num * inv);
  }
}

// A block of 128 threads per (query row, head), for split keys. The split maxima and sums are
// read in parallel (a thread per split) and reduced across the block; the weights 2^(m_s - M) go
// to shared memory. Then each thread owns 4 consecutive features (a float4) of one split group:
// D / 4 threads per group, 128 / (D / 4) groups striding over the splits with the loop unrolled
// so several independent 16-byte loads are in flight; the groups' sums are added in shared memory
// and the row is written as bf16/f16 pairs. Rows at or past q_start[B] get zeros.
template <typename T, int D>
__global__ void __launch_bounds__(128) paged_merge_split_kernel(PagedArgs a, int nsplit) {
  constexpr int kT = 128, LPG = D / 4, NG = kT / LPG;
  static_assert(D % 4 == 0 && kT % LPG == 0 && NG >= 1, "paged_merge_split_kernel: head dim");
  static_assert(kMaxSplits <= kT, "paged_merge_split_kernel: a thread per split");
  __shared__ float wsm[kMaxSplits];
  __shared__ float red_m[kT / 32], red_l[kT / 32];
  __shared__ float4 red[NG > 1 ? NG - 1 : 1][LPG];
  const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
  const int64_t w = blockIdx.x;
  const int64_t n = w / a.Hq, h = w % a.Hq;
  T* orow = static_cast<T*>(a.o) + n * a.os[0] + h * a.os[1];
  const int64_t qend =
      a.dense_tk > 0 ? a.N : min(max(static_cast<int64_t>(a.q_start[a.B * a.qss]), int64_t{0}), a.N);
  if (n >= qend) {  // uniform over the block
    for (int d = tid; d < D; d += kT) orow[d] = from_f<T>(0.f);
    return;
  }
  const int64_t pi = (n * a.Hq + h) * nsplit;
  // ---- M = max_s m_s, L = sum_s 2^(m_s - M) l_s
  float m = -INFINITY, l = 0.f;
  if (tid < nsplit) {
    m = a.part_ml[(pi + tid) * 2];
    l = a.part_ml[(pi + tid) * 2 + 1];
  }
  float M = m;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  if (lane == 0) red_m[wid] = M;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kT / 32; ++i) M = fmaxf(M, red_m[i]);
  const float wt = m == -INFINITY ? 0.f : exp2f(m - M);  // empty splits (and all empty: M = -inf) weigh 0
  if (tid < nsplit) wsm[tid] = wt;
  float L = wt * l;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
  if (lane == 0) red_l[wid] = L;
  __syncthreads();
  L = 0.f;
#pragma unroll
  for (int i = 0; i < kT / 32; ++i) L += red_l[i];
  const float inv = L > 0.f ? 1.f / L : 0.f;
  // ---- sum_s w_s acc_s, a float4 per thread
  const int li = tid % LPG, grp = tid / LPG;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 8
  for (int sp = grp; sp < nsplit; sp += NG) {
    const float ws = wsm[sp];
    if (ws != 0.f) {
      const float4 v = *reinterpret_cast<const float4*>(a.part_acc + (pi + sp) * D + li * 4);
      acc.x = fmaf(ws, v.x, acc.x);
      acc.y = fmaf(ws, v.y, acc.y);
      acc.z = fmaf(ws, v.z, acc.z);
      acc.w = fmaf(ws, v.w, acc.w);
    }
  }
  if constexpr (NG > 1) {
    if (grp > 0) red[grp - 1][li] = acc;
    __syncthreads();
    if (grp > 0) return;
#pragma unroll
    for (int g2 = 0; g2 < NG - 1; ++g2) {
      const float4 v = red[g2][li];
      acc.x += v.x, acc.y += v.y, acc.z += v.z, acc.w += v.w;
    }
  }
  uint32_t* op = reinterpret_cast<uint32_t*>(orow + li * 4);  // 4-byte aligned rows, unit feature stride
  op[0] = pack2<T>(acc.x * inv, acc.y * inv);
  op[1] = pack2<T>(acc.z * inv, acc.w * inv);
}

// FLAGOS_CUDA_PAGED_OLD_MERGE=1: the first version's split heuristic (>= 128 keys per split) and
// merge kernel (a warp per (row, head), splits read one after another), kept to switch a
// regression off without a rebuild.
bool old_merge() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_PAGED_OLD_MERGE");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return f;
}

// K/V double buffers, and for D > 128 the Q fragments of each warp.
template <typename T, int D, int NW>
constexpr size_t mma_smem() {
  return size_t{4} * kKeys * (D + 8) * sizeof(T) + (D > 128 ? size_t{NW} * 16 * D * sizeof(T) : 0);
}

// paged_mma_kernel<T, D, NW> with its shared memory allowed (above 48 KiB: D = 256); per call, as
// attention_mma.cu does (the attribute belongs to the current device).
template <typename T, int D, int NW>
auto* mma_kernel() {
  auto* fn = &paged_mma_kernel<T, D, NW>;
  constexpr size_t smem = mma_smem<T, D, NW>();
  static_assert(smem <= 200 * 1024, "paged_mma_kernel: shared memory");
  if constexpr (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  return fn;
}

// Resident blocks of paged_mma_kernel<T, D, NW> per multiprocessor (registers and shared memory).
template <typename T, int D, int NW>
int mma_blocks_per_sm() {
  static const int n = [] {
    int b = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, mma_kernel<T, D, NW>(), 32 * NW,
                                                             mma_smem<T, D, NW>()));
    return b > 0 ? b : 1;
  }();
  return n;
}

constexpr int kPrefillWarps = 4;  // warps sharing K/V tiles when items have >= this many row tiles

// FLAGOS_CUDA_PAGED_ONE_WARP=1: one warp per block always (the first version's kernel shape), kept
// to switch a regression of the shared-tile prefill path off without a rebuild.
bool one_warp() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_PAGED_ONE_WARP");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return f;
}

// The tensor-core path for a filled PagedArgs: grid (item x kv head, row-tile-group slots, splits),
// then the merge (and zero-rows) kernel. Blocks are one warp, or kPrefillWarps warps sharing K/V
// tiles when the items average that many row tiles (prefill). Splits: as many as fill one wave of
// resident blocks, at least kMinSplitKeys keys of the largest possible item each.
template <typename T, int D>
void run_paged_mma(PagedArgs pa, const KernelArgs& a) {
  const cudaStream_t s = kernel_stream(a);
  const int device = a.stream.device().index;
  const int64_t rowsheads = pa.N * pa.Hq;
  int64_t slots = 1, nsplit = 1;
  int nw = 1;
  if (pa.B > 0) {
    const int64_t tiles = (pa.G * pa.N + 16 * pa.B - 1) / (16 * pa.B);  // row tiles of an average item
    nw = tiles >= kPrefillWarps && !one_warp() ? kPrefillWarps : 1;
    slots = std::clamp<int64_t>((tiles + nw - 1) / nw, 1, 65535);
    const int64_t base = pa.B * pa.Hkv * slots;
    const int per_sm = nw == 1 ? mma_blocks_per_sm<T, D, 1>() : mma_blocks_per_sm<T, D, kPrefillWarps>();
    const int64_t wave = static_cast<int64_t>(sm_count(device)) * per_sm;
    const int64_t cap_keys = pa.dense_tk > 0 ? pa.dense_tk : pa.max_blocks * pa.bs;
    const int64_t min_keys = old_merge() ? kOldMinSplitKeys : kMinSplitKeys;
    nsplit = std::clamp<int64_t>(wave / base, 1,
                                 std::max<int64_t>(1, std::min<int64_t>(kMaxSplits, cap_keys / min_keys)));
  }
  Tensor part;
  if (nsplit > 1) {
    const int64_t n = rowsheads * nsplit;
    part = workspace(a, n * (pa.D + 2) * 4);
    pa.part_acc = static_cast<float*>(part.data());
    pa.part_ml = pa.part_acc + n * pa.D;
  }
  if (pa.B > 0) {
    const dim3 grid(static_cast<unsigned>(pa.B * pa.Hkv), static_cast<unsigned>(slots), static_cast<unsigned>(nsplit));
    if (nw == 1)
      mma_kernel<T, D, 1>()<<<grid, 32, mma_smem<T, D, 1>(), s>>>(pa);
    else
      mma_kernel<T, D, kPrefillWarps>()<<<grid, 32 * kPrefillWarps, mma_smem<T, D, kPrefillWarps>(), s>>>(pa);
    CUDA_CHECK_LAUNCH();
  }
  if (nsplit > 1 && !old_merge()) {
    paged_merge_split_kernel<T, D><<<static_cast<unsigned>(rowsheads), 128, 0, s>>>(pa, static_cast<int>(nsplit));
  } else {  // one split: only the rows past q_start[B] are left to zero
    paged_merge_kernel<T><<<static_cast<unsigned>((rowsheads + 3) / 4), 128, 0, s>>>(pa, static_cast<int>(nsplit));
  }
  CUDA_CHECK_LAUNCH();
}

// FLAGOS_CUDA_PAGED_NO_D256=1: head dim 256 takes the paths it took before it had a tensor-core one.
bool no_d256() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_PAGED_NO_D256");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return f;
}

// Whether the tensor-core path takes these operands: 16-bit, D in {64, 128, 256}, q/o rows 4-byte aligned
// with unit feature stride, cache rows 16-byte aligned with unit feature stride.
bool mma_layout_ok(const Tensor& q, const Tensor& o, const Tensor& kc, const Tensor& vc, int64_t D, int qdims) {
  if ((q.dtype() != DType::bf16 && q.dtype() != DType::f16) || (D != 64 && D != 128 && D != 256)) return false;
  if (D == 256 && no_d256()) return false;
  const int64_t es = 2;
  for (const Tensor* t : {&q, &o}) {
    if (t->stride(qdims - 1) != es || !aligned_to(t->data(), 4)) return false;
    for (int d = 0; d < qdims - 1; ++d)
      if (t->stride(d) % 4 != 0) return false;
  }
  for (const Tensor* c : {&kc, &vc}) {
    if (c->stride(3) != es || !aligned16(c->data())) return false;
    for (int d = 0; d < 3; ++d)
      if (c->stride(d) % 16 != 0) return false;
  }
  return true;
}

// FLAGOS_CUDA_PAGED_GENERIC=1 forces the general path (tests compare both paths).
bool force_general() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_PAGED_GENERIC");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return f;
}

// in: q, k_cache, v_cache, block_table, seq_lens, q_start; out: o.
template <typename T>
void paged_attention_launch(const KernelArgs& a) {
  const AttentionParams& p = a.p<AttentionParams>();
  const Tensor& q = *a.in[0];
  const Tensor& kc = *a.in[1];
  const Tensor& vc = *a.in[2];
  const Tensor& bt = *a.in[3];
  Tensor& o = *a.out[0];
  PagedArgs pa{};
  pa.q = q.data(), pa.o = o.data(), pa.kc = kc.data(), pa.vc = vc.data();
  pa.bt = bt.data_as<int32_t>(), pa.seq_lens = a.in[4]->data_as<int32_t>(), pa.q_start = a.in[5]->data_as<int32_t>();
  for (int d = 0; d < 3; ++d) pa.qs[d] = est(q, d), pa.os[d] = est(o, d);
  for (int d = 0; d < 4; ++d) pa.ks[d] = est(kc, d), pa.vs[d] = est(vc, d);
  pa.bts0 = est(bt, 0), pa.bts1 = est(bt, 1), pa.sls = est(*a.in[4], 0), pa.qss = est(*a.in[5], 0);
  pa.N = q.size(0), pa.B = bt.size(0), pa.Hq = q.size(1), pa.Hkv = kc.size(1), pa.G = pa.Hq / pa.Hkv;
  pa.D = q.size(2), pa.bs = kc.size(2), pa.nblocks = kc.size(0), pa.max_blocks = bt.size(1);
  pa.causal = p.causal, pa.window = p.window;
  pa.scale = static_cast<float>(p.scale), pa.cap = static_cast<float>(p.softcap);
  pa.scale_log2 = static_cast<float>(p.scale * 1.4426950408889634);

  if (std::is_same_v<T, float> || force_general() || !mma_layout_ok(q, o, kc, vc, pa.D, 3)) {
    if (pa.D > 512) fail<NotSupported>("paged_attention on cuda: head dim ", pa.D, " > 512");
    const unsigned blocks = static_cast<unsigned>((pa.N * pa.Hq + 3) / 4);  // a warp per (row, head)
    paged_general_kernel<T><<<blocks, 128, 0, kernel_stream(a)>>>(pa);
    CUDA_CHECK_LAUNCH();
    return;
  }
  if constexpr (!std::is_same_v<T, float>) {
    if (pa.D == 64) run_paged_mma<T, 64>(pa, a);
    else if (pa.D == 128) run_paged_mma<T, 128>(pa, a);
    else run_paged_mma<T, 256>(pa, a);
  }
}

}  // namespace

bool attention_decode_mma(const KernelArgs& a, const AttentionParams& p) {
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  Tensor& o = *a.out[0];
  if (a.in.size() > 3 || q.size(2) != 1 || force_general()) return false;
  const int64_t D = q.size(3);
  if (v.size(3) != D || k.size(2) == 0 || !mma_layout_ok(q, o, k, v, D, 4)) return false;
  PagedArgs pa{};
  pa.q = q.data(), pa.o = o.data(), pa.kc = k.data(), pa.vc = v.data();
  // q/o [B, Hq, 1, D] as [N = B, Hq, D]; k/v [B, Hkv, Tk, D] as caches of B blocks of Tk keys
  pa.qs[0] = est(q, 0), pa.qs[1] = est(q, 1), pa.qs[2] = est(q, 3);
  pa.os[0] = est(o, 0), pa.os[1] = est(o, 1), pa.os[2] = est(o, 3);
  for (int d = 0; d < 4; ++d) pa.ks[d] = est(k, d), pa.vs[d] = est(v, d);
  pa.N = q.size(0), pa.B = q.size(0), pa.Hq = q.size(1), pa.Hkv = k.size(1), pa.G = pa.Hq / pa.Hkv;
  pa.D = D, pa.bs = k.size(2), pa.nblocks = k.size(0), pa.max_blocks = 1, pa.dense_tk = k.size(2);
  pa.causal = p.causal, pa.window = p.window;
  pa.scale = static_cast<float>(p.scale), pa.cap = static_cast<float>(p.softcap);
  pa.scale_log2 = static_cast<float>(p.scale * 1.4426950408889634);
  if (q.dtype() == DType::bf16) {
    if (D == 64) run_paged_mma<__nv_bfloat16, 64>(pa, a);
    else if (D == 128) run_paged_mma<__nv_bfloat16, 128>(pa, a);
    else run_paged_mma<__nv_bfloat16, 256>(pa, a);
  } else {
    if (D == 64) run_paged_mma<__half, 64>(pa, a);
    else if (D == 128) run_paged_mma<__half, 128>(pa, a);
    else run_paged_mma<__half, 256>(pa, a);
  }
  return true;
}

void register_paged(KernelRegistry& reg, uint16_t b) {
  reg.add("kv_cache_store", b, KernelKey{DType::f32}, &kv_cache_store_launch<4>);
  reg.add("kv_cache_store", b, KernelKey{DType::f16}, &kv_cache_store_launch<2>);
  reg.add("kv_cache_store", b, KernelKey{DType::bf16}, &kv_cache_store_launch<2>);
  reg.add("paged_attention", b, KernelKey{DType::f32}, &paged_attention_launch<float>);
  reg.add("paged_attention", b, KernelKey{DType::f16}, &paged_attention_launch<__half>);
  reg.add("paged_attention", b, KernelKey{DType::bf16}, &paged_attention_launch<__nv_bfloat16>);
}

}  // namespace flagos::cuda::llm
