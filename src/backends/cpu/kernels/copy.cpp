// copy (strided copy + cast between every pair of plain dtypes), fill, arange, linspace, eye.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

// Value conversion with defined behaviour for every input: float -> int saturates, NaN -> 0;
// anything -> bool is (v != 0).
template <typename D, typename S>
inline typename Io<D>::compute convert(typename Io<S>::compute v) {
  using DC = typename Io<D>::compute;
  using SC = typename Io<S>::compute;
  if constexpr (std::is_same_v<DC, SC>) {
    return v;
  } else if constexpr (std::is_floating_point_v<DC>) {
    return static_cast<DC>(v);
  } else if constexpr (std::is_floating_point_v<SC>) {
    if (std::isnan(v)) return DC{0};
    constexpr double lo = static_cast<double>(std::numeric_limits<DC>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<DC>::max());
    const double d = static_cast<double>(v);
    if (d <= lo) return std::numeric_limits<DC>::lowest();
    if (d >= hi) return std::numeric_limits<DC>::max();
    return static_cast<DC>(d);
  } else {
    return static_cast<DC>(v);  // integer -> integer wraps (two's complement), as in C++20 / numpy
  }
}

template <DType DD, DType SD>
void copy_kernel(const KernelArgs& a) {
  using D = typename StorageOf<DD>::type;
  using S = typename StorageOf<SD>::type;
  const Tensor* ts[2] = {a.out[0], a.in[0]};
  for_each_run<2>(ts, kElementwiseGrain, [](char** p, const int64_t* st, int64_t n) {
    char* d = p[0];
    const char* s = p[1];
    if constexpr (DD == SD) {
      if (st[0] == sizeof(D) && st[1] == sizeof(S)) {
        std::memcpy(d, s, static_cast<size_t>(n) * sizeof(D));
        return;
      }
    }
    if constexpr (DD == DType::boolean) {
      for (int64_t i = 0; i < n; ++i) {
        const auto v = Io<S>::load(s + i * st[1]);
        const uint8_t b = v != decltype(v){0} ? 1 : 0;
        std::memcpy(d + i * st[0], &b, 1);
      }
      return;
    }
#if defined(__F16C__)
    if constexpr (DD == DType::f16 && SD == DType::f32) {
      if (st[0] == 2 && st[1] == 4) {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
          const __m256 v = _mm256_loadu_ps(reinterpret_cast<const float*>(s) + i);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d) + i / 8, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
        for (; i < n; ++i) Io<D>::store(d + i * 2, Io<S>::load(s + i * 4));
        return;
      }
    }
    if constexpr (DD == DType::f32 && SD == DType::f16) {
      if (st[0] == 4 && st[1] == 2) {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
          _mm256_storeu_ps(reinterpret_cast<float*>(d) + i,
                           _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s) + i / 8)));
        for (; i < n; ++i) Io<D>::store(d + i * 4, Io<S>::load(s + i * 2));
        return;
      }
    }
#endif
    if constexpr (DD == DType::f32 && SD == DType::bf16) {
      if (st[0] == 4 && st[1] == 2) {  // widening: vectorizes as shifts
        auto* df = reinterpret_cast<uint32_t*>(d);
        const auto* sh = reinterpret_cast<const uint16_t*>(s);
        for (int64_t i = 0; i < n; ++i) df[i] = static_cast<uint32_t>(sh[i]) << 16;
        return;
      }
    }
    if (st[0] == sizeof(D) && st[1] == sizeof(S)) {
      for (int64_t i = 0; i < n; ++i) Io<D>::store(d + i * sizeof(D), convert<D, S>(Io<S>::load(s + i * sizeof(S))));
      return;
    }
    for (int64_t i = 0; i < n; ++i) Io<D>::store(d + i * st[0], convert<D, S>(Io<S>::load(s + i * st[1])));
  });
}

