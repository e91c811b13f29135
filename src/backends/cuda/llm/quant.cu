// quantize (f32 -> GGUF block types) and dequantize (block types -> f32/f16/bf16) on CUDA.
// Quantization runs one thread per block with the same algorithms and operation order as the
// CPU reference (src/backends/cpu/kernels/quant_blocks.h): this file is compiled with
// --fmad=false (src/backends/cuda/CMakeLists.txt), so no multiply-add is fused and the bytes
// are identical to the CPU's (byte-identical to gguf for the simple types). Dequantization:
// one thread per 8 output elements through deq8 (quant_blocks.cuh), bit-identical to the CPU.
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/quant_blocks.cuh"

namespace flagos::cuda::llm {
namespace {

// ---------------------------------------------------------------- scalar helpers (as the CPU)

// The f16 bits of f as an opaque integer: without the barrier ptxas (CUDA 13.0) turned a byte store
// of the bits into a float-to-u8 conversion of the half value (F2I.U8.F16), corrupting the scales.
__device__ __forceinline__ uint16_t f2h_bits(float f) {
  uint32_t b = __half_as_ushort(__float2half_rn(f));
  asm volatile("" : "+r"(b));
  return static_cast<uint16_t>(b);
}
__device__ __forceinline__ float h2f_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Round to nearest, ties to even (ggml's nearest_int), saturated to +-2^22.
__device__ __forceinline__ int nearest_int(float f) {
  if (!(f < 4194303.f)) f = f != f ? 0.f : 4194303.f;
  if (f < -4194303.f) f = -4194303.f;
  const float v = f + 12582912.f;
  return (__float_as_int(v) & 0x007fffff) - 0x00400000;
}
__device__ __forceinline__ int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
__device__ __forceinline__ int trunc_clip(float v, int hi) {
  const float t = truncf(v);
  if (!(t > 0.f)) return 0;
  return t >= static_cast<float>(hi) ? hi : static_cast<int>(t);
}
__device__ __forceinline__ void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
__device__ __forceinline__ float signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int i = 0; i < n; ++i)
    if (amax < fabsf(x[i])) {
      amax = fabsf(x[i]);
      max = x[i];
    }
  return max;
}
__device__ __forceinline__ void min_max(const float* x, int n, float& mn, float& mx) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  mn = lo;
  mx = hi;
}

// ---------------------------------------------------------------- simple types

__device__ void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.f;
  for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float d = amax / 127.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  put16(b, f2h_bits(d));
  for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(roundf(x[i] * id)));
}

// q4_0 / q5_0: symmetric around the signed absolute maximum.
template <int kBits>
__device__ void quant_sym(const float* x, uint8_t* b) {
  constexpr float half = kBits == 4 ? 8.5f : 16.5f;
  constexpr int hi = (1 << kBits) - 1;
  const float max = signed_absmax(x, 32);
  const float d = max / (kBits == 4 ? -8.f : -16.f);
  const float id = d != 0.f ? 1.f / d : 0.f;
  put16(b, f2h_bits(d));
  uint32_t qh = 0;
  uint8_t* qs = b + (kBits == 4 ? 2 : 6);
  for (int i = 0; i < 16; ++i) {
    const int q0 = trunc_clip(x[i] * id + half, hi);
    const int q1 = trunc_clip(x[i + 16] * id + half, hi);
    qs[i] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << i;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (i + 16);
  }
  if (kBits == 5)
    for (int k = 0; k < 4; ++k) b[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
}

// q4_1 / q5_1: asymmetric over [min, max].
template <int kBits>
__device__ void quant_asym(const float* x, uint8_t* b) {
  constexpr int hi = (1 << kBits) - 1;
  float mn, mx;
  min_max(x, 32, mn, mx);
  const float d = (mx - mn) / static_cast<float>(hi);
  const float id = d != 0.f ? 1.f / d : 0.f;
  put16(b, f2h_bits(d));
  put16(b + 2, f2h_bits(mn));
  uint32_t qh = 0;
  uint8_t* qs = b + (kBits == 4 ? 4 : 8);
  for (int i = 0; i < 16; ++i) {
    const int q0 = trunc_clip((x[i] - mn) * id + 0.5f, hi);
    const int q1 = trunc_clip((x[i + 16] - mn) * id + 0.5f, hi);
    qs[i] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << i;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (i + 16);
  }
  if (kBits == 5)
    for (int k = 0; k < 4; ++k) b[4 + k] = static_cast<uint8_t>(qh >> (8 * k));
}

// ---------------------------------------------------------------- k-quants (ggml reference algorithms)

__device__ float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                                  uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float mn = x[0], mx = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    mn = x[i] < mn ? x[i] : mn;
    mx = x[i] > mx ? x[i] : mx;
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -mn;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (mx - mn);
  float scale = 1.f / iscale;
  float best = 0.f;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax));
    const float diff = scale * L[i] + mn - x[i];
    best += w[i] * diff * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        err += w[i] * diff * diff;
      }
      if (err < best) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best = err;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *the_min = -mn;
  return scale;
}

__device__ float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

