// linear: y[M, N] = x[M, K] @ w[N, K]^T + bias, x f32/f16/bf16, w f32/f16/bf16 or block-quantized.
// Paths (launch config by heuristics, no autotuning):
//  quantized w, M <= 64 (decode): int8 path. Each activation row is quantized once per call to
//     int8 per block of 32 (simple types) or 256 (k-quants) with d = amax/127 and round to
//     nearest even, exactly as the CPU does (the conformance test pins this rounding); then
//     (FLAGOS_CUDA_QGEMV, see qgemv_variant) for q8_0 / q4_k / q6_k (q8_0 / q6_k: M >= 2) an int8
//     tensor-core kernel (mma.sync s8, weight rows as the 16-row A operand, tokens as n-tiles
//     of 8), else a GEMV kernel that streams the weight rows (the wide-load kernel, or 16 lanes
//     per weight row with one 32-element chunk per lane step), levels unpacked in registers and
//     dotted with __dp4a, scaled once per chunk;
//  16-bit w, few rows (M <= 8, or any M <= 64 when x is f32 or of the other 16-bit type):
//     skinny kernel, two weight rows per warp, 16-byte weight loads, f32 accumulation;
//  otherwise cuBLASLt: same-dtype GEMM directly; quantized weights dequantized to x's type (f32
//     for f32 x) first; mixed plain dtypes through f32 copies. The bias is a separate pass there.
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/cuda/llm/gemm.cuh"
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/mma.cuh"  // cp.async helpers
#include "backends/cuda/llm/quant_blocks.cuh"
#include "backends/cuda/tuning.h"

namespace flagos::cuda::llm {
namespace {

constexpr int64_t kInt8MaxRows = 64;

// ---------------------------------------------------------------- output store (f32/f16/bf16 at run time)
__device__ __forceinline__ void store_out(void* y, int ydt, int64_t i, float v) {
  if (ydt == 0) static_cast<float*>(y)[i] = v;
  else if (ydt == 1) static_cast<__half*>(y)[i] = __float2half_rn(v);
  else static_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16_rn(v);
}
int out_kind(DType t) { return t == DType::f32 ? 0 : (t == DType::f16 ? 1 : 2); }

// ---------------------------------------------------------------- int8 activations

// One warp per activation block of BS (32 or 256) values of row m: q = rne(x * 127/amax),
// d = amax / 127; sums of every 16 quantized values (exact ints) for the weights' offsets / mins.
template <typename XT, int BS>
__global__ void quantize_act_kernel(const XT* x, int64_t ldx, int64_t M, int64_t K, int8_t* qa, float* da, int* sa) {
  constexpr int PER = BS / 32;  // values per lane
  const int64_t nblk = K / BS;
  const int64_t wid = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (wid >= M * nblk) return;
  const int lane = threadIdx.x & 31;
  const int64_t m = wid / nblk, bi = wid - m * nblk;
  const XT* xb = x + m * ldx + bi * BS + lane * PER;
  float v[PER];
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    v[i] = to_f(xb[i]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
  int8_t* qb = qa + m * K + bi * BS + lane * PER;
  int s = 0;
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    int q = __float2int_rn(__fmul_rn(v[i], id));
    q = q < -127 ? -127 : (q > 127 ? 127 : q);
    qb[i] = static_cast<int8_t>(q);
    s += q;
  }
  // lanes holding one 16-value run: 16 (BS = 32, PER = 1) or 2 (BS = 256, PER = 8)
  constexpr int group = 16 / PER;
#pragma unroll
  for (int o = 1; o < group; o <<= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane % group == 0) sa[m * (K / 16) + (bi * BS + lane * PER) / 16] = s;
  if (lane == 0) da[m * nblk + bi] = d;
}

// ---------------------------------------------------------------- int8 GEMV over quantized rows

// One weight chunk (32 elements) decoded once and dotted with several activation rows.
template <DType Q>
struct WChunk {
  int w[8];          // int8x4 levels
  float d0 = 0, d1 = 0;  // scale (d1: second 16-element half, q6_k)
  float mterm = 0;   // coefficient of the activation sum (offsets / mins)
  int off = 0;       // level offset subtracted via the activation sum

  __device__ __forceinline__ void load(const uint8_t* b, int c) {
    if constexpr (Q == DType::q8_0) {
#pragma unroll
      for (int i = 0; i < 8; ++i) w[i] = static_cast<int>(qld32(b + 2 + 4 * i));
      d0 = qh2f(qld16(b));
    } else if constexpr (Q == DType::q4_0 || Q == DType::q4_1) {
      const uint8_t* qs = b + (Q == DType::q4_0 ? 2 : 4);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t v = qld32(qs + 4 * i);
        w[i] = nib_lo(v);
        w[4 + i] = nib_hi(v);
      }
      d0 = qh2f(qld16(b));
      if constexpr (Q == DType::q4_0) off = 8;
      else mterm = qh2f(qld16(b + 2));
    } else if constexpr (Q == DType::q5_0 || Q == DType::q5_1) {
      constexpr int o = Q == DType::q5_0 ? 2 : 4;
      const uint32_t qh = qld32(b + o);
      const uint8_t* qs = b + o + 4;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t v = qld32(qs + 4 * i);
        w[i] = nib_lo(v) | bits4_to_b4(qh >> (4 * i));
        w[4 + i] = nib_hi(v) | bits4_to_b4(qh >> (16 + 4 * i));
      }
      d0 = qh2f(qld16(b));
      if constexpr (Q == DType::q5_0) off = 16;
      else mterm = qh2f(qld16(b + 2));
    } else if constexpr (Q == DType::q4_k || Q == DType::q5_k) {
      const int hi = c & 1;
      const uint8_t* qs = b + (Q == DType::q4_k ? 16 : 48) + 32 * (c >> 1);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t v = qld32(qs + 4 * i);
        w[i] = hi ? nib_hi(v) : nib_lo(v);
        if constexpr (Q == DType::q5_k) w[i] |= static_cast<int>(((qld32(b + 16 + 4 * i) >> c) & 0x01010101u) << 4);
      }
      int sc, m;
      q_scale_min_k4(c, b + 4, sc, m);
      d0 = qh2f(qld16(b)) * static_cast<float>(sc);
      mterm = -qh2f(qld16(b + 2)) * static_cast<float>(m);
    } else {  // q6_k
      const int h = c >> 2, k = c & 3;
      const uint8_t* ql = b + 64 * h + (k & 1) * 32;
      const uint8_t* qh = b + 128 + 32 * h;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t v = qld32(ql + 4 * i);
        const uint32_t hv = (qld32(qh + 4 * i) >> (2 * k)) & 0x03030303u;
        w[i] = static_cast<int>(((k < 2 ? v : v >> 4) & 0x0F0F0F0Fu) | (hv << 4));
      }
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 2 * c;
      const float d = qh2f(qld16(b + 208));
      d0 = d * static_cast<float>(sc[0]);
      d1 = d * static_cast<float>(sc[1]);
      off = 32;
    }
  }

  // sum_i w_i * a_i for the 32 activations a (int8x4) with sum asum, in units of the act scale.
  __device__ __forceinline__ float dot(const int (&a)[8], int asum) const {
    if constexpr (Q == DType::q6_k) {
      int s0 = 0, s1 = 0, as0 = 0;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s0 = __dp4a(w[i], a[i], s0);
        as0 = __dp4a(a[i], 0x01010101, as0);
      }
#pragma unroll
      for (int i = 4; i < 8; ++i) s1 = __dp4a(w[i], a[i], s1);
      return d0 * static_cast<float>(s0 - off * as0) + d1 * static_cast<float>(s1 - off * (asum - as0));
    } else {
      int s = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) s = __dp4a(w[i], a[i], s);
      return d0 * static_cast<float>(s - off * asum) + mterm * static_cast<float>(asum);
    }
  }
};

constexpr int kLanesPerRow = 16;
constexpr int kQThreads = 256;

