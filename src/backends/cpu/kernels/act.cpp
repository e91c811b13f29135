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

// o[i] = act(g[i]) * u[i] over f32 arrays (o may be g or u: each element is read before written).
template <Act A>
inline void act_mul(const float* g, const float* up, float* o, int64_t m) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (A == Act::silu) {
    // silu without divisions: exp on a clamped argument (no range selects), 1/(1+e) by rcp + one
    // Newton step (~1e-7 relative). e overflows past rcp's range for g < -87, giving g * 0 (and
    // NaN for g = -inf, as g / (1 + exp(-g)) does).
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f), one = _mm256_set1_ps(1.0f),
                 two = _mm256_set1_ps(2.0f);
    for (; i + 8 <= m; i += 8) {
      const __m256 gv = _mm256_loadu_ps(g + i);
      __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), gv), lo), hi);
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
      _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(gv, rc), _mm256_loadu_ps(up + i)));
    }
  }
#endif
  for (; i < m; ++i) o[i] = act<A>(g[i]) * up[i];
}

// One contiguous stretch of m outputs: f32 in place, 16-bit types through f32 chunks (vector
// conversions, rounded once at the store).
template <typename T, Act A>
inline void act_mul_contig(const T* g, const T* up, T* o, int64_t m) {
  if constexpr (std::is_same_v<T, float>) {
    act_mul<A>(g, up, o, m);
  } else {
    constexpr int64_t B = 512;
    float gb[B], ub[B];
    for (int64_t i = 0; i < m; i += B) {
      const int64_t c = std::min(B, m - i);
      cvt_to_f32(g + i, gb, c);
      cvt_to_f32(up + i, ub, c);
      act_mul<A>(gb, ub, gb, c);
      cvt_from_f32(gb, o + i, c);
    }
  }
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
      if (contig) {
        const T* g = reinterpret_cast<const T*>(xb);
        act_mul_contig<T, A>(g + b, g + n + b, reinterpret_cast<T*>(ob) + b, e - b);
        return;
      }
      for (int64_t i = b; i < e; ++i) {
        const float g = Io<T>::load(xb + i * xs), u = Io<T>::load(xb + half_off + i * xs);
        Io<T>::store(ob + i * os, act<A>(g) * u);
      }
    });
    return;
  }
  parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
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
      if (contig) {
        act_mul_contig<T, A>(reinterpret_cast<const T*>(gp), reinterpret_cast<const T*>(up), reinterpret_cast<T*>(op), n);
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
