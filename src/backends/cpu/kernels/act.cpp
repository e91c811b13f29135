#pragma GCC optimize("no-trapping-math")  // lets vec_math selects vectorize: see vec_math.h
// Gated activations over [..., 2n] = [gate | up] -> act(gate) * up: silu_and_mul, gelu_and_mul
// (erf or tanh form). Rows are walked with any strides; contiguous rows run a vectorized loop.
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

enum class Act { silu, gelu_erf, gelu_tanh };

template <Act A>
inline float act(float g) {
  if constexpr (A == Act::silu) {
    return g / (1.0f + exp_f32(-g));
  } else if constexpr (A == Act::gelu_erf) {
    return gelu_erf_f32(g);  // erfc in the negative tail: no cancellation
  } else {
    // 0.5 g (1 + tanh(y)) == g * sigmoid(2y): no cancellation for large negative y.
    const float y = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return g / (1.0f + exp_f32(-2.0f * y));
  }
}

// buf[i] = act(buf[i]) * up[i] over a chunk held in f32.
template <Act A>
inline void act_mul_chunk(float* buf, const float* up, int64_t m) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (A == Act::silu) {
    // silu without divisions: exp on a clamped argument (no range selects), 1/(1+e) by rcp + one
    // Newton step (~1e-7 relative). e overflows past rcp's range for g < -87, giving g * 0 (and
    // NaN for g = -inf, as g / (1 + exp(-g)) does).
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f), one = _mm256_set1_ps(1.0f),
                 two = _mm256_set1_ps(2.0f);
    for (; i + 8 <= m; i += 8) {
      const __m256 g = _mm256_loadu_ps(buf + i);
      __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), g), lo), hi);
      const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
      r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
      __m256 p = _mm256_set1_ps(1.9875691500e-4f);
      p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
      p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
      p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
      p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
      p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
      p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), one);
      const __m256i e2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
      const __m256 d = _mm256_fmadd_ps(p, _mm256_castsi256_ps(e2), one);  // 1 + exp(-g)
      __m256 rc = _mm256_rcp_ps(d);
      rc = _mm256_mul_ps(rc, _mm256_fnmadd_ps(d, rc, two));
      // g = NaN: the clamp dropped it; g * rc keeps it NaN.
      _mm256_storeu_ps(buf + i, _mm256_mul_ps(_mm256_mul_ps(g, rc), _mm256_loadu_ps(up + i)));
    }
  }
#endif
  for (; i < m; ++i) buf[i] = act<A>(buf[i]) * up[i];
}

template <typename T, Act A>
void run_rows(const KernelArgs& a) {
  const Tensor& x = *a.in[0];
  Tensor& o = *a.out[0];
  const int nd = o.dim();
  const int64_t n = o.size(nd - 1);
  const int64_t rows = o.numel() / n;
  const int64_t xs = x.stride(nd - 1), os = o.stride(nd - 1);
  const int64_t half_off = n * xs;  // byte offset of `up` from `gate`
  char* const xb = static_cast<char*>(x.data());
  char* const ob = static_cast<char*>(o.data());
  const bool contig = xs == static_cast<int64_t>(sizeof(T)) && os == static_cast<int64_t>(sizeof(T));
  // Grain in rows so one task covers ~kElementwiseGrain outputs.
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1));
  if (rows == 1 && n >= 2 * kElementwiseGrain) {
    // One long row (e.g. [2n] or [1, 2n] with huge n): split the row itself.
    parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float g = Io<T>::load(xb + i * xs), u = Io<T>::load(xb + half_off + i * xs);
        Io<T>::store(ob + i * os, act<A>(g) * u);
      }
    });
    return;
  }
  parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
    float buf[256], ubuf[256];
    for (int64_t r = rb; r < re; ++r) {
      // Row base pointers from the row's multi-index over the leading dims.
      int64_t rem = r, xo = 0, oo = 0;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % o.size(d);
        rem /= o.size(d);
        xo += i * x.stride(d);
        oo += i * o.stride(d);
      }
      const char* gp = xb + xo;
      const char* up = gp + half_off;
      char* op = ob + oo;
      if (contig) {  // chunks through a local f32 buffer: vectorizes for every T; 16-bit rounds once at the store
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
          const int64_t m = std::min<int64_t>(256, n - i0);
          for (int64_t i = 0; i < m; ++i) buf[i] = Io<T>::load(gp + (i0 + i) * sizeof(T));
          for (int64_t i = 0; i < m; ++i) ubuf[i] = Io<T>::load(up + (i0 + i) * sizeof(T));
          act_mul_chunk<A>(buf, ubuf, m);
          for (int64_t i = 0; i < m; ++i) Io<T>::store(op + (i0 + i) * sizeof(T), buf[i]);
        }
        continue;
      }
      for (int64_t i = 0; i < n; ++i)
        Io<T>::store(op + i * os, act<A>(Io<T>::load(gp + i * xs)) * Io<T>::load(up + i * xs));
    }
  });
}

template <typename T>
void silu_and_mul_kernel(const KernelArgs& a) {
  run_rows<T, Act::silu>(a);
}

template <typename T>
void gelu_and_mul_kernel(const KernelArgs& a) {
  if (a.p<ScalarParams>().a != 0)
    run_rows<T, Act::gelu_tanh>(a);
  else
    run_rows<T, Act::gelu_erf>(a);
}

}  // namespace

void register_act(KernelRegistry& reg, uint16_t backend_id) {
  reg.add("silu_and_mul", backend_id, KernelKey{DType::f32}, &silu_and_mul_kernel<float>);
  reg.add("silu_and_mul", backend_id, KernelKey{DType::f16}, &silu_and_mul_kernel<f16>);
  reg.add("silu_and_mul", backend_id, KernelKey{DType::bf16}, &silu_and_mul_kernel<bf16>);
  reg.add("gelu_and_mul", backend_id, KernelKey{DType::f32}, &gelu_and_mul_kernel<float>);
  reg.add("gelu_and_mul", backend_id, KernelKey{DType::f16}, &gelu_and_mul_kernel<f16>);
  reg.add("gelu_and_mul", backend_id, KernelKey{DType::bf16}, &gelu_and_mul_kernel<bf16>);
}

}  // namespace flagos::cpu::FLAGOS_ISA