// Rows n of the weight handled by half-warps (one 32-element chunk per lane step: few registers,
// many warps in flight); activation rows in passes of MT.
template <DType Q, int MT>
__global__ void __launch_bounds__(kQThreads) qgemv_kernel(const uint8_t* __restrict__ W, int64_t wrs, int64_t N,
                                                          int64_t K, const int8_t* __restrict__ qa,
                                                          const float* __restrict__ da, const int* __restrict__ sa,
                                                          int64_t M, const float* __restrict__ bias, void* y, int ydt) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes, CPB = BN / 32;
  const int64_t n = (static_cast<int64_t>(blockIdx.x) * kQThreads + threadIdx.x) / kLanesPerRow;
  const int sub = threadIdx.x % kLanesPerRow;
  if ((n & ~int64_t{1}) >= N) return;  // both rows of the warp past the end: the whole warp leaves
  const bool valid = n < N;            // else this half-warp idles but joins the shuffles
  const uint8_t* wrow = W + (valid ? n : 0) * wrs;
  const int64_t chunks = valid ? K / 32 : 0, nda = K / BN;
  for (int64_t m0 = 0; m0 < M; m0 += MT) {
    float acc[MT];
#pragma unroll
    for (int j = 0; j < MT; ++j) acc[j] = 0.f;
    for (int64_t c = sub; c < chunks; c += kLanesPerRow) {
      WChunk<Q> wc;
      wc.load(wrow + (c / CPB) * BB, static_cast<int>(c % CPB));
#pragma unroll
      for (int j = 0; j < MT; ++j) {
        if (m0 + j < M) {
          const int64_t m = m0 + j;
          const int4* ap = reinterpret_cast<const int4*>(qa + m * K + c * 32);
          const int4 a0 = ap[0], a1 = ap[1];
          const int av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
          acc[j] += da[m * nda + c / CPB] * wc.dot(av, sa[m * (K / 16) + 2 * c] + sa[m * (K / 16) + 2 * c + 1]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      float v = acc[j];
#pragma unroll
      for (int o = kLanesPerRow / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (sub == 0 && valid && m0 + j < M) store_out(y, ydt, (m0 + j) * N + n, v + (bias ? bias[n] : 0.f));
    }
  }
}

// ---------------------------------------------------------------- int8 GEMV, wide loads (q8_0, q4_k, q6_k)
//
// Each warp owns R whole weight rows and walks their blocks as one flat sequence; a group of LPB
// lanes decodes one block (q4_k / q6_k: 8 lanes of 32 elements each; q8_0: one lane per block), so
// a warp step covers G = 32 / LPB blocks. q4_k blocks (144 bytes) are 16-byte aligned: each lane
// reads the block header and its 16 bytes of levels with two 16-byte loads straight from global
// memory. q8_0 (34 bytes) and q6_k (210 bytes) blocks are only 2-byte aligned: the warp stages the
// step's contiguous bytes in shared memory with coalesced 16-byte loads and lanes read their
// fields from there as 4-byte words (funnel-shifted when 2 mod 4). Weights go through L2 only
// (ld.global.cg) so the activations, read through L1, stay cached. Levels are made signed int8
// (q6_k: level - 32) or kept unsigned with the mins applied through the activations' 16-value sums
// (q4_k), dotted with __dp4a and scaled once per 8..32 elements.

template <DType Q>
struct VecFmt;
template <> struct VecFmt<DType::q8_0> { static constexpr int lpb = 1; static constexpr bool staged = true; };
template <> struct VecFmt<DType::q4_k> { static constexpr int lpb = 8; static constexpr bool staged = false; };
template <> struct VecFmt<DType::q6_k> { static constexpr int lpb = 8; static constexpr bool staged = true; };

constexpr int kVThreads = 256;
constexpr int kVWarps = kVThreads / 32;

// N consecutive 4-byte words starting at the 2-byte aligned shared address p.
template <int N>
__device__ __forceinline__ void lds_words(const uint8_t* p, uint32_t (&w)[N]) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uint32_t* q = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
  const uint32_t sh = static_cast<uint32_t>(a & 3) * 8;  // 0 or 16
  uint32_t prev = q[0];
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const uint32_t next = q[i + 1];
    w[i] = __funnelshift_r(prev, next, sh);
    prev = next;
  }
}

// Per byte: v - 32 for v in [0, 63], as int8 (no borrow between bytes).
__device__ __forceinline__ int sub32_bytes(uint32_t v) {
  return static_cast<int>(((v | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
}

// q6_k: four signed levels (level - 32, int8 per byte) of quarter k (0..3) from a word of ql bytes
// (low nibbles for k < 2, high nibbles for k >= 2) and the matching word of qh bytes (2 bits per k).
__device__ __forceinline__ int q6k_levels(uint32_t ql, uint32_t qh, int k) {
  const uint32_t low = (k < 2 ? ql : ql >> 4) & 0x0F0F0F0Fu;
  const uint32_t high = ((qh >> (2 * k)) & 0x03030303u) << 4;
  return sub32_bytes(low | high);
}

__device__ __forceinline__ uint32_t byte_of(uint64_t v, int i) { return static_cast<uint32_t>(v >> (8 * i)) & 0xFFu; }

// q4_k/q5_k 6-bit scale and min of sub-block j (runtime, 0..7) from the 12 scale bytes held as
// lo = bytes 0..7 and hi = bytes 8..11 (the layout of gguf::scale_min_k4, from registers).
__device__ __forceinline__ void k4_scale_min_reg(uint64_t lo, uint32_t hi, int j, int& sc, int& m) {
  if (j < 4) {
    sc = static_cast<int>(byte_of(lo, j) & 63);
    m = static_cast<int>(byte_of(lo, j + 4) & 63);
  } else {
    const uint32_t b = (hi >> (8 * (j - 4))) & 0xFFu;
    sc = static_cast<int>((b & 0xF) | ((byte_of(lo, j - 4) >> 6) << 4));
    m = static_cast<int>((b >> 4) | ((byte_of(lo, j) >> 6) << 4));
  }
}

template <typename T>
__device__ __forceinline__ T ldg_act(const T* p) { return __ldg(p); }

// Adds this lane's part of block blk (row-local index) times activation rows m0.. (up to MT) to acc.
template <DType Q, int MT>
__device__ __forceinline__ void vec_block(const uint8_t* b, const uint4 (&raw)[2], int p, int64_t blk, int64_t K, int64_t m0, int64_t M,
                                          const int8_t* __restrict__ qa, const float* __restrict__ da,
                                          const int* __restrict__ sa, float (&acc)[MT]) {
  const int64_t nb = K / QTraits<Q>::n;
  if constexpr (Q == DType::q8_0) {
    uint32_t w[9];
    lds_words<9>(b, w);  // d in the low half of w[0]... as bytes 0..35
    // the 32 levels start at byte 2: re-align by 16 bits
    int lv[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) lv[i] = static_cast<int>(__funnelshift_r(w[i], w[i + 1], 16));
    const float d = qh2f(w[0] & 0xFFFFu);
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      if (m0 + j < M) {
        const int64_t m = m0 + j;
        const int4* ap = reinterpret_cast<const int4*>(qa + m * K + blk * 32);
        const int4 a0 = ldg_act(ap), a1 = ldg_act(ap + 1);
        int s = __dp4a(lv[0], a0.x, 0);
        s = __dp4a(lv[1], a0.y, s);
        s = __dp4a(lv[2], a0.z, s);
        s = __dp4a(lv[3], a0.w, s);
        s = __dp4a(lv[4], a1.x, s);
        s = __dp4a(lv[5], a1.y, s);
        s = __dp4a(lv[6], a1.z, s);
        s = __dp4a(lv[7], a1.w, s);
        acc[j] += ldg_act(da + m * nb + blk) * (d * static_cast<float>(s));
      }
    }
  } else if constexpr (Q == DType::q4_k) {
    // raw: the block header and the lane's 16 bytes of qs, loaded by the caller; piece p = qs bytes 16p..16p+15 = elements
    // 64c + l0 .. +15 (low nibbles, sub-block 2c) and 64c + 32 + l0 .. +15 (high, sub-block 2c+1).
    const uint4 hdr = raw[0], qv = raw[1];
    const int c = p >> 1, l0 = (p & 1) * 16;
    const float d = qh2f(hdr.x & 0xFFFFu), dmin = qh2f(hdr.x >> 16);
    const uint64_t slo = static_cast<uint64_t>(hdr.y) | (static_cast<uint64_t>(hdr.z) << 32);
    int sc0, mn0, sc1, mn1;
    k4_scale_min_reg(slo, hdr.w, 2 * c, sc0, mn0);
    k4_scale_min_reg(slo, hdr.w, 2 * c + 1, sc1, mn1);
    const int lo[4] = {nib_lo(qv.x), nib_lo(qv.y), nib_lo(qv.z), nib_lo(qv.w)};
    const int hi[4] = {nib_hi(qv.x), nib_hi(qv.y), nib_hi(qv.z), nib_hi(qv.w)};
    const int64_t e0 = blk * 256 + 64 * c + l0;
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      if (m0 + j < M) {
        const int64_t m = m0 + j;
        const int4 al = ldg_act(reinterpret_cast<const int4*>(qa + m * K + e0));
        const int4 ah = ldg_act(reinterpret_cast<const int4*>(qa + m * K + e0 + 32));
        int s0 = __dp4a(lo[0], al.x, 0);
        s0 = __dp4a(lo[1], al.y, s0);
        s0 = __dp4a(lo[2], al.z, s0);
        s0 = __dp4a(lo[3], al.w, s0);
        int s1 = __dp4a(hi[0], ah.x, 0);
        s1 = __dp4a(hi[1], ah.y, s1);
        s1 = __dp4a(hi[2], ah.z, s1);
        s1 = __dp4a(hi[3], ah.w, s1);
        const int* sp = sa + m * (K / 16) + e0 / 16;
        const int msum = mn0 * ldg_act(sp) + mn1 * ldg_act(sp + 2);
        const float v = d * static_cast<float>(sc0 * s0 + sc1 * s1) - dmin * static_cast<float>(msum);
        acc[j] += ldg_act(da + m * nb + blk) * v;
      }
    }
  } else {
    static_assert(Q == DType::q6_k);
    // lane piece p: h = p / 4, l0 = 8 (p % 4): elements 128h + 32k + l0 .. +7 for k = 0..3
    const int h = p >> 2, l0 = (p & 3) * 8;
    uint32_t qa0[2], qb0[2], qh[2], scw[2];
    lds_words<2>(b + 64 * h + l0, qa0);       // k = 0 (low nibbles), k = 2 (high)
    lds_words<2>(b + 64 * h + 32 + l0, qb0);  // k = 1 (low), k = 3 (high)
    lds_words<2>(b + 128 + 32 * h + l0, qh);  // 2 bits per k
    lds_words<2>(b + 192 + 8 * h, scw);       // scales 8h .. 8h + 7
    const float d = qh2f(*reinterpret_cast<const uint16_t*>(b + 208));
    const uint64_t scs = static_cast<uint64_t>(scw[0]) | (static_cast<uint64_t>(scw[1]) << 32);
    const int sh = l0 >= 16 ? 1 : 0;
    int sc[4], lv[4][2];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      sc[k] = static_cast<int8_t>(byte_of(scs, 2 * k + sh));
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        lv[k][i] = q6k_levels((k & 1) ? qb0[i] : qa0[i], qh[i], k);
      }
    }
    const int64_t e0 = blk * 256 + 128 * h + l0;
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      if (m0 + j < M) {
        const int64_t m = m0 + j;
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int2 av = ldg_act(reinterpret_cast<const int2*>(qa + m * K + e0 + 32 * k));
          s += sc[k] * __dp4a(lv[k][1], av.y, __dp4a(lv[k][0], av.x, 0));
        }
        acc[j] += ldg_act(da + m * nb + blk) * (d * static_cast<float>(s));
      }
    }
  }
}

template <DType Q, int MT, int R>
__global__ void __launch_bounds__(kVThreads, 3) qgemv_vec_kernel(const uint8_t* __restrict__ W, int64_t wrs, int64_t N,
                                                              int64_t K, const int8_t* __restrict__ qa,
                                                              const float* __restrict__ da, const int* __restrict__ sa,
                                                              int64_t M, const float* __restrict__ bias, void* y,
                                                              int ydt) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes, LPB = VecFmt<Q>::lpb, G = 32 / LPB;
  constexpr bool kStaged = VecFmt<Q>::staged;
  constexpr int kChunks = (G * BB + 15 + 15) / 16;        // 16-byte pieces a step can touch
  constexpr int kRaw = kStaged ? (kChunks + 31) / 32 : 2;  // 16-byte loads per lane and step
  constexpr int kStage = kStaged ? kRaw * 32 * 16 + 16 : 16;  // + a word read past the end
  static_assert(kRaw >= 2);
  __shared__ __align__(16) uint8_t stage[kVWarps][kStage];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * kVWarps + warp) * R;
  if (n0 >= N) return;  // the whole warp
  const int nr = N - n0 < R ? static_cast<int>(N - n0) : R;
  const int64_t nb = K / BN, total = nr * nb;
  const int g = lane / LPB, p = lane % LPB;
  // Loads the weight bytes of the step starting at flat block t0 into v.
  auto fetch = [&](int64_t t0, uint4 (&v)[kRaw]) {
    if constexpr (kStaged) {
      // rows are contiguous: the step's blocks are one byte range, read as aligned 16-byte pieces
      const uint8_t* src = W + n0 * wrs + t0 * BB;
      const int64_t nblk = total - t0 < G ? total - t0 : G;
      const int off = static_cast<int>(reinterpret_cast<uintptr_t>(src) & 15);
      const uint4* a16 = reinterpret_cast<const uint4*>(src - off);
      const int nchunks = static_cast<int>((off + nblk * BB + 15) / 16);
#pragma unroll
      for (int i = 0; i < kRaw; ++i)
        if (lane + 32 * i < nchunks) v[i] = __ldcg(a16 + lane + 32 * i);
    } else {
      const int64_t t = t0 + g;
      if (t < total) {
        const int64_t r = t / nb;
        const uint8_t* b = W + (n0 + r) * wrs + (t - r * nb) * BB;
        v[0] = __ldcg(reinterpret_cast<const uint4*>(b));
        v[1] = __ldcg(reinterpret_cast<const uint4*>(b + 16 + 16 * p));
      }
    }
  };
  for (int64_t m0 = 0; m0 < M; m0 += MT) {
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < MT; ++j) acc[r][j] = 0.f;
    // Software pipelined: the next step's weight bytes are loaded before this step is decoded.
    // raw: staged types, the lane's 16-byte pieces of the step's byte range; q4_k, the block
    // header and the lane's 16 bytes of levels.
    uint4 raw[kRaw] = {}, nxt[kRaw] = {};
    fetch(0, raw);
    for (int64_t t0 = 0; t0 < total; t0 += G) {
      if (t0 + G < total) fetch(t0 + G, nxt);
      const int64_t t = t0 + g;
      const int r = t < total ? static_cast<int>(t / nb) : 0;
      const int64_t blk = t - static_cast<int64_t>(r) * nb;
      const uint8_t* bp = nullptr;
      if constexpr (kStaged) {
        const int off = static_cast<int>(reinterpret_cast<uintptr_t>(W + n0 * wrs + t0 * BB) & 15);
        __syncwarp();  // the previous step's reads of the stage are done
#pragma unroll
        for (int i = 0; i < kRaw; ++i) *reinterpret_cast<uint4*>(&stage[warp][16 * (lane + 32 * i)]) = raw[i];
        __syncwarp();
        bp = &stage[warp][off + g * BB];
      }
      if (t < total) {
        float part[MT];
#pragma unroll
        for (int j = 0; j < MT; ++j) part[j] = 0.f;
        const uint4 q4raw[2] = {raw[0], raw[1]};  // used by q4_k only
        vec_block<Q, MT>(bp, q4raw, p, blk, K, m0, M, qa, da, sa, part);
#pragma unroll
        for (int rr = 0; rr < R; ++rr)
          if (rr == r)
#pragma unroll
            for (int j = 0; j < MT; ++j) acc[rr][j] += part[j];
      }
#pragma unroll
      for (int i = 0; i < kRaw; ++i) raw[i] = nxt[i];
    }
