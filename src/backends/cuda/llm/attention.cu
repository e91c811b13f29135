// Scaled dot-product attention on CUDA, flash style (online softmax, f32 accumulation, O(tile)
// memory for any Tk): q [B,Hq,Tq,D], k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv], any strides; GQA/MQA; causal
// (query i sees keys j <= i + Tk - Tq), sliding window, softcap, optional bool/float mask.
//
// General kernel (CUDA cores, every dtype and option): a block of 128 threads owns a tile of up to
// RT "rows" of one (batch, kv head): rows are (query position, query head of the group) pairs,
// position-major, so each K/V tile is read once for all the heads sharing it and a causal tile
// covers a narrow range of positions. Per tile of 128 keys: thread t scores key t against the
// RT rows (q scaled in shared memory, broadcast reads; 16-byte K loads), a warp per row updates
// the running max/sum, then every thread accumulates its fixed (row, column) entries of P V.
// Split-KV (flash-decoding): when (batch, kv head, row tile) tasks cannot fill the GPU (decode),
// the key range is split over blockIdx.y and the partial (max, sum, acc) are merged by a second
// kernel with a log-sum-exp rescale. Rows with no visible key give zeros.
// bf16/f16 without a mask and D = Dv in {64, 128} runs on the tensor cores instead: prefill in
// attention_mma.cu, decode (Tq = 1) in the split-KV kernel of paged_attention.cu.
// f32 without a mask, D = Dv in {64, 128} and >= 16 query rows runs on the register-tiled kernel of
// attention_f32.cu (FLAGOS_CUDA_F32ATTN_OLD=1 keeps it here).
#include <cmath>

#include "backends/cuda/llm/attention.cuh"
#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda::llm {
namespace {

constexpr int kThreads = 128;  // threads per block = the largest key tile
constexpr int kAcc = 16;       // accumulator entries per thread: RT * Dv <= 2048
constexpr int kMaxRows = 16;

enum MaskKind { kNoMask = 0, kBoolMask = 1, kFloatMask = 2 };

template <typename T>
struct AttnArgs {
  const T* q;
  const T* k;
  const T* v;
  T* o;
  const void* mask;
  int64_t qs[4], ks[4], vs[4], os[4], ms[4];  // element strides
  int64_t Hkv, G, Tq, Tk, D, Dp, Dv, Dv8, off;  // Dp, Dv8: D, Dv rounded up to 8 (shared rows)
  int64_t rows, ntiles;  // rows = G * Tq per (b, hkv); row tiles per (b, hkv)
  int RT, KT;  // rows per block, keys per tile
  bool causal;
  int64_t window;
  float scale, cap;
  int64_t split_len;  // keys per split (multiple of kThreads)
  float* part_acc;    // [task][RT][Dv] (split only)
  float* part_ml;     // [task][RT][2]
};

// A tile of KT rows [j0, j0 + KT) of K or V (row stride rs, feature stride cs, D features) into
// shared memory rows of `pitch` elements, zeros past jend and past D; 16-byte pieces, all threads.
template <typename T, bool VEC>
__device__ __forceinline__ void load_tile(T* dst, int pitch, const T* base, int64_t rs, int64_t cs, int64_t j0,
                                          int64_t jend, int64_t D, int D8, int KT) {
  constexpr int E = 16 / sizeof(T);
  const int pieces = D8 / E;
  for (int idx = threadIdx.x; idx < KT * pieces; idx += kThreads) {
    const int row = idx / pieces, pc = idx - row * pieces;
    const int64_t j = j0 + row;
    Pack<T, E> pk;
    if (j < jend) {
      if constexpr (VEC) {
        pk = *reinterpret_cast<const Pack<T, E>*>(base + j * rs + pc * E);
      } else {
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const int64_t d = static_cast<int64_t>(pc) * E + e;
          pk.v[e] = d < D ? base[j * rs + d * cs] : from_f<T>(0.f);
        }
      }
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e) pk.v[e] = from_f<T>(0.f);
    }
    *reinterpret_cast<Pack<T, E>*>(dst + row * pitch + pc * E) = pk;
  }
}