__device__ void scale_min_k4(int j, const uint8_t* s, int& sc, int& m) { q_scale_min_k4(j, s, sc, m); }

// q4_k / q5_k: 8 sub-block (scale, min) fits, 6-bit codes in scales12, final levels L.
__device__ void quant_k_scales(const float* x, int nmax, float rmin, int nstep, uint8_t* b, uint8_t* L) {
  float w[32], mins[8], sc[8];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;
  uint8_t* scales12 = b + 4;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + fabsf(xs[l]);
    sc[j] = make_qkx2_quants(32, nmax, xs, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
    if (sc[j] > max_scale) max_scale = sc[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int k = 0; k < 12; ++k) scales12[k] = 0;
  for (int j = 0; j < 8; ++j) {
    const int ls = clampi(nearest_int(inv_scale * sc[j]), 0, 63);
    const int lm = clampi(nearest_int(inv_min * mins[j]), 0, 63);
    if (j < 4) {
      scales12[j] = static_cast<uint8_t>(ls);
      scales12[j + 4] = static_cast<uint8_t>(lm);
    } else {
      scales12[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales12[j - 4] = static_cast<uint8_t>(scales12[j - 4] | ((ls >> 4) << 6));
      scales12[j] = static_cast<uint8_t>(scales12[j] | ((lm >> 4) << 6));
    }
  }
  const uint16_t dh = f2h_bits(max_scale / 63.f), dminh = f2h_bits(max_min / 63.f);
  put16(b, dh);
  put16(b + 2, dminh);
  const float d = h2f_bits(dh), dmin = h2f_bits(dminh);
  for (int j = 0; j < 8; ++j) {
    int s, m;
    scale_min_k4(j, scales12, s, m);
    const float dd = d * static_cast<float>(s);
    if (dd == 0.f) continue;
    const float dm = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(clampi(nearest_int((x[32 * j + l] + dm) / dd), 0, nmax));
  }
}

__device__ void quant_q4_k(const float* x, uint8_t* b) {
  uint8_t L[256];
  quant_k_scales(x, 15, -1.f, 20, b, L);
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

__device__ void quant_q5_k(const float* x, uint8_t* b) {
  uint8_t L[256];
  quant_k_scales(x, 31, -0.5f, 15, b, L);
  uint8_t* qh = b + 16;
  uint8_t* qs = b + 48;
  for (int l = 0; l < 32; ++l) qh[l] = 0;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      qh[l] = static_cast<uint8_t>(qh[l] | ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
      qs[32 * c + l] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
    }
}

__device__ void quant_q6_k(const float* x, uint8_t* b) {
  int8_t L[256];
  float sc[16];
  float max_scale = 0, max_abs = 0;
  for (int ib = 0; ib < 16; ++ib) {
    sc[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    if (fabsf(sc[ib]) > max_abs) {
      max_abs = fabsf(sc[ib]);
      max_scale = sc[ib];
    }
  }
  if (max_abs < 1e-15f) {
    for (int i = 0; i < 210; ++i) b[i] = 0;
    return;
  }
  const float iscale = -128.f / max_scale;
  const uint16_t dh = f2h_bits(1.f / iscale);
  put16(b + 208, dh);
  int8_t* scales = reinterpret_cast<int8_t*>(b + 192);
  for (int ib = 0; ib < 16; ++ib) scales[ib] = static_cast<int8_t>(clampi(nearest_int(iscale * sc[ib]), -128, 127));
  const float dhf = h2f_bits(dh);
  for (int j = 0; j < 16; ++j) {
    const float d = dhf * static_cast<float>(scales[j]);
    if (d == 0.f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(clampi(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
  }
  for (int h = 0; h < 2; ++h) {
    const int8_t* LL = L + 128 * h;
    uint8_t* ql = b + 64 * h;
    uint8_t* qh = b + 128 + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = LL[l], q2 = LL[l + 32], q3 = LL[l + 64], q4 = LL[l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

template <DType Q>
__device__ void quant_block(const float* x, uint8_t* b) {
  if constexpr (Q == DType::q8_0) quant_q8_0(x, b);
  else if constexpr (Q == DType::q4_0) quant_sym<4>(x, b);
  else if constexpr (Q == DType::q5_0) quant_sym<5>(x, b);
  else if constexpr (Q == DType::q4_1) quant_asym<4>(x, b);
  else if constexpr (Q == DType::q5_1) quant_asym<5>(x, b);
  else if constexpr (Q == DType::q4_k) quant_q4_k(x, b);
  else if constexpr (Q == DType::q5_k) quant_q5_k(x, b);
  else quant_q6_k(x, b);
}

// One thread per block: the block is built in registers/local memory and written out.
template <DType Q>
__global__ void quantize_kernel(const float* __restrict__ x, uint8_t* __restrict__ q, int64_t nblocks) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes;
  for (int64_t i = global_thread(); i < nblocks; i += grid_threads()) {
    uint8_t blk[BB];
    quant_block<Q>(x + i * BN, blk);
    uint8_t* dst = q + i * BB;
    for (int k = 0; k < BB; ++k) dst[k] = blk[k];
  }
}

template <DType Q>
void quantize_launch(const KernelArgs& a) {
  const Tensor& x = *a.in[0];  // contiguous f32 (the op layer makes it so)
  Tensor& q = *a.out[0];       // new contiguous block tensor
  const int64_t nblocks = x.numel() / QTraits<Q>::n;
  if (nblocks == 0) return;
  const cudaStream_t s = kernel_stream(a);
  const int threads = 128;
  quantize_kernel<Q><<<blocks_for(nblocks, threads), threads, 0, s>>>(x.data_as<float>(),
                                                                      static_cast<uint8_t*>(q.data()), nblocks);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- dequantize

// Output is contiguous [rows, K]; the input's rows may have any stride (outer dims viewed).
struct RowMap {
  int nd = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};  // bytes
  __device__ __forceinline__ int64_t offset(int64_t r) const {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t q = r / size[d];
      off += (r - q * size[d]) * stride[d];
      r = q;
    }
    return off;
  }
};

inline RowMap row_map(const Tensor& t) {
  RowMap m;
  for (int i = 0; i + 1 < t.dim(); ++i) {
    m.size[m.nd] = t.size(i);
    m.stride[m.nd] = t.stride(i);
    ++m.nd;
  }
  return m;
}

template <DType Q, typename OT>
__global__ void dequantize_kernel(const uint8_t* __restrict__ q, RowMap rows, int64_t K, int64_t n8, OT* __restrict__ out) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes;
  const int64_t per_row = K / 8;
  for (int64_t i = global_thread(); i < n8; i += grid_threads()) {
    const int64_t r = i / per_row, e = (i - r * per_row) * 8;
    const uint8_t* blk = q + rows.offset(r) + (e / BN) * BB;
    float y[8];
    deq8<Q>(blk, static_cast<int>(e % BN), y);
    OT* o = out + r * K + e;
    if constexpr (std::is_same_v<OT, float>) {
      reinterpret_cast<float4*>(o)[0] = make_float4(y[0], y[1], y[2], y[3]);
      reinterpret_cast<float4*>(o)[1] = make_float4(y[4], y[5], y[6], y[7]);
    } else {
      Pack<OT, 8> p;
#pragma unroll
      for (int k = 0; k < 8; ++k) p.v[k] = from_f<OT>(y[k]);
      *reinterpret_cast<Pack<OT, 8>*>(o) = p;
    }
  }
}

template <DType Q, typename OT>
void dequantize_launch(const KernelArgs& a) {
  const Tensor& q = *a.in[0];
  Tensor& out = *a.out[0];  // new contiguous tensor, same shape
  const int64_t n8 = out.numel() / 8;
  if (n8 == 0) return;
  const cudaStream_t s = kernel_stream(a);
  dequantize_kernel<Q, OT><<<grid_for(n8, a.stream.device().index), kThreads, 0, s>>>(
      static_cast<const uint8_t*>(q.data()), row_map(q), q.shape().back(), n8, out.data_as<OT>());
  CUDA_CHECK_LAUNCH();
}

}  // namespace

// Dequantizes a [rows, K] block matrix (row stride in bytes) into a contiguous f32/f16/bf16
// buffer on stream s; used by linear's many-row path.
void dequantize_rows(DType qt, const void* q, int64_t rows, int64_t K, int64_t row_stride, DType out_dtype,
                     void* out, int device, cudaStream_t s) {
  RowMap m;
  m.nd = 1;
  m.size[0] = rows;
  m.stride[0] = row_stride;
  const int64_t n8 = rows * K / 8;
  if (n8 == 0) return;
  visit_quant(qt, [&]<DType Q>() {
    const auto* qp = static_cast<const uint8_t*>(q);
    const unsigned g = grid_for(n8, device);
    if (out_dtype == DType::f32)
      dequantize_kernel<Q, float><<<g, kThreads, 0, s>>>(qp, m, K, n8, static_cast<float*>(out));
    else if (out_dtype == DType::f16)
      dequantize_kernel<Q, __half><<<g, kThreads, 0, s>>>(qp, m, K, n8, static_cast<__half*>(out));
    else
      dequantize_kernel<Q, __nv_bfloat16><<<g, kThreads, 0, s>>>(qp, m, K, n8, static_cast<__nv_bfloat16*>(out));
    CUDA_CHECK_LAUNCH();
  });
}

void register_quant(KernelRegistry& reg, uint16_t b) {
  for (DType qt : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q4_k, DType::q5_k,
                   DType::q6_k}) {
    visit_quant(qt, [&]<DType Q>() {
      reg.add("quantize", b, KernelKey{Q, DType::f32}, &quantize_launch<Q>);
      reg.add("dequantize", b, KernelKey{DType::f32, Q}, &dequantize_launch<Q, float>);
      reg.add("dequantize", b, KernelKey{DType::f16, Q}, &dequantize_launch<Q, __half>);
      reg.add("dequantize", b, KernelKey{DType::bf16, Q}, &dequantize_launch<Q, __nv_bfloat16>);
    });
  }
}

}  // namespace flagos::cuda::llm