#pragma unroll
    for (int rr = 0; rr < R; ++rr)
#pragma unroll
      for (int j = 0; j < MT; ++j) {
        float v = acc[rr][j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0 && rr < nr && m0 + j < M) {
          const int64_t n = n0 + rr;
          store_out(y, ydt, (m0 + j) * N + n, v + (bias ? bias[n] : 0.f));
        }
      }
  }
}

template <DType Q>
constexpr bool has_vec_kernel() {
  return Q == DType::q8_0 || Q == DType::q4_k || Q == DType::q6_k;
}

template <DType Q, int MT, int R>
void launch_vec(const uint8_t* wp, int64_t wrs, int64_t N, int64_t K, const int8_t* qa, const float* da, const int* sa,
                int64_t M, const float* bias, void* y, int ydt, cudaStream_t s) {
  const int64_t warps = (N + R - 1) / R;
  const unsigned grid = blocks_for(warps, kVWarps);
  qgemv_vec_kernel<Q, MT, R><<<grid, kVThreads, 0, s>>>(wp, wrs, N, K, qa, da, sa, M, bias, y, ydt);
}

// ---------------------------------------------------------------- int8 tensor-core skinny GEMM (q8_0, q4_k, q6_k)
//
// One CTA of 4 warps per 16 weight rows (the M = 16 "A" operand: output features); the activation
// rows are the n = 8 columns of mma.sync s8 x s8 -> s32 (NT n-tiles: M <= 8 * NT). The 4 warps
// split the row's blocks (warp w: blocks w, w + 4, ...) and meet in shared memory at the end.
// Weight levels go straight from global memory (through L2 only) into the A fragments: a dot
// product does not care about the order of k, so lane (g, t) holds bytes 8t .. 8t + 7 of a
// 32-element group of rows g and g + 8 (logical k 4t .. 4t + 3 and 16 + 4t .. +3), and the
// activation fragments take the same 8 bytes of token g. q8_0: one m16n8k32 per block, scaled by
// d * da in f32. q4_k: per 32-byte group c one mma on the low nibbles (sub-block 2c) and one on the
// high (2c + 1), each s32 result times its 6-bit scale summed in s32 over the block; the min term
// m_j * sum(a) is an mma too (A = m_j in every byte of the row), accumulated in s32 over the 8
// sub-blocks; then d * isum - dmin * msum, times the activation's per-256 scale. q6_k: 16 scale
// groups of 16 elements, m16n8k16 each (levels - 32 as int8), s32 results times the int8 scales.
// Every integer result is exact, so the output equals the dp4a kernels' up to f32 summation order.

// (not volatile: pure functions of their operands, free to be scheduled around the loads)
__device__ __forceinline__ void mma_k32(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_k16(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
               : "r"(a0), "r"(a1), "r"(b0));
}

constexpr int kMWarps = 4;

// 4 bytes at a 2-byte aligned address: one load where it is 4-byte aligned (half the blocks of a
// q8_0 / q6_k row when the row's bytes are a multiple of 4), else two 16-bit halves.
__device__ __forceinline__ uint32_t ld32_a2(const uint8_t* p) {
  return (reinterpret_cast<uintptr_t>(p) & 3) == 0 ? *reinterpret_cast<const uint32_t*>(p) : qld32(p);
}

// Raw weight bytes of one block for rows g and g + 8 (index 0 / 1) as this lane needs them.
template <DType Q>
struct MmaRaw;
template <>
struct MmaRaw<DType::q8_0> {
  uint32_t q[2][2];  // levels 8t .. 8t + 7
  uint32_t d[2];
  __device__ __forceinline__ void load(const uint8_t* b0, const uint8_t* b1, int t) {
    const uint8_t* b[2] = {b0, b1};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      d[r] = qld16(b[r]);
      q[r][0] = ld32_a2(b[r] + 2 + 8 * t);
      q[r][1] = ld32_a2(b[r] + 6 + 8 * t);
    }
  }
};
template <>
struct MmaRaw<DType::q4_k> {
  uint4 hdr[2];     // d, dmin, 12 scale bytes
  uint2 qs[2][4];   // bytes 32c + 8t .. +7 of the levels, c = 0..3
  __device__ __forceinline__ void load(const uint8_t* b0, const uint8_t* b1, int t) {
    const uint8_t* b[2] = {b0, b1};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      hdr[r] = __ldcg(reinterpret_cast<const uint4*>(b[r]));
#pragma unroll
      for (int c = 0; c < 4; ++c) qs[r][c] = __ldcg(reinterpret_cast<const uint2*>(b[r] + 16 + 32 * c + 8 * t));
    }
  }
};

// q4_k header of the two rows as packed 6-bit scales / mins (word 0 = sub-blocks 0..3, word 1 = 4..7,
// one byte each) and the f32 d / dmin.
__device__ __forceinline__ void q4k_mma_scales(const MmaRaw<DType::q4_k>& w, uint32_t (&scw)[2][2],
                                               uint32_t (&mw)[2][2], float (&d)[2], float (&dm)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const uint32_t s0 = w.hdr[r].y, s1 = w.hdr[r].z, s2 = w.hdr[r].w;
    scw[r][0] = s0 & 0x3F3F3F3Fu;
    scw[r][1] = (s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u);
    mw[r][0] = s1 & 0x3F3F3F3Fu;
    mw[r][1] = ((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u);
  }
  d[0] = qh2f(w.hdr[0].x & 0xFFFFu);
  d[1] = qh2f(w.hdr[1].x & 0xFFFFu);
  dm[0] = qh2f(w.hdr[0].x >> 16);
  dm[1] = qh2f(w.hdr[1].x >> 16);
}
template <>
struct MmaRaw<DType::q6_k> {
  uint32_t ql[2][8];  // [h][q & 1][s]: ql bytes 64h + 32(q & 1) + 16s + 4t .. +3
  uint32_t qh[2][4];  // [h][s]: qh bytes 32h + 16s + 4t .. +3
  uint32_t sc[2][4];  // the 16 int8 scales
  uint32_t d[2];
  __device__ __forceinline__ void load(const uint8_t* b0, const uint8_t* b1, int t) {
    const uint8_t* b[2] = {b0, b1};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int i = 0; i < 8; ++i) ql[r][i] = ld32_a2(b[r] + 64 * (i >> 2) + 32 * ((i >> 1) & 1) + 16 * (i & 1) + 4 * t);
#pragma unroll
      for (int i = 0; i < 4; ++i) qh[r][i] = ld32_a2(b[r] + 128 + 32 * (i >> 1) + 16 * (i & 1) + 4 * t);
#pragma unroll
      for (int i = 0; i < 4; ++i) sc[r][i] = ld32_a2(b[r] + 192 + 4 * i);
      d[r] = qld16(b[r] + 208);
    }
  }
};

// q6_k A fragment of the m16n8k16 MMA for scale group (h, q, s) (elements 128h + 32q + 16s .. +15,
// scale 8h + 2q + s) of the two rows r = 0, 1: the int8 levels and each row's int8 scale.
__device__ __forceinline__ void q6k_mma_frag(const MmaRaw<DType::q6_k>& w, int h, int q, int s, uint32_t (&a)[2],
                                             int (&sc)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    a[r] = static_cast<uint32_t>(q6k_levels(w.ql[r][4 * h + 2 * (q & 1) + s], w.qh[r][2 * h + s], q));
    const int si = 8 * h + 2 * q + s;
    sc[r] = static_cast<int>(static_cast<int8_t>((w.sc[r][si >> 2] >> (8 * (si & 3))) & 0xFFu));
  }
}