// 8 consecutive elements of a shared-memory row as f32 (16-byte aligned).
template <typename T>
__device__ __forceinline__ void smem8(const T* p, float (&v)[8]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const Pack<T, 8> pk = *reinterpret_cast<const Pack<T, 8>*>(p);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = to_f(pk.v[i]);
  }
}

// Shared memory layout of attn_kernel (byte offsets, 16-byte aligned pieces).
struct AttnSmem {
  size_t q, ps, k, v, stats, total;
  __host__ __device__ static size_t up16(size_t x) { return (x + 15) / 16 * 16; }
  template <typename T>
  __host__ __device__ static AttnSmem of(int RT, int Dp, int Dv8, int KT) {
    constexpr int E = 16 / sizeof(T);
    AttnSmem m;
    m.q = 0;
    m.ps = up16(m.q + sizeof(float) * RT * Dp);
    m.k = up16(m.ps + sizeof(float) * RT * KT);
    m.v = up16(m.k + sizeof(T) * KT * (Dp + E));
    m.stats = up16(m.v + sizeof(T) * KT * (Dv8 + E));
    m.total = m.stats + sizeof(float) * 3 * RT;
    return m;
  }
};

// VEC: K and V rows have unit feature stride, D and Dv multiples of 8, 16-byte aligned rows.
// SAMECOL: 128 % Dv == 0, so a thread's accumulator entries share one column of V.
template <typename T, int MK, bool VEC, bool SAMECOL>
__global__ void __launch_bounds__(kThreads) attn_kernel(AttnArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int E = 16 / sizeof(T);
  const int RT = a.RT, KT = a.KT, Dp = static_cast<int>(a.Dp), Dv8 = static_cast<int>(a.Dv8);
  const int KP = Dp + E, VP = Dv8 + E;
  const AttnSmem L = AttnSmem::of<T>(RT, Dp, Dv8, KT);
  float* qsm = reinterpret_cast<float*>(smem_raw + L.q);   // [RT][Dp] scaled q (zeros past D)
  float* ps = reinterpret_cast<float*>(smem_raw + L.ps);   // [RT][KT] scores, then probabilities
  T* ksm = reinterpret_cast<T*>(smem_raw + L.k);           // [KT][KP] key tile
  T* vsm = reinterpret_cast<T*>(smem_raw + L.v);           // [KT][VP] value tile
  float* mrow = reinterpret_cast<float*>(smem_raw + L.stats);  // [RT] running max
  float* lrow = mrow + RT;                                     // [RT] running sum
  float* alpha = lrow + RT;                                    // [RT] rescale of this tile
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const int64_t task = blockIdx.x;  // (b, hkv, tile)
  const int64_t tile = task % a.ntiles, bh = task / a.ntiles;
  const int64_t hkv = bh % a.Hkv, b = bh / a.Hkv;
  const int64_t r0 = tile * RT;
  const int nr = static_cast<int>(a.rows - r0 < RT ? a.rows - r0 : RT);
  int64_t qmin = (r0) / a.G, qmax = (r0 + nr - 1) / a.G;

  // q rows (scaled) into shared memory; running stats
  for (int64_t i = tid; i < static_cast<int64_t>(RT) * Dp; i += kThreads) {
    const int r = static_cast<int>(i / Dp);
    const int64_t d = i - static_cast<int64_t>(r) * Dp;
    float val = 0.f;
    if (r < nr && d < a.D) {
      const int64_t rr = r0 + r, qi = rr / a.G, h = hkv * a.G + rr % a.G;
      val = to_f(a.q[b * a.qs[0] + h * a.qs[1] + qi * a.qs[2] + d * a.qs[3]]) * a.scale;
    }
    qsm[i] = val;
  }
  for (int r = tid; r < RT; r += kThreads) {
    mrow[r] = -INFINITY;
    lrow[r] = 0.f;
  }
  // visible key range of the tile, intersected with this split
  int64_t jbeg = 0, jend = a.Tk;
  if (a.causal) jend = min(a.Tk, qmax + a.off + 1);
  if (a.window > 0) jbeg = max(int64_t{0}, qmin + a.off - a.window + 1);
  const int64_t split = blockIdx.y;
  jbeg = max(jbeg, split * a.split_len);
  jend = min(jend, (split + 1) * a.split_len);

  // accumulator entries e = tid + kThreads * i -> (row, column)
  float acc[kAcc];
  int er[kAcc], ec[kAcc];
  const int nent = RT * static_cast<int>(a.Dv);
#pragma unroll
  for (int i = 0; i < kAcc; ++i) {
    const int e = tid + kThreads * i;
    acc[i] = 0.f;
    er[i] = e < nent ? e / static_cast<int>(a.Dv) : -1;
    ec[i] = e < nent ? e % static_cast<int>(a.Dv) : 0;
  }
  const T* kbase = a.k + b * a.ks[0] + hkv * a.ks[1];
  const T* vbase = a.v + b * a.vs[0] + hkv * a.vs[1];

  for (int64_t j0 = jbeg; j0 < jend; j0 += KT) {
    __syncthreads();  // the previous tile's readers are done
    load_tile<T, VEC>(ksm, KP, kbase, a.ks[2], a.ks[3], j0, jend, a.D, Dp, KT);
    load_tile<T, VEC>(vsm, VP, vbase, a.vs[2], a.vs[3], j0, jend, a.Dv, Dv8, KT);
    __syncthreads();
    const int nk = static_cast<int>(jend - j0 < KT ? jend - j0 : KT);
    // ---- scores of key j0 + tid against the rows
    const int64_t j = j0 + tid;
    float s[kMaxRows];
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) s[r] = 0.f;
    if (tid < nk) {
      const T* kr = ksm + tid * KP;
      for (int d = 0; d < Dp; d += 8) {
        float kv[8];
        smem8(kr + d, kv);
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r) {
          if (r < RT) {
            const float* qr = qsm + r * Dp + d;
            const float4 q0 = *reinterpret_cast<const float4*>(qr), q1 = *reinterpret_cast<const float4*>(qr + 4);
            s[r] = fmaf(q0.x, kv[0], s[r]);
            s[r] = fmaf(q0.y, kv[1], s[r]);
            s[r] = fmaf(q0.z, kv[2], s[r]);
            s[r] = fmaf(q0.w, kv[3], s[r]);
            s[r] = fmaf(q1.x, kv[4], s[r]);
            s[r] = fmaf(q1.y, kv[5], s[r]);
            s[r] = fmaf(q1.z, kv[6], s[r]);
            s[r] = fmaf(q1.w, kv[7], s[r]);
          }
        }
      }
    }
    if (tid < KT) {
#pragma unroll
      for (int r = 0; r < kMaxRows; ++r) {
        if (r >= RT) break;
        float val = -INFINITY;
        if (tid < nk && r < nr) {
          const int64_t rr = r0 + r, qi = rr / a.G, h = hkv * a.G + rr % a.G;
          bool vis = true;
          if (a.causal && j > qi + a.off) vis = false;
          if (a.window > 0 && j <= qi + a.off - a.window) vis = false;
          val = s[r];
          if (a.cap > 0.f) val = a.cap * tanhf(val / a.cap);
          if constexpr (MK != kNoMask) {
            const int64_t mo = b * a.ms[0] + h * a.ms[1] + qi * a.ms[2] + j * a.ms[3];
            if constexpr (MK == kBoolMask) {
              if (static_cast<const uint8_t*>(a.mask)[mo] == 0) vis = false;
            } else {
              val += static_cast<const float*>(a.mask)[mo];
            }
          }
          if (!vis) val = -INFINITY;
        }
        ps[r * KT + tid] = val;
      }
    }
    __syncthreads();
    // ---- online softmax: a warp per row
    for (int r = warp; r < RT; r += kThreads / 32) {
      float* pr = ps + r * KT;
      float mt = -INFINITY;
      for (int i = lane; i < KT; i += 32) mt = fmaxf(mt, pr[i]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
      const float mold = mrow[r];
      const float mnew = fmaxf(mold, mt);
      float sum = 0.f;
      for (int i = lane; i < KT; i += 32) {
        const float e = mnew == -INFINITY ? 0.f : expf(pr[i] - mnew);  // nothing visible so far: 0
        pr[i] = e;
        sum += e;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) {
        const float al = mnew == -INFINITY ? 1.f : expf(mold - mnew);
        alpha[r] = al;
        lrow[r] = lrow[r] * al + sum;
        mrow[r] = mnew;
      }
    }
    __syncthreads();
    // ---- acc = acc * alpha + P V
#pragma unroll
    for (int i = 0; i < kAcc; ++i)
      if (er[i] >= 0) acc[i] *= alpha[er[i]];
    if constexpr (SAMECOL) {
      const T* vc = vsm + ec[0];
      for (int jj = 0; jj < nk; ++jj) {
        const float vv = to_f(vc[jj * VP]);
#pragma unroll
        for (int i = 0; i < kAcc; ++i)
          if (er[i] >= 0) acc[i] = fmaf(ps[er[i] * KT + jj], vv, acc[i]);
      }
    } else {
      for (int jj = 0; jj < nk; ++jj) {
        const T* vr = vsm + jj * VP;
#pragma unroll
        for (int i = 0; i < kAcc; ++i)
          if (er[i] >= 0) acc[i] = fmaf(ps[er[i] * KT + jj], to_f(vr[ec[i]]), acc[i]);
      }
    }
  }
  __syncthreads();
  // ---- results
  if (gridDim.y == 1) {
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int r = er[i];
      if (r < 0 || r >= nr) continue;
      const int64_t rr = r0 + r, qi = rr / a.G, h = hkv * a.G + rr % a.G;
      const float l = lrow[r];
      a.o[b * a.os[0] + h * a.os[1] + qi * a.os[2] + ec[i] * a.os[3]] = from_f<T>(l > 0.f ? acc[i] / l : 0.f);
    }
  } else {
    const int64_t pt = task * gridDim.y + split;
#pragma unroll
    for (int i = 0; i < kAcc; ++i)
      if (er[i] >= 0) a.part_acc[(pt * RT + er[i]) * a.Dv + ec[i]] = acc[i];
    for (int r = tid; r < RT; r += kThreads) {
      a.part_ml[(pt * RT + r) * 2] = mrow[r];
      a.part_ml[(pt * RT + r) * 2 + 1] = lrow[r];
    }
  }
}

