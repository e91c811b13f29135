// One block-quantized weight row dotted with several int8 activation rows (linear with
// 2..kInt8M activation rows: batched decode, prefill chunks).
//
// RowDot<B>::load decodes a weight row once into L1-resident buffers: one unsigned level byte
// per value (nibbles and high bits merged; q8_0: |w|), the per-block f32 scale and offset/min,
// and for k-quants the sub-block scales as ready int16 vectors. RowDot<B>::dot<R> then runs
// only the integer products for R activation rows at a time (R accumulators, each level vector
// loaded once per R rows). The arithmetic per (weight row, activation row) is the one of
// qdot::vec_dot, in the same order (same lanes, same f32 accumulation per block), so the
// results are bit-identical to vec_dot. The generic ISA keeps the row and calls vec_dot.
//
// Compiled once per ISA (included from kernels/*.cpp): everything is in the ISA namespace.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernels/quant_dot.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace qdot {

// Activation rows processed per weight-level load.
constexpr int kRowBlock = 4;

#if defined(__AVX2__)

template <typename B>
inline constexpr bool is_kquant_v = std::is_same_v<B, BlockQ4K> || std::is_same_v<B, BlockQ5K> ||
                                    std::is_same_v<B, BlockQ6K>;

template <typename B>
class RowDot {
 public:
  using A = typename ActOf<B>::type;
  static constexpr int BN = BlockTraits<B>::n;

  explicit RowDot(int64_t nb)
      : nb_(nb),
        lv_(static_cast<size_t>(nb * BN)),
        d_(static_cast<size_t>(nb)),
        o_(static_cast<size_t>(nb)),
        sc_(is_kquant_v<B> ? static_cast<size_t>(nb * 128) : 0),
        mn_(is_kquant_v<B> ? static_cast<size_t>(nb * 16) : 0) {}

  // Decodes one weight row of nb blocks.
  void load(const char* wrow) {
    w_ = reinterpret_cast<const B*>(wrow);
    for (int64_t b = 0; b < nb_; ++b) decode_block(w_[b], b);
  }

  // y[r] = dot(weight row, a[r]) for r < R.
  template <int R>
  void dot(const A* const* a, float* y) const {
    if constexpr (std::is_same_v<B, BlockQ8_0>) dot_q8_0<R>(a, y);
    else if constexpr (std::is_same_v<B, BlockQ6K>) dot_q6k<R>(a, y);
    else if constexpr (is_kquant_v<B>) dot_k45<R>(a, y);
    else dot_simple<R>(a, y);
  }

