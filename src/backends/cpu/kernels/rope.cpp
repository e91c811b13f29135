// Rotary position embedding over x [..., T, H, D] with positions [..., T] (already expanded by
// the op layer). Per token: the angles pos * inv_freq are formed and reduced mod 2*pi in double
// (so large positions keep f32 accuracy), then cos/sin in f32; every head of the token reuses them.
// NeoX rotates the halves of the rotary part, GPT-J interleaved pairs; features past rotary_dim
// pass through. In place works: each row is read into a local buffer before it is written.
#include <cmath>
#include <numbers>
#include <vector>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

template <typename T, typename P>
void rope_kernel(const KernelArgs& a) {
  const RopeParams& p = a.p<RopeParams>();
  const Tensor& x = *a.in[0];
  const Tensor& pos = *a.in[1];
  Tensor& o = *a.out[0];
  const int nd = x.dim();
  const int64_t H = x.size(nd - 2), D = x.size(nd - 1);
  const int64_t rot = p.rotary_dim, half = rot / 2;
  const bool neox = p.layout == RopeLayout::neox;
  const std::vector<double> inv_freq = ops::rope_inv_freq(p);
  const float mscale = static_cast<float>(ops::rope_mscale(p));
  const int64_t tokens = pos.numel();
  const int64_t xh = x.stride(nd - 2), xd = x.stride(nd - 1), oh = o.stride(nd - 2), od = o.stride(nd - 1);
  const bool same = x.data() == o.data() && xh == oh && xd == od;
  char* const xb = static_cast<char*>(x.data());
  char* const ob = static_cast<char*>(o.data());
  const char* const pb = static_cast<const char*>(pos.data());
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, H * D));
  constexpr double two_pi = 2 * std::numbers::pi;

  parallel_for(tokens, grain, [&](int64_t tb, int64_t te) {
    std::vector<float> cs(static_cast<size_t>(2 * half)), in(static_cast<size_t>(rot)), res(static_cast<size_t>(rot));
    std::vector<double> ang(static_cast<size_t>(half));
    float* const c = cs.data();
    float* const s = cs.data() + half;
    float* const xi = in.data();
    float* const y = res.data();
    for (int64_t t = tb; t < te; ++t) {
      int64_t rem = t, xo = 0, oo = 0, po = 0;
      for (int d = nd - 3; d >= 0; --d) {
        const int64_t i = rem % x.size(d);
        rem /= x.size(d);
        xo += i * x.stride(d);
        oo += i * o.stride(d);
        po += i * pos.stride(d);
      }
      P pv;
      std::memcpy(&pv, pb + po, sizeof(P));
      const double pd = static_cast<double>(pv);
      for (int64_t i = 0; i < half; ++i) {
        const double th = pd * inv_freq[static_cast<size_t>(i)];
        ang[static_cast<size_t>(i)] = th - two_pi * std::nearbyint(th * (1.0 / two_pi));
      }
      for (int64_t i = 0; i < half; ++i) {
        const float af = static_cast<float>(ang[static_cast<size_t>(i)]);
        c[i] = cos_f32(af) * mscale;
        s[i] = sin_f32(af) * mscale;
      }
      for (int64_t h = 0; h < H; ++h) {
        const char* xr = xb + xo + h * xh;
        char* orow = ob + oo + h * oh;
        if constexpr (std::is_same_v<T, float>) {
          if (xd == 4) {
            const float* xf = reinterpret_cast<const float*>(xr);
            for (int64_t i = 0; i < rot; ++i) xi[i] = xf[i];
          } else {
            for (int64_t i = 0; i < rot; ++i) xi[i] = Io<T>::load(xr + i * xd);
          }
        } else if (xd == static_cast<int64_t>(sizeof(T))) {  // vector conversion
          cvt_to_f32(reinterpret_cast<const T*>(xr), xi, rot);
        } else {
          for (int64_t i = 0; i < rot; ++i) xi[i] = Io<T>::load(xr + i * xd);
        }
        if (neox) {
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = xi[i], x2 = xi[i + half];
            y[i] = x1 * c[i] - x2 * s[i];
            y[i + half] = x2 * c[i] + x1 * s[i];
          }
        } else {
          for (int64_t i = 0; i < half; ++i) {
            const float x0 = xi[2 * i], x1 = xi[2 * i + 1];
            y[2 * i] = x0 * c[i] - x1 * s[i];
            y[2 * i + 1] = x1 * c[i] + x0 * s[i];
          }
        }
        if constexpr (std::is_same_v<T, float>) {
          if (od == 4) {
            float* of = reinterpret_cast<float*>(orow);
            for (int64_t i = 0; i < rot; ++i) of[i] = y[i];
          } else {
            for (int64_t i = 0; i < rot; ++i) Io<T>::store(orow + i * od, y[i]);
          }
        } else if (od == static_cast<int64_t>(sizeof(T))) {
          cvt_from_f32(y, reinterpret_cast<T*>(orow), rot);
        } else {
          for (int64_t i = 0; i < rot; ++i) Io<T>::store(orow + i * od, y[i]);
        }
        if (!same) {
          if (xd == static_cast<int64_t>(sizeof(T)) && od == static_cast<int64_t>(sizeof(T)))
            std::memcpy(orow + rot * od, xr + rot * xd, static_cast<size_t>(D - rot) * sizeof(T));
          else
            for (int64_t i = rot; i < D; ++i) std::memcpy(orow + i * od, xr + i * xd, sizeof(T));
        }
      }
    }
  });
}

}  // namespace

void register_rope(KernelRegistry& reg, uint16_t backend_id) {
  reg.add("rope", backend_id, KernelKey{DType::f32, DType::i32}, &rope_kernel<float, int32_t>);
  reg.add("rope", backend_id, KernelKey{DType::f32, DType::i64}, &rope_kernel<float, int64_t>);
  reg.add("rope", backend_id, KernelKey{DType::f16, DType::i32}, &rope_kernel<f16, int32_t>);
  reg.add("rope", backend_id, KernelKey{DType::f16, DType::i64}, &rope_kernel<f16, int64_t>);
  reg.add("rope", backend_id, KernelKey{DType::bf16, DType::i32}, &rope_kernel<bf16, int32_t>);
  reg.add("rope", backend_id, KernelKey{DType::bf16, DType::i64}, &rope_kernel<bf16, int64_t>);
}

}  // namespace flagos::cpu::FLAGOS_ISA