// out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M) over the splits of a task: a block per
// (task, row); the split weights go to shared memory first, then each thread sums its columns
// with independent loads (nsplit <= kMaxSplits).
constexpr int kMaxSplits = 128;

template <typename T>
__global__ void __launch_bounds__(128) attn_merge_kernel(AttnArgs<T> a, int nsplit) {
  __shared__ float w[kMaxSplits];
  __shared__ float red[32];
  const int RT = a.RT;
  const int64_t task = blockIdx.x / RT;
  const int r = static_cast<int>(blockIdx.x % RT);
  const int64_t tile = task % a.ntiles, bh = task / a.ntiles;
  const int64_t hkv = bh % a.Hkv, b = bh / a.Hkv;
  const int64_t r0 = tile * RT;
  if (r0 + r >= a.rows) return;
  const int tid = threadIdx.x;
  const float m = tid < nsplit ? a.part_ml[((task * nsplit + tid) * RT + r) * 2] : -INFINITY;
  const float M = block_reduce(m, [](float x, float y) { return fmaxf(x, y); }, -INFINITY, red);
  const float ws = (m == -INFINITY || M == -INFINITY) ? 0.f : expf(m - M);
  const float l = tid < nsplit ? a.part_ml[((task * nsplit + tid) * RT + r) * 2 + 1] : 0.f;
  const float L = block_reduce(ws * l, SumOp{}, 0.f, red);
  if (tid < nsplit) w[tid] = ws;
  __syncthreads();
  const int64_t rr = r0 + r, qi = rr / a.G, h = hkv * a.G + rr % a.G;
  const float* pa = a.part_acc + (task * nsplit * RT + r) * a.Dv;  // split sp at + sp * RT * Dv
  for (int64_t c = tid; c < a.Dv; c += blockDim.x) {
    float num = 0.f;
#pragma unroll 8
    for (int sp = 0; sp < nsplit; ++sp) num += w[sp] * pa[sp * RT * a.Dv + c];
    a.o[b * a.os[0] + h * a.os[1] + qi * a.os[2] + c * a.os[3]] = from_f<T>(L > 0.f ? num / L : 0.f);
  }
}