__device__ __forceinline__ uint32_t act_word(const int8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ uint2 act_pair(const int8_t* p) { return *reinterpret_cast<const uint2*>(p); }
// q6_k: one scale group's m16n8k16 MMA of the A fragment a (int8 scales sc of rows 0 / 1) with
// the activations' word at p, added to isum scaled.
__device__ __forceinline__ void q6k_mma_group(int (&isum)[4], const uint32_t (&a)[2], const int (&sc)[2],
                                              const int8_t* p) {
  const uint32_t b = act_word(p);
  int c[4] = {0, 0, 0, 0};
  mma_k16(c, a[0], a[1], b);
  isum[0] += sc[0] * c[0];
  isum[1] += sc[0] * c[1];
  isum[2] += sc[1] * c[2];
  isum[3] += sc[1] * c[3];
}

// Adds block blk's contribution (raw weight bytes in w) to acc[nt][i]: rows (g, g, g + 8, g + 8),
// tokens (2t, 2t + 1, 2t, 2t + 1) of n-tile nt. arow[nt]: token g's int8 row of n-tile nt;
// tok[nt][2]: the (clamped) tokens 2t, 2t + 1.
template <DType Q, int NT, bool DO>
__device__ __forceinline__ void mma_block(const MmaRaw<Q>& w, int64_t blk, int t, int64_t nb,
                                          const int8_t* const (&arow)[NT], const int (&tok)[NT][2],
                                          const float* __restrict__ da, float (&acc)[NT][4]) {
  if constexpr (Q == DType::q8_0) {
    const uint32_t a[4] = {w.q[0][0], w.q[1][0], w.q[0][1], w.q[1][1]};
    const float d0 = qh2f(w.d[0]), d1 = qh2f(w.d[1]);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const uint2 b = act_pair(arow[nt] + blk * 32 + 8 * t);
      int c[4] = {0, 0, 0, 0};
      mma_k32(c, a, b.x, b.y);
      const float e0 = da[tok[nt][0] * nb + blk], e1 = da[tok[nt][1] * nb + blk];
      acc[nt][0] += (d0 * e0) * static_cast<float>(c[0]);
      acc[nt][1] += (d0 * e1) * static_cast<float>(c[1]);
      acc[nt][2] += (d1 * e0) * static_cast<float>(c[2]);
      acc[nt][3] += (d1 * e1) * static_cast<float>(c[3]);
    }
  } else if constexpr (Q == DType::q4_k && DO) {
    // decode once: each 32-byte group's A fragments, scales and min fragments are built once and
    // used by every n-tile (s32 sums per n-tile live across the block)
    uint32_t scw[2][2], mw[2][2];
    float d[2], dm[2];
    q4k_mma_scales(w, scw, mw, d, dm);
    int isum[NT][4], msum[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) isum[nt][i] = msum[nt][i] = 0;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int j = 2 * c + h;
        auto nib = [h](uint32_t v) { return static_cast<uint32_t>(h ? nib_hi(v) : nib_lo(v)); };
        const uint32_t a[4] = {nib(w.qs[0][c].x), nib(w.qs[1][c].x), nib(w.qs[0][c].y), nib(w.qs[1][c].y)};
        const int sc0 = static_cast<int>((scw[0][j >> 2] >> (8 * (j & 3))) & 0xFFu);
        const int sc1 = static_cast<int>((scw[1][j >> 2] >> (8 * (j & 3))) & 0xFFu);
        const uint32_t m0 = ((mw[0][j >> 2] >> (8 * (j & 3))) & 0xFFu) * 0x01010101u;
        const uint32_t m1 = ((mw[1][j >> 2] >> (8 * (j & 3))) & 0xFFu) * 0x01010101u;
        const uint32_t am[4] = {m0, m1, m0, m1};
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const uint2 b = act_pair(arow[nt] + blk * 256 + 64 * c + 32 * h + 8 * t);
          int cq[4] = {0, 0, 0, 0};
          mma_k32(cq, a, b.x, b.y);
          mma_k32(msum[nt], am, b.x, b.y);
          isum[nt][0] += sc0 * cq[0];
          isum[nt][1] += sc0 * cq[1];
          isum[nt][2] += sc1 * cq[2];
          isum[nt][3] += sc1 * cq[3];
        }
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float e[2] = {da[tok[nt][0] * nb + blk], da[tok[nt][1] * nb + blk]};
#pragma unroll
      for (int i = 0; i < 4; ++i)
        acc[nt][i] += e[i & 1] * (d[i >> 1] * static_cast<float>(isum[nt][i]) - dm[i >> 1] * static_cast<float>(msum[nt][i]));
    }
  } else if constexpr (Q == DType::q4_k) {
    // packed 6-bit scales / mins: word 0 = sub-blocks 0..3, word 1 = 4..7 (one byte each)
    uint32_t scw[2][2], mw[2][2];
    float d[2], dm[2];
    q4k_mma_scales(w, scw, mw, d, dm);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      int isum[4] = {0, 0, 0, 0}, msum[4] = {0, 0, 0, 0};
#pragma unroll
      for (int c = 0; c < 4; ++c) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // h = 0: low nibbles, sub-block 2c; 1: high nibbles, 2c + 1
          const int j = 2 * c + h;
          auto nib = [h](uint32_t v) { return static_cast<uint32_t>(h ? nib_hi(v) : nib_lo(v)); };
          const uint32_t a[4] = {nib(w.qs[0][c].x), nib(w.qs[1][c].x), nib(w.qs[0][c].y), nib(w.qs[1][c].y)};
          const int sc0 = static_cast<int>((scw[0][j >> 2] >> (8 * (j & 3))) & 0xFFu);
          const int sc1 = static_cast<int>((scw[1][j >> 2] >> (8 * (j & 3))) & 0xFFu);
          const uint32_t m0 = ((mw[0][j >> 2] >> (8 * (j & 3))) & 0xFFu) * 0x01010101u;
          const uint32_t m1 = ((mw[1][j >> 2] >> (8 * (j & 3))) & 0xFFu) * 0x01010101u;
          const uint32_t am[4] = {m0, m1, m0, m1};
          const uint2 b = act_pair(arow[nt] + blk * 256 + 64 * c + 32 * h + 8 * t);
          int cq[4] = {0, 0, 0, 0};
          mma_k32(cq, a, b.x, b.y);
          mma_k32(msum, am, b.x, b.y);
          isum[0] += sc0 * cq[0];
          isum[1] += sc0 * cq[1];
          isum[2] += sc1 * cq[2];
          isum[3] += sc1 * cq[3];
        }
      }
      const float e[2] = {da[tok[nt][0] * nb + blk], da[tok[nt][1] * nb + blk]};
#pragma unroll
      for (int i = 0; i < 4; ++i)
        acc[nt][i] += e[i & 1] * (d[i >> 1] * static_cast<float>(isum[i]) - dm[i >> 1] * static_cast<float>(msum[i]));
    }
  } else if constexpr (DO) {
    static_assert(Q == DType::q6_k);
    const float d[2] = {qh2f(w.d[0]), qh2f(w.d[1])};
    int isum[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) isum[nt][i] = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int q = 0; q < 4; ++q)
#pragma unroll
        for (int s = 0; s < 2; ++s) {
          uint32_t a[2];
          int sc[2];
          q6k_mma_frag(w, h, q, s, a, sc);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            q6k_mma_group(isum[nt], a, sc, arow[nt] + blk * 256 + 128 * h + 32 * q + 16 * s + 4 * t);
          }
        }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float e[2] = {da[tok[nt][0] * nb + blk], da[tok[nt][1] * nb + blk]};
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] += (e[i & 1] * d[i >> 1]) * static_cast<float>(isum[nt][i]);
    }
  } else {
    static_assert(Q == DType::q6_k);
    const float d[2] = {qh2f(w.d[0]), qh2f(w.d[1])};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      int isum[4] = {0, 0, 0, 0};
      // scale group (h, q, s): elements 128h + 32q + 16s .. +15, scale 8h + 2q + s; lane t: 4t .. 4t + 3
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int q = 0; q < 4; ++q)
#pragma unroll
          for (int s = 0; s < 2; ++s) {
            uint32_t a[2];
            int sc[2];
            q6k_mma_frag(w, h, q, s, a, sc);
            q6k_mma_group(isum, a, sc, arow[nt] + blk * 256 + 128 * h + 32 * q + 16 * s + 4 * t);
          }
      const float e[2] = {da[tok[nt][0] * nb + blk], da[tok[nt][1] * nb + blk]};
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] += (e[i & 1] * d[i >> 1]) * static_cast<float>(isum[i]);
    }
  }
}

// Blocks a warp loads before it decodes them (bytes in flight).
template <DType Q, int NT>
constexpr int mma_unroll() {
  return (Q == DType::q8_0 ? 4 : 2) / (NT >= 4 ? 2 : 1);
}

template <DType Q, int NT, bool DO>
__global__ void __launch_bounds__(kMWarps * 32, NT == 1 ? 4 : 2) qmma_kernel(const uint8_t* __restrict__ W, int64_t wrs, int64_t N,
                                                          int64_t K, const int8_t* __restrict__ qa,
                                                          const float* __restrict__ da, int64_t M,
                                                          const float* __restrict__ bias, void* y, int ydt) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes, U = mma_unroll<Q, NT>();
  __shared__ float red[kMWarps - 1][NT * 4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t r0 = n0 + g < N ? n0 + g : N - 1, r1 = n0 + g + 8 < N ? n0 + g + 8 : N - 1;  // clamped rows
  const uint8_t* w0 = W + r0 * wrs;
  const uint8_t* w1 = W + r1 * wrs;
  const int64_t nb = K / BN;
  // token passes of 8 * NT rows (one pass unless NT is capped below M, see launch_mma)
  for (int64_t mb = 0; mb < M; mb += 8 * NT) {
    const int64_t mlast = M - 1;
    const int8_t* arow[NT];
    int tok[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int64_t m = mb + 8 * nt + g;
      arow[nt] = qa + (m < mlast ? m : mlast) * K;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int64_t mi = mb + 8 * nt + 2 * t + i;
        tok[nt][i] = static_cast<int>(mi < mlast ? mi : mlast);
      }
    }
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = 0.f;
    for (int64_t b0 = warp; b0 < nb; b0 += kMWarps * U) {
      MmaRaw<Q> raw[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t blk = b0 + kMWarps * u;
        if (blk < nb) raw[u].load(w0 + blk * BB, w1 + blk * BB, t);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t blk = b0 + kMWarps * u;
        if (blk < nb) mma_block<Q, NT, DO>(raw[u], blk, t, nb, arow, tok, da, acc);
      }
    }
    if (warp > 0)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) red[warp - 1][nt * 4 + i][lane] = acc[nt][i];
    __syncthreads();
    if (warp == 0)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float v = acc[nt][i];
#pragma unroll
          for (int q = 0; q < kMWarps - 1; ++q) v += red[q][nt * 4 + i][lane];
          const int64_t n = n0 + g + 8 * (i >> 1), m = mb + 8 * nt + 2 * t + (i & 1);
          if (n < N && m < M) store_out(y, ydt, m * N + n, v + (bias ? bias[n] : 0.f));
        }
    __syncthreads();  // red is written again by the next pass
  }
}

// ---------------------------------------------------------------- the same mma math, weights staged in shared memory
//
// FLAGOS_CUDA_QGEMV=smem. A CTA of 4 warps per 32 weight rows: warp w takes rows 16 (w & 1) ..
// +15 and the odd or even blocks (w >> 1) of each stage. Stages of SB blocks per row (q8_0 16,
// k-quants 4) are copied with cp.async as whole 16-byte chunks of each row's contiguous run of
// blocks (the chunk holding the run's first byte upwards: any row alignment; the bytes before /
// after the run in those chunks are never used; a chunk reaching outside the tensor's bytes is
// copied byte by byte, see copy_chunk_clamped), double-buffered, so a CTA has one stage (17-27
// KiB) in flight while it computes the other. Fragments are read from shared memory 4 bytes at
// any alignment (two words and a funnel shift) into MmaRaw, then mma_block (decode once) as in
// mma2. All n-tiles in one pass over the weights, except k-quants at M > 32 (8 n-tiles need more
// than 255 registers: two launches of 32 tokens). 2 CTAs of 4 warps per SM at least (<= 255 regs).
constexpr int kSWarps = 4, kSRows = 32;

// 16 bytes at the 16-byte aligned global address src into shared dst, never reading a byte outside
// [lo, hi) (those read as zeros): one cp.async for a chunk inside, byte loads for one that straddles.
__device__ __forceinline__ void copy_chunk_clamped(uint8_t* dst, uintptr_t src, uintptr_t lo, uintptr_t hi) {
  if (src >= lo && src + 16 <= hi) {
    cp_async16(dst, reinterpret_cast<const void*>(src), 16);
  } else {
#pragma unroll 1
    for (int b = 0; b < 16; ++b)
      dst[b] = src + b >= lo && src + b < hi ? *reinterpret_cast<const uint8_t*>(src + b) : uint8_t{0};
  }
}

template <int N>
__device__ __forceinline__ void cp_async_wait_n() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}