template <DType DD>
void fill_kernel(const KernelArgs& a) {
  using D = typename StorageOf<DD>::type;
  const double v = a.p<ScalarParams>().a;
  alignas(8) unsigned char pat[8];
  if constexpr (DD == DType::boolean) {
    pat[0] = v != 0.0;
  } else {
    Io<D>::store(pat, convert<D, double>(v));
  }
  D val;
  std::memcpy(&val, pat, sizeof(D));
  const Tensor* ts[1] = {a.out[0]};
  for_each_run<1>(ts, kElementwiseGrain, [val](char** p, const int64_t* st, int64_t n) {
    if (st[0] == sizeof(D)) {
      D* d = reinterpret_cast<D*>(p[0]);
      for (int64_t i = 0; i < n; ++i) d[i] = val;
      return;
    }
    for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * st[0], &val, sizeof(D));
  });
}

template <DType DD>
void arange_kernel(const KernelArgs& a) {
  using D = typename StorageOf<DD>::type;
  const auto& p = a.p<ScalarParams>();
  Tensor& o = *a.out[0];
  char* base = static_cast<char*>(o.data());
  const int64_t st = o.stride(0);
  parallel_for(o.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      Io<D>::store(base + i * st, convert<D, double>(p.a + static_cast<double>(i) * p.b));
  });
}

template <DType DD>
void linspace_kernel(const KernelArgs& a) {
  using D = typename StorageOf<DD>::type;
  const auto& p = a.p<ScalarParams>();
  Tensor& o = *a.out[0];
  const int64_t n = o.numel();
  char* base = static_cast<char*>(o.data());
  const int64_t st = o.stride(0);
  const double step = n > 1 ? (p.b - p.a) / static_cast<double>(n - 1) : 0.0;
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      // symmetric from both ends, so the last value is exactly `end`
      const double v = i < n / 2 ? p.a + step * static_cast<double>(i) : p.b - step * static_cast<double>(n - 1 - i);
      Io<D>::store(base + i * st, convert<D, double>(v));
    }
  });
}

template <DType DD>
void eye_kernel(const KernelArgs& a) {
  using D = typename StorageOf<DD>::type;
  Tensor& o = *a.out[0];
  char* base = static_cast<char*>(o.data());
  const int64_t rows = o.size(0), cols = o.size(1), s0 = o.stride(0), s1 = o.stride(1);
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(cols, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        if constexpr (DD == DType::boolean) {
          const uint8_t v = i == j;
          std::memcpy(base + i * s0 + j * s1, &v, 1);
        } else {
          Io<D>::store(base + i * s0 + j * s1, convert<D, double>(i == j ? 1.0 : 0.0));
        }
      }
  });
}

#define FLAGOS_PLAIN_DTYPES(X) \
  X(f32) X(f64) X(f16) X(bf16) X(i8) X(u8) X(i16) X(i32) X(i64) X(boolean)

template <DType DD>
void register_copy_from_all(KernelRegistry& reg, uint16_t id) {
#define FLAGOS_REG_SRC(s) reg.add("copy", id, KernelKey{DD, DType::s}, &copy_kernel<DD, DType::s>);
  FLAGOS_PLAIN_DTYPES(FLAGOS_REG_SRC)
#undef FLAGOS_REG_SRC
}

}  // namespace

void register_copy(KernelRegistry& reg, uint16_t id) {
#define FLAGOS_REG_DST(d)                                                \
  register_copy_from_all<DType::d>(reg, id);                             \
  reg.add("fill", id, KernelKey{DType::d}, &fill_kernel<DType::d>);      \
  reg.add("arange", id, KernelKey{DType::d}, &arange_kernel<DType::d>);  \
  reg.add("linspace", id, KernelKey{DType::d}, &linspace_kernel<DType::d>); \
  reg.add("eye", id, KernelKey{DType::d}, &eye_kernel<DType::d>);
  FLAGOS_PLAIN_DTYPES(FLAGOS_REG_DST)
#undef FLAGOS_REG_DST
}

}  // namespace flagos::cpu::FLAGOS_ISA