// Rows with no keys at all (Tk == 0): zeros, any output strides.
template <typename T>
__global__ void zero_kernel(char* base, Indexer<1> ix, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[1];
    ix.offsets(i, off);
    *reinterpret_cast<T*>(base + off[0]) = from_f<T>(0.f);
  }
}

template <typename T, int MK, bool VEC, bool SAMECOL>
void launch_general(const AttnArgs<T>& aa, dim3 grid, size_t smem, cudaStream_t s) {
  auto* fn = &attn_kernel<T, MK, VEC, SAMECOL>;
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  fn<<<grid, kThreads, smem, s>>>(aa);
}

template <typename T, int MK>
void attention_launch(const KernelArgs& a) {
  const AttentionParams& p = a.p<AttentionParams>();
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  const Tensor* mask = MK != kNoMask ? a.in[3] : nullptr;
  Tensor& o = *a.out[0];
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3);
  if (o.numel() == 0) return;
  const cudaStream_t s = kernel_stream(a);
  const int device = a.stream.device().index;
  if (Tk == 0 || D == 0) {  // no keys: zeros
    zero_kernel<T><<<grid_for(o.numel(), device), 256, 0, s>>>(static_cast<char*>(o.data()),
                                                              make_indexer<1>(o.shape(), {&o.strides()}), o.numel());
    CUDA_CHECK_LAUNCH();
    return;
  }
  if constexpr (MK == kNoMask && !std::is_same_v<T, float>) {
    if (attention_decode_mma(a, p)) return;
    if (attention_mma(a, p)) return;
  }
  if constexpr (MK == kNoMask && std::is_same_v<T, float>) {
    if (attention_f32(a, p)) return;
  }
  AttnArgs<T> aa{};
  aa.q = q.data_as<T>(), aa.k = k.data_as<T>(), aa.v = v.data_as<T>(), aa.o = o.data_as<T>();
  aa.mask = mask ? mask->data() : nullptr;
  for (int d = 0; d < 4; ++d) {
    aa.qs[d] = est(q, d), aa.ks[d] = est(k, d), aa.vs[d] = est(v, d), aa.os[d] = est(o, d);
    aa.ms[d] = mask ? est(*mask, d) : 0;
  }
  aa.Hkv = Hkv, aa.G = Hq / Hkv, aa.Tq = Tq, aa.Tk = Tk, aa.D = D, aa.Dv = Dv, aa.off = Tk - Tq;
  aa.causal = p.causal, aa.window = p.window;
  aa.scale = static_cast<float>(p.scale), aa.cap = static_cast<float>(p.softcap);
  aa.rows = aa.G * Tq;
  // rows per tile: accumulators (RT * Dv <= kThreads * kAcc); keys per tile: the K/V tiles, q and the
  // scores fit the shared memory (128 keys when they fit in 100 KB, two blocks per SM; else 64 or 32)
  const int64_t d8 = (D + 7) / 8 * 8, dv8 = (Dv + 7) / 8 * 8;
  aa.Dp = d8, aa.Dv8 = dv8;
  const int64_t rt = std::min<int64_t>({kMaxRows, kThreads * kAcc / Dv, aa.rows});
  int kt = kThreads;
  while (kt > 32 && AttnSmem::of<T>(static_cast<int>(rt), static_cast<int>(d8), static_cast<int>(dv8), kt).total >
                        100 * 1024)  // two blocks per SM
    kt /= 2;
  const size_t smem = AttnSmem::of<T>(static_cast<int>(rt), static_cast<int>(d8), static_cast<int>(dv8), kt).total;
  if (rt < 1 || smem > 220 * 1024)
    fail<NotSupported>("attention on cuda: head dims D=", D, ", Dv=", Dv, " exceed the supported sizes (Dv <= ",
                       kThreads * kAcc, ", K/V tiles of 32 keys in shared memory)");
  aa.RT = static_cast<int>(rt);
  aa.KT = kt;
  aa.ntiles = (aa.rows + rt - 1) / rt;
  const int64_t tasks = B * Hkv * aa.ntiles;
  // split-KV (one key tile or more per split) when the tasks cannot fill the GPU
  const int64_t want = 2 * static_cast<int64_t>(sm_count(device));
  int64_t nsplit = 1;
  if (tasks < want)
    nsplit = std::max<int64_t>(1, std::min<int64_t>({(want + tasks - 1) / tasks, (Tk + kt - 1) / kt, kMaxSplits}));
  aa.split_len = ((Tk + nsplit - 1) / nsplit + kt - 1) / kt * kt;
  nsplit = (Tk + aa.split_len - 1) / aa.split_len;
  Tensor part;
  if (nsplit > 1) {
    const int64_t n = tasks * nsplit * rt;
    part = workspace(a, n * (Dv + 2) * 4);
    aa.part_acc = static_cast<float*>(part.data());
    aa.part_ml = aa.part_acc + n * Dv;
  }
  auto rows16 = [](const Tensor& t) {
    return t.stride(3) == static_cast<int64_t>(t.itemsize()) && aligned16(t.data()) && t.stride(2) % 16 == 0 &&
           t.stride(1) % 16 == 0 && t.stride(0) % 16 == 0;
  };
  const bool vec = D % 8 == 0 && Dv % 8 == 0 && rows16(k) && rows16(v);
  const bool samecol = kThreads % Dv == 0;
  const dim3 grid(static_cast<unsigned>(tasks), static_cast<unsigned>(nsplit));
  if (vec && samecol) launch_general<T, MK, true, true>(aa, grid, smem, s);
  else if (vec) launch_general<T, MK, true, false>(aa, grid, smem, s);
  else if (samecol) launch_general<T, MK, false, true>(aa, grid, smem, s);
  else launch_general<T, MK, false, false>(aa, grid, smem, s);
  CUDA_CHECK_LAUNCH();
  if (nsplit > 1) {
    attn_merge_kernel<T><<<static_cast<unsigned>(tasks * rt), 128, 0, s>>>(aa, static_cast<int>(nsplit));
    CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void add_dtype(KernelRegistry& reg, uint16_t b, DType dt) {
  reg.add("attention", b, KernelKey{dt, DType::count_}, &attention_launch<T, kNoMask>);
  reg.add("attention", b, KernelKey{dt, DType::boolean}, &attention_launch<T, kBoolMask>);
  reg.add("attention", b, KernelKey{dt, DType::f32}, &attention_launch<T, kFloatMask>);
}

}  // namespace

void register_attention(KernelRegistry& reg, uint16_t b) {
  add_dtype<float>(reg, b, DType::f32);
  add_dtype<__half>(reg, b, DType::f16);
  add_dtype<__nv_bfloat16>(reg, b, DType::bf16);
}

}  // namespace flagos::cuda::llm