template <DType Q>
struct SmemFmt {
  static constexpr int SB = Q == DType::q8_0 ? 16 : 4;  // blocks per row per stage
  static constexpr int run = SB * QTraits<Q>::bytes;    // bytes per row per stage
  // row pitch: room for the 0..15 byte lead of the first chunk and a word of over-read; 8 words
  // past a multiple of 32 words, so the 8 rows of one fragment load start in different banks
  static constexpr int pitch = (run + 15 + 4 + 127) / 128 * 128 + 32;
  static constexpr int stage = kSRows * pitch;
  static constexpr size_t smem = 2 * static_cast<size_t>(stage);
};

// 4 bytes at any byte address p of shared memory (p + 4 may be read past the last byte).
__device__ __forceinline__ uint32_t lds_any(const uint8_t* p) {
  const uint32_t sh = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p) & 3);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(p - sh);  // from p: stays a shared-memory pointer
  return __funnelshift_r(w[0], w[1], sh * 8);
}

template <DType Q>
__device__ __forceinline__ void load_raw_smem(MmaRaw<Q>& w, const uint8_t* b0, const uint8_t* b1, int t) {
  const uint8_t* b[2] = {b0, b1};
  if constexpr (Q == DType::q8_0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      w.d[r] = lds_any(b[r]) & 0xFFFFu;
      w.q[r][0] = lds_any(b[r] + 2 + 8 * t);
      w.q[r][1] = lds_any(b[r] + 6 + 8 * t);
    }
  } else if constexpr (Q == DType::q4_k) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      w.hdr[r] = make_uint4(lds_any(b[r]), lds_any(b[r] + 4), lds_any(b[r] + 8), lds_any(b[r] + 12));
#pragma unroll
      for (int c = 0; c < 4; ++c)
        w.qs[r][c] = make_uint2(lds_any(b[r] + 16 + 32 * c + 8 * t), lds_any(b[r] + 20 + 32 * c + 8 * t));
    }
  } else {
    static_assert(Q == DType::q6_k);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int i = 0; i < 8; ++i) w.ql[r][i] = lds_any(b[r] + 64 * (i >> 2) + 32 * ((i >> 1) & 1) + 16 * (i & 1) + 4 * t);
#pragma unroll
      for (int i = 0; i < 4; ++i) w.qh[r][i] = lds_any(b[r] + 128 + 32 * (i >> 1) + 16 * (i & 1) + 4 * t);
#pragma unroll
      for (int i = 0; i < 4; ++i) w.sc[r][i] = lds_any(b[r] + 192 + 4 * i);
      w.d[r] = lds_any(b[r] + 208) & 0xFFFFu;
    }
  }
}

template <DType Q, int NT>
__global__ void __launch_bounds__(kSWarps * 32, 2) qsmem_kernel(const uint8_t* __restrict__ W, int64_t wrs, int64_t N,
                                                             int64_t K, const int8_t* __restrict__ qa,
                                                             const float* __restrict__ da, int64_t M,
                                                             const float* __restrict__ bias, void* y, int ydt) {
  using F = SmemFmt<Q>;
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes, SB = F::SB, CH = F::pitch / 16;
  // n-tiles per decode, decodes per block (k-quants launch at most 4 n-tiles, see launch_smem)
  constexpr int NTP = Q == DType::q8_0 || NT <= 4 ? NT : 2, P = NT / NTP;
  extern __shared__ __align__(16) uint8_t qsm[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rg = warp & 1, half = warp >> 1;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kSRows;
  const int64_t nb = K / BN, ns = (nb + SB - 1) / SB;

  // the weight tensor's bytes: a row's first / last chunk may reach outside them (never read)
  const uintptr_t lo = reinterpret_cast<uintptr_t>(W), hi = lo + static_cast<uintptr_t>((N - 1) * wrs + nb * BB);
  // stage s of every row into buffer buf (rows past N copy row N - 1; never stored)
  auto issue = [&](int64_t st, int buf) {
    const int64_t b0 = st * SB;
    const int run = static_cast<int>((nb - b0 < SB ? nb - b0 : SB) * BB);
    for (int i = threadIdx.x; i < kSRows * CH; i += kSWarps * 32) {
      const int r = i / CH, c = i - r * CH;
      const int64_t row = n0 + r < N ? n0 + r : N - 1;
      const uintptr_t a = reinterpret_cast<uintptr_t>(W + row * wrs + b0 * BB);
      const int nch = (static_cast<int>(a & 15) + run + 15) >> 4;
      if (c < nch)
        copy_chunk_clamped(qsm + buf * F::stage + r * F::pitch + 16 * c, (a & ~uintptr_t{15}) + 16 * static_cast<uintptr_t>(c),
                           lo, hi);
    }
  };

  const int8_t* arow[P][NTP];
  int tok[P][NTP][2];
  float acc[P][NTP][4];
#pragma unroll
  for (int p = 0; p < P; ++p)
#pragma unroll
    for (int j = 0; j < NTP; ++j) {
      const int64_t nt = p * NTP + j, mlast = M - 1, m = 8 * nt + g;
      arow[p][j] = qa + (m < mlast ? m : mlast) * K;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int64_t mi = 8 * nt + 2 * t + i;
        tok[p][j][i] = static_cast<int>(mi < mlast ? mi : mlast);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[p][j][i] = 0.f;
    }

  const int lr0 = 16 * rg + g, lr1 = lr0 + 8;  // this lane's two rows in the tile
  const int64_t row0 = n0 + lr0 < N ? n0 + lr0 : N - 1, row1 = n0 + lr1 < N ? n0 + lr1 : N - 1;
  if (ns > 0) issue(0, 0);
  cp_async_commit();
  for (int64_t st = 0; st < ns; ++st) {
    const int buf = static_cast<int>(st & 1);
    if (st + 1 < ns) issue(st + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait_1();
    __syncthreads();
    const int64_t b0 = st * SB;
    const int sbn = static_cast<int>(nb - b0 < SB ? nb - b0 : SB);
    // the run of row r starts (address & 15) bytes into its first chunk
    const uint8_t* s0 = qsm + buf * F::stage + lr0 * F::pitch +
                        (reinterpret_cast<uintptr_t>(W + row0 * wrs + b0 * BB) & 15);
    const uint8_t* s1 = qsm + buf * F::stage + lr1 * F::pitch +
                        (reinterpret_cast<uintptr_t>(W + row1 * wrs + b0 * BB) & 15);
    for (int j = half; j < sbn; j += 2) {
      MmaRaw<Q> raw;
      load_raw_smem<Q>(raw, s0 + j * BB, s1 + j * BB, t);
#pragma unroll
      for (int p = 0; p < P; ++p) mma_block<Q, NTP, true>(raw, b0 + j, t, nb, arow[p], tok[p], da, acc[p]);
    }
    __syncthreads();  // buffer buf is refilled by the next iteration's issue
  }

  // the two warps of a row group meet in shared memory (the stage buffers are free now)
  float* red = reinterpret_cast<float*>(qsm);  // [2][NT * 4][32]
  if (half == 1)
#pragma unroll
    for (int p = 0; p < P; ++p)
#pragma unroll
      for (int j = 0; j < NTP; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) red[(rg * NT * 4 + (p * NTP + j) * 4 + i) * 32 + lane] = acc[p][j][i];
  __syncthreads();
  if (half == 0)
#pragma unroll
    for (int p = 0; p < P; ++p)
#pragma unroll
      for (int j = 0; j < NTP; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int nt = p * NTP + j;
          const float v = acc[p][j][i] + red[(rg * NT * 4 + nt * 4 + i) * 32 + lane];
          const int64_t n = n0 + lr0 + 8 * (i >> 1), m = 8 * nt + 2 * t + (i & 1);
          if (n < N && m < M) store_out(y, ydt, m * N + n, v + (bias ? bias[n] : 0.f));
        }
}

template <DType Q, int NT>
void launch_smem_nt(const uint8_t* wp, int64_t wrs, int64_t N, int64_t K, const int8_t* qa, const float* da, int64_t M,
                    const float* bias, void* y, int ydt, cudaStream_t s) {
  constexpr size_t smem = SmemFmt<Q>::smem;
  static_assert(smem >= 2 * NT * 4 * 32 * sizeof(float), "reduction buffer");
  auto* fn = &qsmem_kernel<Q, NT>;
  static const bool attr = [fn] {
    if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    return true;
  }();
  (void)attr;
  const unsigned grid = static_cast<unsigned>((N + kSRows - 1) / kSRows);
  fn<<<grid, kSWarps * 32, smem, s>>>(wp, wrs, N, K, qa, da, M, bias, y, ydt);
}

template <DType Q>
void launch_smem(const uint8_t* wp, int64_t wrs, int64_t N, int64_t K, const int8_t* qa, const float* da, int64_t M,
                 const float* bias, void* y, int ydt, cudaStream_t s) {
  if (M <= 8) launch_smem_nt<Q, 1>(wp, wrs, N, K, qa, da, M, bias, y, ydt, s);
  else if (M <= 16) launch_smem_nt<Q, 2>(wp, wrs, N, K, qa, da, M, bias, y, ydt, s);
  else if (M <= 32) launch_smem_nt<Q, 4>(wp, wrs, N, K, qa, da, M, bias, y, ydt, s);
  else if constexpr (Q == DType::q8_0) launch_smem_nt<Q, 8>(wp, wrs, N, K, qa, da, M, bias, y, ydt, s);
  else {  // k-quants with 8 n-tiles spill (255 registers): two launches of 4 (the weights are read twice)
    const int64_t nb = K / QTraits<Q>::n, ys = ydt == 0 ? 4 : 2;
    launch_smem_nt<Q, 4>(wp, wrs, N, K, qa, da, 32, bias, y, ydt, s);
    launch_smem_nt<Q, 4>(wp, wrs, N, K, qa + 32 * K, da + 32 * nb, M - 32, bias, static_cast<char*>(y) + 32 * N * ys, ydt, s);
  }
}

// ---------------------------------------------------------------- int8 GEMV streaming whole 16-byte vectors (q8_0, q4_k, q6_k; M <= 4)
//
// FLAGOS_CUDA_QGEMV=stream (auto at M = 1 for q8_0 / q6_k, see int8_path). A persistent grid (2
// CTAs of 8 warps per SM); warp w owns the balanced run of rows [w N / W, (w + 1) N / W) (W warps)
// and walks their blocks as one flat sequence (the rows are contiguous) in steps of G blocks (q8_0 96, q4_k 24, q6_k 16: 3.2-3.4
// KiB). A step's bytes are read as the aligned 16-byte vectors that cover them (7 per lane,
// ld.global.nc.L1::no_allocate; a vector reaching outside the weight tensor is read as in-range
// 16-bit halves and zeros), one step ahead of the decode, so a warp keeps ~3.3 KiB in flight (53
// KiB per SM). The step is stored to the warp's shared stage and decoded from there with the wide-
// load kernel's block math (vec_block: the same int8 products), U = G / (32 / LPB) blocks per lane
// group; each lane keeps the running sum of the row that continues into the next step and a row
// that ends inside a step is reduced over the warp and stored (f32 sums in a fixed order).
template <DType Q>
struct StreamFmt {
  static constexpr int U = Q == DType::q8_0 ? 3 : (Q == DType::q4_k ? 6 : 4);  // blocks per lane group and step
  static constexpr int G = 32 / VecFmt<Q>::lpb * U;                           // blocks per step
  static constexpr int L = ((G * QTraits<Q>::bytes + 15 + 15) / 16 + 31) / 32;  // 16-byte loads per lane
  static constexpr int stage = L * 32 * 16 + 16;                              // + a word read past the end
};
constexpr int kStWarps = 8;

// 16 bytes at the 16-byte aligned address a, not allocated in L1.
__device__ __forceinline__ uint4 ldg16_stream(uintptr_t a) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(a));
  return v;
}
// The same where the 16 bytes may reach outside [lo, hi) (2-byte aligned bounds): bytes outside read
// as zeros without being touched.
__device__ __forceinline__ uint4 ldg16_clamped(uintptr_t a, uintptr_t lo, uintptr_t hi) {
  uint32_t h[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uintptr_t p = a + 2 * i;
    h[i] = p >= lo && p + 2 <= hi ? *reinterpret_cast<const uint16_t*>(p) : 0u;
  }
  return make_uint4(h[0] | (h[1] << 16), h[2] | (h[3] << 16), h[4] | (h[5] << 16), h[6] | (h[7] << 16));
}