 private:
  uint8_t* lv(int64_t b) { return lv_.data() + b * BN; }
  const uint8_t* lv(int64_t b) const { return lv_.data() + b * BN; }
  void st(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

  void decode_block(const B& w, int64_t b) {
    if constexpr (std::is_same_v<B, BlockQ8_0>) {
      const __m256i q = ld(w.qs);
      st(lv(b), _mm256_sign_epi8(q, q));
      d_[static_cast<size_t>(b)] = h2f(w.d);
    } else if constexpr (!is_kquant_v<B>) {
      __m256i u = nibbles32(w.qs);
      if constexpr (std::is_same_v<B, BlockQ5_0> || std::is_same_v<B, BlockQ5_1>)
        u = _mm256_or_si256(u, _mm256_and_si256(bytes_from_bits32(w.qh), _mm256_set1_epi8(0x10)));
      st(lv(b), u);
      const float dw = h2f(w.d);
      d_[static_cast<size_t>(b)] = dw;
      o_[static_cast<size_t>(b)] = simple_offset(&w, dw);
    } else if constexpr (std::is_same_v<B, BlockQ6K>) {
      const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = ld(w.ql + 64 * h), l1 = ld(w.ql + 64 * h + 32), qh = ld(w.qh + 32 * h);
        uint8_t* o = lv(b) + 128 * h;
        st(o, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)));
        st(o + 32, _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)));
        st(o + 64, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)));
        st(o + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)));
      }
      // chunk j of 32 values: scales of its two halves of 16 (int16 lanes 0..7 and 8..15)
      for (int j = 0; j < 8; ++j)
        st(sc_.data() + (b * 8 + j) * 16,
           _mm256_set_m128i(_mm_set1_epi16(w.scales[2 * j + 1]), _mm_set1_epi16(w.scales[2 * j])));
      for (int j = 0; j < 16; ++j) mn_[static_cast<size_t>(b * 16 + j)] = w.scales[j];
      d_[static_cast<size_t>(b)] = h2f(w.d);
    } else {  // q4_k / q5_k
      constexpr bool five = std::is_same_v<B, BlockQ5K>;
      uint8_t sm[16];
      unpack_k4_scales(w.scales, sm);
      const __m256i m4 = _mm256_set1_epi8(0xF), b4 = _mm256_set1_epi8(0x10);
      [[maybe_unused]] __m256i qh;
      if constexpr (five) qh = ld(w.qh);
      for (int c = 0; c < 4; ++c) {
        const __m256i q = ld(w.qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (five) {
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * c), 4), b4));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * c + 1), 4), b4));
        }
        st(lv(b) + 64 * c, lo);
        st(lv(b) + 64 * c + 32, hi);
      }
      for (int j = 0; j < 8; ++j) {
        st(sc_.data() + (b * 8 + j) * 16, _mm256_set1_epi16(sm[j]));
        mn_[static_cast<size_t>(b * 16 + j)] = sm[8 + j];
      }
      d_[static_cast<size_t>(b)] = h2f(w.d);
      o_[static_cast<size_t>(b)] = h2f(w.dmin);
    }
  }

  template <int R>
  void dot_q8_0(const A* const* a, float* y) const {
    __m256 acc0[R], acc1[R];  // even / odd blocks, as in vec_dot
    for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    auto block = [&](int64_t b, __m256* acc) {
      const __m256i w0 = ld(w_[b].qs), u = ld(lv(b));
      const float dw = d_[static_cast<size_t>(b)];
      for (int r = 0; r < R; ++r) {
        const A& ab = a[r][b];
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(ld(ab.qs), w0)), ones);
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ab.d), _mm256_cvtepi32_ps(p), acc[r]);
      }
    };
    int64_t b = 0;
    for (; b + 2 <= nb_; b += 2) {
      block(b, acc0);
      block(b + 1, acc1);
    }
    if (b < nb_) block(b, acc0);
    for (int r = 0; r < R; ++r) y[r] = hsum_ps(_mm256_add_ps(acc0[r], acc1[r]));
  }

  template <int R>
  void dot_simple(const A* const* a, float* y) const {
    __m256 acc[R];
    float off[R];
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_setzero_ps();
      off[r] = 0.f;
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb_; ++b) {
      const __m256i u = ld(lv(b));
      const float dw = d_[static_cast<size_t>(b)], ow = o_[static_cast<size_t>(b)];
      for (int r = 0; r < R; ++r) {
        const A& ab = a[r][b];
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, ld(ab.qs)), ones);
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ab.d), _mm256_cvtepi32_ps(p), acc[r]);
        off[r] += ow * ab.ds;
      }
    }
    for (int r = 0; r < R; ++r) y[r] = hsum_ps(acc[r]) + off[r];
  }

  template <int R>
  void dot_k45(const A* const* a, float* y) const {
    __m256 acc[R];
    __m128 macc[R];
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_setzero_ps();
      macc[r] = _mm_setzero_ps();
    }
    for (int64_t b = 0; b < nb_; ++b) {
      const __m128i mn = _mm_loadu_si128(reinterpret_cast<const __m128i*>(mn_.data() + b * 16));
      const float dmin = o_[static_cast<size_t>(b)], dw = d_[static_cast<size_t>(b)];
      __m256i isum[R];
      for (int r = 0; r < R; ++r) {
        const A& ab = a[r][b];
        const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums + 8)));
        macc[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * ab.d), _mm_cvtepi32_ps(_mm_madd_epi16(mn, bs)), macc[r]);
        isum[r] = _mm256_setzero_si256();
      }
      const uint8_t* l = lv(b);
      const int16_t* sc = sc_.data() + b * 128;
      for (int j = 0; j < 8; ++j) {
        const __m256i u = ld(l + 32 * j), s = ld(sc + 16 * j);
        for (int r = 0; r < R; ++r)
          isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(_mm256_maddubs_epi16(u, ld(a[r][b].qs + 32 * j)), s));
      }
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[r][b].d), _mm256_cvtepi32_ps(isum[r]), acc[r]);
    }
    for (int r = 0; r < R; ++r) y[r] = hsum_ps(_mm256_sub_ps(acc[r], _mm256_insertf128_ps(_mm256_setzero_ps(), macc[r], 0)));
  }

  template <int R>
  void dot_q6k(const A* const* a, float* y) const {
    __m256 acc[R];
    float s[R];
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_setzero_ps();
      s[r] = 0.f;
    }
    for (int64_t b = 0; b < nb_; ++b) {
      const __m256i sc16 = ld(mn_.data() + b * 16);
      const float dw = d_[static_cast<size_t>(b)];
      __m256i isum[R];
      float d[R];
      for (int r = 0; r < R; ++r) {
        const A& ab = a[r][b];
        d[r] = dw * ab.d;
        const __m256i o8 = _mm256_madd_epi16(sc16, ld(ab.bsums));  // sum_j scale_j * bsum_j (exact)
        __m128i o4 = _mm_add_epi32(_mm256_castsi256_si128(o8), _mm256_extracti128_si256(o8, 1));
        o4 = _mm_add_epi32(o4, _mm_shuffle_epi32(o4, 0x4e));
        o4 = _mm_add_epi32(o4, _mm_shuffle_epi32(o4, 0xb1));
        s[r] -= 32.f * d[r] * static_cast<float>(_mm_cvtsi128_si32(o4));
        isum[r] = _mm256_setzero_si256();
      }
      const uint8_t* l = lv(b);
      const int16_t* sc = sc_.data() + b * 128;
      for (int j = 0; j < 8; ++j) {
        const __m256i u = ld(l + 32 * j), sv = ld(sc + 16 * j);
        for (int r = 0; r < R; ++r)
          isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(_mm256_maddubs_epi16(u, ld(a[r][b].qs + 32 * j)), sv));
      }
      for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d[r]), _mm256_cvtepi32_ps(isum[r]), acc[r]);
    }
    for (int r = 0; r < R; ++r) y[r] = hsum_ps(acc[r]) + s[r];
  }

  int64_t nb_;
  const B* w_ = nullptr;
  std::vector<uint8_t> lv_;   // levels, one byte per value in value order
  std::vector<float> d_, o_;  // per block: scale; offset (simple types) or dmin (q4_k/q5_k)
  std::vector<int16_t> sc_;   // k-quants: per 32-value chunk, its scale(s) as 16 int16 lanes
  std::vector<int16_t> mn_;   // q4_k/q5_k: 8 mins (+8 unused) per block; q6_k: 16 scales
};

#else  // generic: the row stays as stored, each activation row goes through vec_dot

template <typename B>
class RowDot {
 public:
  using A = typename ActOf<B>::type;
  explicit RowDot(int64_t nb) : nb_(nb) {}
  void load(const char* wrow) { w_ = wrow; }
  template <int R>
  void dot(const A* const* a, float* y) const {
    for (int r = 0; r < R; ++r) y[r] = vec_dot<B>(w_, a[r], nb_);
  }

 private:
  int64_t nb_;
  const char* w_ = nullptr;
};

#endif

}  // namespace qdot
}  // namespace flagos::cpu::FLAGOS_ISA