// The register double buffer above (FLAGOS_CUDA_QGEMV=stream). A variant copying the steps with
// cp.async into a 3-stage ring per warp (twice the bytes in flight) measured no faster and was removed.
template <DType Q, int MT>
__global__ void __launch_bounds__(kStWarps * 32, 2) qstream_kernel(const uint8_t* __restrict__ W, int64_t N, int64_t K,
                                                                   const int8_t* __restrict__ qa,
                                                                   const float* __restrict__ da,
                                                                   const int* __restrict__ sa, int64_t M,
                                                                   const float* __restrict__ bias, void* y, int ydt) {
  using F = StreamFmt<Q>;
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes, LPB = VecFmt<Q>::lpb, NG = 32 / LPB, U = F::U, G = F::G;
  constexpr int L = F::L;
  __shared__ __align__(16) uint8_t stage_s[kStWarps][F::stage];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t nw = static_cast<int64_t>(gridDim.x) * kStWarps, w = static_cast<int64_t>(blockIdx.x) * kStWarps + warp;
  const int64_t ra = w * N / nw, rb = (w + 1) * N / nw;
  if (ra >= rb) return;  // the whole warp
  const int64_t nb = K / BN, total = (rb - ra) * nb, row_bytes = nb * BB;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(W), hi = lo + static_cast<uintptr_t>(N * row_bytes);
  const uint8_t* base = W + ra * row_bytes;
  const int g = lane / LPB, p = lane % LPB;
  auto fetch = [&](int64_t t0, uint4 (&v)[L]) {
    const uintptr_t src = reinterpret_cast<uintptr_t>(base + t0 * BB);
    const int64_t nblk = total - t0 < G ? total - t0 : G;
    const int off = static_cast<int>(src & 15);
    const int nch = static_cast<int>((off + nblk * BB + 15) / 16);
    const uintptr_t a0 = src - static_cast<uintptr_t>(off);
    if (a0 >= lo && a0 + 16 * static_cast<uintptr_t>(nch) <= hi) {  // warp-uniform: all but the tensor's ends
#pragma unroll
      for (int i = 0; i < L; ++i)
        if (lane + 32 * i < nch) v[i] = ldg16_stream(a0 + 16 * static_cast<uintptr_t>(lane + 32 * i));
    } else {
#pragma unroll
      for (int i = 0; i < L; ++i)
        if (lane + 32 * i < nch) v[i] = ldg16_clamped(a0 + 16 * static_cast<uintptr_t>(lane + 32 * i), lo, hi);
    }
  };
  float carry[MT];
#pragma unroll
  for (int j = 0; j < MT; ++j) carry[j] = 0.f;
  uint4 ra_[L], rb_[L];
#pragma unroll
  for (int i = 0; i < L; ++i) ra_[i] = rb_[i] = make_uint4(0, 0, 0, 0);
  // decodes the step at t0 from the stage sb (its 16-byte pieces from the aligned-down start); the
  // step starts at block srem of the warp's row srow (no 64-bit divisions per block)
  int64_t srow = 0, srem = 0;
  auto decode = [&](int64_t t0, const uint8_t* sb) {
    const int off = static_cast<int>(reinterpret_cast<uintptr_t>(base + t0 * BB) & 15);
    const int nblk = static_cast<int>(total - t0 < G ? total - t0 : G);
    float part[U][MT];
    int prow[U];  // row of the block relative to srow; -1: none
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int j = 0; j < MT; ++j) part[u][j] = 0.f;
      const int i = u * NG + g;
      prow[u] = -1;
      if (i < nblk) {
        int64_t blk = srem + i;
        int r = 0;
        while (blk >= nb) {
          blk -= nb;
          ++r;
        }
        prow[u] = r;
        const uint8_t* bp = sb + off + i * BB;
        uint4 q4raw[2] = {};
        if constexpr (Q == DType::q4_k) {  // 16-byte aligned blocks (off == 0): header and the lane's 16 level bytes
          q4raw[0] = *reinterpret_cast<const uint4*>(bp);
          q4raw[1] = *reinterpret_cast<const uint4*>(bp + 16 + 16 * p);
        }
        vec_block<Q, MT>(bp, q4raw, p, blk, K, 0, M, qa, da, sa, part[u]);
      }
    }
    // rows 0 .. of the step (warp-uniform): row r has nb - srem + (r - 1) nb blocks up to its end
    int64_t left = nblk;  // blocks of the step not yet assigned to a row
    for (int r = 0; left > 0; ++r) {
      const int64_t rowleft = r == 0 ? nb - srem : nb;  // blocks of row r from the step's start or the row's start
      float v[MT];
#pragma unroll
      for (int j = 0; j < MT; ++j) v[j] = r == 0 ? carry[j] : 0.f;
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (prow[u] == r)
#pragma unroll
          for (int j = 0; j < MT; ++j) v[j] += part[u][j];
      if (rowleft <= left) {  // the row ends in this step
#pragma unroll
        for (int j = 0; j < MT; ++j) {
          float sum = v[j];
#pragma unroll
          for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
          if (lane == 0 && j < M) {
            const int64_t n = ra + srow + r;
            store_out(y, ydt, j * N + n, sum + (bias ? bias[n] : 0.f));
          }
          carry[j] = 0.f;
        }
      } else {
#pragma unroll
        for (int j = 0; j < MT; ++j) carry[j] = v[j];
      }
      left -= rowleft;
    }
    // the next step's start
    srem += nblk;
    while (srem >= nb) {
      srem -= nb;
      ++srow;
    }
  };
  {
    uint8_t* sb = stage_s[warp];
    // one step: the next step's loads into nxt, then the decode of raw (two buffers, swapped by
    // unrolling the loop by 2: no register copy waits on loads in flight)
    auto step = [&](int64_t t0, const uint4 (&raw)[L], uint4 (&nxt)[L]) {
      if (t0 + G < total) fetch(t0 + G, nxt);
      __syncwarp();  // the previous step's reads of the stage are done
#pragma unroll
      for (int i = 0; i < L; ++i) *reinterpret_cast<uint4*>(sb + 16 * (lane + 32 * i)) = raw[i];
      __syncwarp();
      decode(t0, sb);
    };
    fetch(0, ra_);
    for (int64_t t0 = 0; t0 < total; t0 += 2 * G) {
      step(t0, ra_, rb_);
      if (t0 + G < total) step(t0 + G, rb_, ra_);
    }
  }
}

// CTAs for the stream kernel on `device`: 2 per SM (at most one warp per row).
unsigned stream_grid(int64_t N, int device) {
  const int64_t ctas = static_cast<int64_t>(sm_count(device)) * 2, need = (N + kStWarps - 1) / kStWarps;
  return static_cast<unsigned>(need < ctas ? need : ctas);
}

template <DType Q, int MT>
void launch_stream_mt(const uint8_t* wp, int64_t N, int64_t K, const int8_t* qa, const float* da, const int* sa,
                      int64_t M, const float* bias, void* y, int ydt, int device, cudaStream_t s) {
  qstream_kernel<Q, MT><<<stream_grid(N, device), kStWarps * 32, 0, s>>>(wp, N, K, qa, da, sa, M, bias, y, ydt);
}

template <DType Q>
void launch_stream(const uint8_t* wp, int64_t N, int64_t K, const int8_t* qa, const float* da, const int* sa, int64_t M,
                   const float* bias, void* y, int ydt, int device, cudaStream_t s) {
  if (M == 1) launch_stream_mt<Q, 1>(wp, N, K, qa, da, sa, M, bias, y, ydt, device, s);
  else if (M == 2) launch_stream_mt<Q, 2>(wp, N, K, qa, da, sa, M, bias, y, ydt, device, s);
  else launch_stream_mt<Q, 4>(wp, N, K, qa, da, sa, M, bias, y, ydt, device, s);
}

template <DType Q>
constexpr bool has_mma_kernel() {
  return Q == DType::q8_0 || Q == DType::q4_k || Q == DType::q6_k;
}

// DO (decode once, FLAGOS_CUDA_QGEMV=mma2): k-quant A fragments built once per 32-element group and
// used by every n-tile (the mma variant rebuilds them per n-tile); q8_0 is the same in both.
template <DType Q, bool DO>
void launch_mma(const uint8_t* wp, int64_t wrs, int64_t N, int64_t K, const int8_t* qa, const float* da, int64_t M,
                const float* bias, void* y, int ydt, cudaStream_t s) {
  const unsigned grid = static_cast<unsigned>((N + 15) / 16);
#define FLAGOS_QMMA(NT) qmma_kernel<Q, NT, DO><<<grid, kMWarps * 32, 0, s>>>(wp, wrs, N, K, qa, da, M, bias, y, ydt)
  // k-quants with 8 n-tiles need more than 255 registers on sm_80 (spills): two passes of 4
  // there (the second reads the CTA's weight rows again, mostly from L2)
  if (M <= 8) FLAGOS_QMMA(1);
  else if (M <= 16) FLAGOS_QMMA(2);
  else if (M <= 32 || Q != DType::q8_0) FLAGOS_QMMA(4);
  else if constexpr (Q == DType::q8_0) FLAGOS_QMMA(8);
#undef FLAGOS_QMMA
}

// FLAGOS_CUDA_QGEMV = dp4a | vec | stream | mma | mma2 | smem | auto (default) | auto_old:
// the decode kernel for quantized weights. dp4a: the half-warp-per-row kernel (every format); vec:
// the wide-load kernel (q8_0, q4_k, q6_k); stream: the 16-byte vector stream kernel (q8_0, q4_k,
// q6_k, M <= 4, contiguous rows; other shapes take auto_old); mma / mma2 / smem: the tensor-core kernels above
// (q8_0, q4_k, q6_k); formats a variant lacks take dp4a. auto = stream at M = 1 for q8_0 / q6_k
// (measured in int8_path), else auto_old, the measured table (H200, 18944 x 3584): mma for M >= 2 (M = 16: 35-77 us against
// 117-184 on dp4a / vec) and for q4_k at M = 1 (20.1 us; dp4a 27.1); vec for q8_0 (31.4 us, mma
// 36.9) and q6_k (35.8 us, mma 48.4) at M = 1. (A persistent cp.async ring variant, ring / ring2,
// measured 2-3x slower than that table at every shape on 2026-11-30 and was removed.)
enum class QgemvVariant { automatic, automatic_old, dp4a, vec, stream, mma, mma2, smem };
QgemvVariant qgemv_variant() {
  static const QgemvVariant v = [] {
    const char* e = std::getenv("FLAGOS_CUDA_QGEMV");
    const std::string s = e ? e : "";
    if (s == "dp4a" || s == "old") return QgemvVariant::dp4a;
    if (s == "vec") return QgemvVariant::vec;
    if (s == "stream") return QgemvVariant::stream;
    if (s == "mma") return QgemvVariant::mma;
    if (s == "mma2") return QgemvVariant::mma2;
    if (s == "smem") return QgemvVariant::smem;
    if (s == "auto_old") return QgemvVariant::automatic_old;
    if (!s.empty() && s != "auto")
      throw InvalidArgument("FLAGOS_CUDA_QGEMV: unknown variant '" + s +
                            "' (dp4a, vec, stream, mma, mma2, smem, auto_old or auto)");
    return QgemvVariant::automatic;
  }();
  return v;
}

template <DType Q>
void int8_path(const KernelArgs& a, const Tensor& X, int64_t ldx, const Tensor& W, const float* bias, Tensor& Y) {
  const int64_t M = X.size(0), K = X.size(1), N = W.size(0);
  constexpr int BS = QTraits<Q>::n;
  const int device = a.stream.device().index;
  const cudaStream_t s = kernel_stream(a);
  QgemvVariant var = qgemv_variant();
  // workspace: int8 [M, K], f32 scales [M, K / BS], i32 sums [M, K / 16]
  const int64_t qbytes = (M * K + 255) / 256 * 256, dbytes = (M * (K / BS) * 4 + 255) / 256 * 256;
  const int64_t sbytes = (M * (K / 16) * 4 + 255) / 256 * 256;
  Tensor ws = workspace(a, qbytes + dbytes + sbytes);
  int8_t* qa = static_cast<int8_t*>(ws.data());
  float* da = reinterpret_cast<float*>(static_cast<char*>(ws.data()) + qbytes);
  int* sa = reinterpret_cast<int*>(static_cast<char*>(ws.data()) + qbytes + dbytes);
  const int64_t warps = M * (K / BS);
  const unsigned qgrid = blocks_for(warps * 32, 256);
  if (X.dtype() == DType::f32)
    quantize_act_kernel<float, BS><<<qgrid, 256, 0, s>>>(X.data_as<float>(), ldx, M, K, qa, da, sa);
  else if (X.dtype() == DType::f16)
    quantize_act_kernel<__half, BS><<<qgrid, 256, 0, s>>>(X.data_as<__half>(), ldx, M, K, qa, da, sa);
  else
    quantize_act_kernel<__nv_bfloat16, BS><<<qgrid, 256, 0, s>>>(X.data_as<__nv_bfloat16>(), ldx, M, K, qa, da, sa);
  CUDA_CHECK_LAUNCH();
  const auto* wp = static_cast<const uint8_t*>(W.data());
  const int ydt = out_kind(Y.dtype());
  void* yp = Y.data();
  if constexpr (has_vec_kernel<Q>()) {
    // stream: contiguous rows (the steps run across row ends), 2-byte aligned blocks (q4_k: 16)
    const int64_t row_bytes = K / QTraits<Q>::n * QTraits<Q>::bytes;
    const bool ok = (N == 1 || W.stride(0) == row_bytes) &&
                    (Q == DType::q4_k ? aligned16(wp) : reinterpret_cast<uintptr_t>(wp) % 2 == 0);
    // auto at M = 1: stream for q8_0 / q6_k (H200 2026-11-30 02:15, us, 18944 x 3584 / 3584 x 18944, bf16
    // activations: q8_0 29.7 / 33.6 vs 31.1 / 39.0 on the table, q6_k 34.0 / 36.5 vs 35.3 / 44.6; a cp.async
    // ring variant 30.6 / 38.2 and 33.7 / 37.3); q4_k keeps mma (20.3 / 21.0 vs stream 27.1 / 30.3)
    if ((var == QgemvVariant::stream && M <= 4 && ok) ||
        (var == QgemvVariant::automatic && M == 1 && Q != DType::q4_k && ok)) {
      launch_stream<Q>(wp, N, K, qa, da, sa, M, bias, yp, ydt, device, s);
      CUDA_CHECK_LAUNCH();
      return;
    }
  }
  // M > 4 or rows the stream kernels cannot read
  if (var == QgemvVariant::stream) var = QgemvVariant::automatic_old;
  // the measured table (auto_old; auto where stream does not run)
  const bool au = var == QgemvVariant::automatic || var == QgemvVariant::automatic_old;
  if constexpr (has_mma_kernel<Q>()) {
    // auto, measured the same day at 23:45: q6_k at 2 <= M <= 16 on smem (M = 2 / 4 / 16: 37.3 / 39.5 /
    // 66.6 us vs mma 49.5 / 51.6 / 75.8)
    if (var == QgemvVariant::smem || (au && Q == DType::q6_k && M >= 2 && M <= 16)) {
      launch_smem<Q>(wp, W.stride(0), N, K, qa, da, M, bias, yp, ydt, s);
      CUDA_CHECK_LAUNCH();
      return;
    }
    // auto (measured 2026-11-29, H200, 18944 x 3584): mma for M >= 2 (2.2-5x dp4a / vec at M = 16)
    // and for q4_k at M = 1 (20.1 us vs 27.1 dp4a); vec for q8_0 / q6_k at M = 1 (31.4 / 35.8 us vs
    // mma 36.9 / 48.4)
    const bool want = var == QgemvVariant::mma || var == QgemvVariant::mma2 ||
                      (au && (Q == DType::q4_k || M > 1));
    // q4_k reads 8- and 16-byte pieces of its 144-byte blocks; q8_0 / q6_k 2-byte halves
    const bool ok = Q != DType::q4_k || (aligned16(wp) && W.stride(0) % 16 == 0);
    if (want && ok) {
      // auto: q4_k at M >= 2 decodes each block once for all token tiles (mma2: M = 16 29.6 us vs 34.8)
      if (var == QgemvVariant::mma2 || (au && Q == DType::q4_k && M >= 2))
        launch_mma<Q, true>(wp, W.stride(0), N, K, qa, da, M, bias, yp, ydt, s);
      else launch_mma<Q, false>(wp, W.stride(0), N, K, qa, da, M, bias, yp, ydt, s);
      CUDA_CHECK_LAUNCH();
      return;
    }
  }
  // auto: q4_k is slower on the wide-load kernel (28.4 vs 27.1 us at M = 1): dp4a when mma cannot run
  const bool vec_wanted = var == QgemvVariant::vec || (au && Q != DType::q4_k);
  if constexpr (has_vec_kernel<Q>()) {
    if (vec_wanted) {
      // wide-load kernel: q4_k needs 16-byte aligned blocks; q8_0 / q6_k stage contiguous rows
      const int64_t row_bytes = K / QTraits<Q>::n * QTraits<Q>::bytes;
      const bool ok = VecFmt<Q>::staged ? (reinterpret_cast<uintptr_t>(wp) % 2 == 0 && (N == 1 || W.stride(0) == row_bytes))
                                        : (aligned16(wp) && W.stride(0) % 16 == 0);
      if (ok) {
        const int64_t wrs = N == 1 ? row_bytes : W.stride(0);
        if (M == 1) launch_vec<Q, 1, 2>(wp, wrs, N, K, qa, da, sa, M, bias, yp, ydt, s);
        else if (M == 2) launch_vec<Q, 2, 2>(wp, wrs, N, K, qa, da, sa, M, bias, yp, ydt, s);
        else if (M <= 4) launch_vec<Q, 4, 1>(wp, wrs, N, K, qa, da, sa, M, bias, yp, ydt, s);
        else if (M <= 8) launch_vec<Q, 8, 1>(wp, wrs, N, K, qa, da, sa, M, bias, yp, ydt, s);
        else launch_vec<Q, 16, 1>(wp, wrs, N, K, qa, da, sa, M, bias, yp, ydt, s);
        CUDA_CHECK_LAUNCH();
        return;
      }
    }
  }
  const unsigned grid = blocks_for(N * kLanesPerRow, kQThreads);
  if (M == 1) qgemv_kernel<Q, 1><<<grid, kQThreads, 0, s>>>(wp, W.stride(0), N, K, qa, da, sa, M, bias, yp, ydt);
  else if (M == 2) qgemv_kernel<Q, 2><<<grid, kQThreads, 0, s>>>(wp, W.stride(0), N, K, qa, da, sa, M, bias, yp, ydt);
  else if (M <= 4) qgemv_kernel<Q, 4><<<grid, kQThreads, 0, s>>>(wp, W.stride(0), N, K, qa, da, sa, M, bias, yp, ydt);
  else if (M <= 8) qgemv_kernel<Q, 8><<<grid, kQThreads, 0, s>>>(wp, W.stride(0), N, K, qa, da, sa, M, bias, yp, ydt);
  else qgemv_kernel<Q, 16><<<grid, kQThreads, 0, s>>>(wp, W.stride(0), N, K, qa, da, sa, M, bias, yp, ydt);
  CUDA_CHECK_LAUNCH();
  (void)device;
}

// ---------------------------------------------------------------- skinny kernel (16-bit weights)

constexpr int kSkinnyThreads = tuning::kGemvMaxThreads;  // the most a launch uses
constexpr int kRowsPerWarp = 2;  // mixed dtypes and unaligned operands (not tuned)

template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const Pack<T, 8> pk = *reinterpret_cast<const Pack<T, 8>*>(p);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = to_f(pk.v[i]);
  }
}
// 8 16-bit weights through L2 only: the streamed weight must not evict the activations from L1.
template <typename T>
__device__ __forceinline__ void load8_stream(const T* p, float (&v)[8]) {
  const uint4 raw = __ldcg(reinterpret_cast<const uint4*>(p));
  const Pack<T, 8> pk = *reinterpret_cast<const Pack<T, 8>*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_f(pk.v[i]);
}

// Each group of `ksplit` consecutive warps: R weight rows; the group's lanes stride over 8-element
// pieces of K (16-byte weight loads when VEC), warp q of the group taking pieces q*32 + lane,
// step 32 * ksplit; activation rows in passes of MT, accumulated in f32. With ksplit > 1 the
// warps' sums meet in shared memory and the group's first warp adds them in warp order. Untuned
// instantiations (!TUNED: mixed dtypes, unaligned rows) have ksplit fixed at 1.
template <typename XT, typename WT, int MT, int R, bool VEC, bool TUNED>
__global__ void __launch_bounds__(kSkinnyThreads) skinny_kernel(const XT* __restrict__ x, int64_t ldx, int64_t M,
                                                                const WT* __restrict__ w, int64_t ldw, int64_t N,
                                                                int64_t K, const float* __restrict__ bias, XT* y,
                                                                int ksplit_arg) {
  const int ksplit = TUNED ? ksplit_arg : 1;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, kw = warp % ksplit;
  const int64_t groups_per_block = (blockDim.x >> 5) / ksplit;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * groups_per_block + warp / ksplit) * R;
  const int nr = n0 >= N ? 0 : (N - n0 < R ? static_cast<int>(N - n0) : R);
  if (nr == 0 && ksplit == 1) return;  // no block-wide barrier below when ksplit == 1
  const int64_t step = 32 * static_cast<int64_t>(ksplit), first = static_cast<int64_t>(kw) * 32 + lane;
  for (int64_t m0 = 0; m0 < M; m0 += MT) {
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < MT; ++j) acc[r][j] = 0.f;
    if (nr > 0) {
      if constexpr (VEC) {
        const int64_t pieces = K / 8;
#pragma unroll 2
        for (int64_t p = first; p < pieces; p += step) {
          float wv[R][8];
#pragma unroll
          for (int r = 0; r < R; ++r) {
            if (r < nr) load8_stream(w + (n0 + r) * ldw + p * 8, wv[r]);
            else
#pragma unroll
              for (int i = 0; i < 8; ++i) wv[r][i] = 0.f;
          }
#pragma unroll
          for (int j = 0; j < MT; ++j) {
            if (m0 + j < M) {
              float xv[8];
              load8(x + (m0 + j) * ldx + p * 8, xv);
#pragma unroll
              for (int r = 0; r < R; ++r)
#pragma unroll
                for (int i = 0; i < 8; ++i) acc[r][j] = fmaf(wv[r][i], xv[i], acc[r][j]);
            }
          }
        }
      } else {
        for (int64_t k = first; k < K; k += step) {
#pragma unroll
          for (int j = 0; j < MT; ++j) {
            if (m0 + j < M) {
              const float xv = to_f(x[(m0 + j) * ldx + k]);
#pragma unroll
              for (int r = 0; r < R; ++r)
                if (r < nr) acc[r][j] = fmaf(to_f(w[(n0 + r) * ldw + k]), xv, acc[r][j]);
            }
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < MT; ++j) {
        float v = acc[r][j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        acc[r][j] = v;
      }
    if (TUNED && ksplit > 1) {  // block-uniform: every warp of the block reaches both barriers
      __shared__ float red[kSkinnyThreads / 32][R * MT];
      if (lane == 0)
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int j = 0; j < MT; ++j) red[warp][r * MT + j] = acc[r][j];
      __syncthreads();
      if (kw == 0)
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int j = 0; j < MT; ++j) {
            float v = red[warp][r * MT + j];
            for (int q = 1; q < ksplit; ++q) v += red[warp + q][r * MT + j];
            acc[r][j] = v;
          }
      __syncthreads();  // red is reused by the next pass
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < MT; ++j)
        if (lane == 0 && kw == 0 && r < nr && m0 + j < M) {
          const int64_t n = n0 + r;
          y[(m0 + j) * N + n] = from_f<XT>(acc[r][j] + (bias ? bias[n] : 0.f));
        }
  }
}

template <typename XT, typename WT, int R, bool VEC, bool TUNED>
void skinny_launch(cudaStream_t s, const tuning::GemvConfig& c, const XT* x, int64_t ldx, int64_t M, const WT* w,
                   int64_t ldw, int64_t N, int64_t K, const float* bias, XT* y) {
  const int64_t groups_per_block = c.threads / 32 / c.ksplit;
  const unsigned grid = blocks_for((N + R - 1) / R, static_cast<int>(groups_per_block));
  constexpr bool same = std::is_same_v<XT, WT>;  // M <= 8 there
#define FLAGOS_SKINNY(MT) \
  skinny_kernel<XT, WT, MT, R, VEC, TUNED><<<grid, c.threads, 0, s>>>(x, ldx, M, w, ldw, N, K, bias, y, c.ksplit)
  if (M == 1) FLAGOS_SKINNY(1);
  else if (M == 2) FLAGOS_SKINNY(2);
  else if (M <= 4) FLAGOS_SKINNY(4);
  else if (same || M <= 8) FLAGOS_SKINNY(8);
  else if constexpr (!same) FLAGOS_SKINNY(16);
#undef FLAGOS_SKINNY
  CUDA_CHECK_LAUNCH();
}

// Same-dtype 16-bit operands with 16-byte aligned rows take the launch config of the "gemv"
// tuning family (table or heuristic); the other combinations the heuristic's fixed config.
template <typename XT, typename WT, bool VEC>
void skinny_dispatch(const KernelArgs& a, const XT* x, int64_t ldx, int64_t M, const WT* w, int64_t ldw, int64_t N,
                     int64_t K, const float* bias, XT* y) {
  const cudaStream_t s = kernel_stream(a);
  if constexpr (std::is_same_v<XT, WT> && VEC) {
    const tuning::GemvConfig c = tuning::gemv_config(a.stream.device().index, M, N, K);
    if (c.rows == 1) skinny_launch<XT, WT, 1, VEC, true>(s, c, x, ldx, M, w, ldw, N, K, bias, y);
    else if (c.rows == 4) skinny_launch<XT, WT, 4, VEC, true>(s, c, x, ldx, M, w, ldw, N, K, bias, y);
    else skinny_launch<XT, WT, 2, VEC, true>(s, c, x, ldx, M, w, ldw, N, K, bias, y);
  } else {
    skinny_launch<XT, WT, kRowsPerWarp, VEC, false>(s, tuning::gemv_heuristic(), x, ldx, M, w, ldw, N, K, bias, y);
  }
}

// ---------------------------------------------------------------- GEMM path

// y (contiguous [M, N], dtype dt) = x [M, K] (row stride ldx) @ w^T, all of dtype dt; w is
// [N, K] with rows contiguous (row stride ldw) or, when !w_rows, columns contiguous (col stride ldw).
void gemm_xwT(const KernelArgs& a, DType dt, const void* x, int64_t ldx, const void* w, int64_t ldw, bool w_rows,
              void* y, int64_t M, int64_t N, int64_t K) {
  GemmCall g;  // y^T (N x M) = W (N x K) * x^T (K x M)
  g.dt = dt;
  g.ta = w_rows;  // rows-contiguous w is col-major K x N: transposed
  g.tb = false;
  g.m = N, g.n = M, g.k = K;
  g.A = w, g.lda = w_rows ? std::max<int64_t>(ldw, K) : std::max<int64_t>(ldw, N);
  g.B = x, g.ldb = std::max<int64_t>(ldx, K);
  g.C = y, g.ldc = N;
  gemm(a, g);
}

template <DType XD, DType WD>
void linear_launch(const KernelArgs& a) {
  const Tensor& X = *a.in[0];     // [M, K], unit inner stride
  const Tensor& W = *a.in[1];     // [N, K]
  const Tensor& bias = *a.in[2];  // [N] f32 contiguous or undefined
  Tensor& Y = *a.out[0];          // [M, N] contiguous
  const int64_t M = X.size(0), K = X.size(1), N = W.size(0);
  if (M == 0 || N == 0) return;
  const float* bp = bias.defined() ? bias.data_as<float>() : nullptr;
  const int device = a.stream.device().index;
  const cudaStream_t s = kernel_stream(a);
  if (K == 0) {
    bias_rows(Y.data(), XD, M, N, bp, true, device, s);
    return;
  }
  const int64_t ldx = M > 1 ? est(X, 0) : K;
  if constexpr (is_quant_type(WD)) {
    if (M <= kInt8MaxRows) {
      int8_path<WD>(a, X, ldx, W, bp, Y);
      return;
    }
    // many rows: dequantize the weight to x's type (f32 for f32 x) and multiply on the tensor cores
    Tensor wd = Tensor::empty({N, K}, XD, X.device());
    dequantize_rows(WD, W.data(), N, K, W.stride(0), XD, wd.data(), device, s);
    CUDA_CHECK_LAUNCH();
    gemm_xwT(a, XD, X.data(), ldx, wd.data(), K, true, Y.data(), M, N, K);
    if (bp) bias_rows(Y.data(), XD, M, N, bp, false, device, s);
  } else {
    const int64_t wes = static_cast<int64_t>(element_size(WD));
    const bool w_rows = W.stride(1) == wes || K == 1;
    const int64_t ldw = w_rows ? (N > 1 ? est(W, 0) : K) : est(W, 1);
    constexpr bool w16 = WD == DType::f16 || WD == DType::bf16;
    const int64_t skinny_max = XD == WD ? 8 : kInt8MaxRows;  // same 16-bit type: cuBLASLt beyond 8 rows
    if constexpr (w16) {
      if (w_rows && M <= skinny_max) {
        using XT = type_of<XD>;
        using WT = type_of<WD>;
        const bool vec = K % 8 == 0 && aligned16(W.data()) && (ldw * wes) % 16 == 0 && aligned16(X.data()) &&
                         (ldx * static_cast<int64_t>(sizeof(XT))) % 16 == 0;
        if (vec)
          skinny_dispatch<XT, WT, true>(a, X.data_as<XT>(), ldx, M, W.data_as<WT>(), ldw, N, K, bp, Y.data_as<XT>());
        else
          skinny_dispatch<XT, WT, false>(a, X.data_as<XT>(), ldx, M, W.data_as<WT>(), ldw, N, K, bp, Y.data_as<XT>());
        return;
      }
    }
    if constexpr (XD == WD) {
      gemm_xwT(a, XD, X.data(), ldx, W.data(), ldw, w_rows, Y.data(), M, N, K);
    } else {  // mixed dtypes: f32 copies of the non-f32 operands
      Tensor xf, wf, yf;
      const void* xp = X.data();
      const void* wp = W.data();
      int64_t lx = ldx, lw = ldw;
      bool wr = w_rows;
      if (XD != DType::f32) {
        xf = Tensor::empty({M, K}, DType::f32, X.device());
        convert_matrix(X.data(), XD, M, K, ldx, 1, xf.data(), DType::f32, device, s);
        xp = xf.data(), lx = K;
      }
      if (WD != DType::f32) {
        wf = Tensor::empty({N, K}, DType::f32, X.device());
        convert_matrix(W.data(), WD, N, K, w_rows ? ldw : 1, w_rows ? 1 : ldw, wf.data(), DType::f32, device, s);
        wp = wf.data(), lw = K, wr = true;
      }
      void* yp = Y.data();
      if (XD != DType::f32) {
        yf = Tensor::empty({M, N}, DType::f32, X.device());
        yp = yf.data();
      }
      gemm_xwT(a, DType::f32, xp, lx, wp, lw, wr, yp, M, N, K);
      if (XD != DType::f32) convert_matrix(yp, DType::f32, M, N, N, 1, Y.data(), XD, device, s);
    }
    if (bp) bias_rows(Y.data(), XD, M, N, bp, false, device, s);
  }
}

template <DType XD>
void add_x(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_LIN(WD) reg.add("linear", b, KernelKey{XD, WD}, &linear_launch<XD, WD>);
  FLAGOS_LIN(DType::f32) FLAGOS_LIN(DType::f16) FLAGOS_LIN(DType::bf16) FLAGOS_LIN(DType::q8_0)
  FLAGOS_LIN(DType::q4_0) FLAGOS_LIN(DType::q4_1) FLAGOS_LIN(DType::q5_0) FLAGOS_LIN(DType::q5_1)
  FLAGOS_LIN(DType::q4_k) FLAGOS_LIN(DType::q5_k) FLAGOS_LIN(DType::q6_k)
#undef FLAGOS_LIN
}

}  // namespace

void register_linear(KernelRegistry& reg, uint16_t b) {
  add_x<DType::f32>(reg, b);
  add_x<DType::f16>(reg, b);
  add_x<DType::bf16>(reg, b);
}

}  // namespace flagos::cuda::llm
