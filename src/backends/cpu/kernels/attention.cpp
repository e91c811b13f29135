// Scaled dot-product attention, flash style: for a block of query rows, walk key blocks with
// an online softmax (running max / sum, f32 accumulation), so memory stays O(block) for any Tk.
// GQA: the Hq/Hkv query heads sharing a kv head are processed together (rows ordered
// query-position major, head minor), so each K/V block is loaded once for all of them and a
// causal block still covers a narrow range of positions. Tasks = (batch, kv head, row block),
// ordered zig-zag so the static split of the thread pool balances causal work. When there are
// too few tasks for the threads (decode), the key range is also split (split-KV) and the partial
// (max, sum, acc) of each split are merged with a log-sum-exp rescale at the end. Few query rows
// (decode) take row-major dot products against each key row; 16-bit K/V convert whole rows.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

constexpr int64_t kBq = 64;  // query rows per task
constexpr int64_t kBk = 64;  // keys per block
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kSmallRows = 16;    // up to this many query rows: row-major dot products
constexpr int64_t kMinSplitKeys = 512;  // split-KV: at least this many keys per split

inline float dot_f32(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  s0 = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  s = _mm_cvtss_f32(h);
#else
  float acc[8] = {};
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  for (int k = 0; k < 8; ++k) s += acc[k];
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

enum MaskKind { kNoMask = 0, kBoolMask = 1, kFloatMask = 2 };

template <typename T, int MK>
void attention_kernel(const KernelArgs& a) {
  const AttentionParams& p = a.p<AttentionParams>();
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  const Tensor* mask = MK != kNoMask ? a.in[3] : nullptr;
  Tensor& o = *a.out[0];
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3);
  const int64_t G = Hq / Hkv, off = Tk - Tq;
  const int64_t rows = G * Tq, nqb = (rows + kBq - 1) / kBq;
  const int64_t base_tasks = B * Hkv * nqb;
  // split-KV when the (batch, head, row block) tasks cannot keep the threads busy
  int64_t nsplit = 1;
  {
    const int64_t want = 4 * static_cast<int64_t>(num_threads());
    if (base_tasks < want && !(p.causal && nqb > 1))
      nsplit = std::max<int64_t>(1, std::min((want + base_tasks - 1) / base_tasks, Tk / kMinSplitKeys));
  }
  const int64_t split_len = ((Tk + nsplit - 1) / nsplit + kBk - 1) / kBk * kBk;
  const int64_t tasks = base_tasks * nsplit;
  // partial results per (task, row): acc [Dv], max, sum (only when split)
  std::vector<float> part_acc, part_m, part_l;
  if (nsplit > 1) {
    part_acc.assign(static_cast<size_t>(tasks * kBq * Dv), 0.0f);
    part_m.assign(static_cast<size_t>(tasks * kBq), kNegInf);
    part_l.assign(static_cast<size_t>(tasks * kBq), 0.0f);
  }
  const float scale = static_cast<float>(p.scale);
  const float cap = static_cast<float>(p.softcap);
  const char* const qb = static_cast<const char*>(q.data());
  const char* const kb = static_cast<const char*>(k.data());
  const char* const vb = static_cast<const char*>(v.data());
  char* const ob = static_cast<char*>(o.data());
  const char* const mb = mask ? static_cast<const char*>(mask->data()) : nullptr;
  const bool v_contig = v.stride(3) == static_cast<int64_t>(sizeof(T));
  const bool k_contig = k.stride(3) == static_cast<int64_t>(sizeof(T));

  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> Qs(static_cast<size_t>(kBq * D)), Kt(static_cast<size_t>(D * kBk), 0.0f),
        Vb(static_cast<size_t>(kBk * Dv)), Kb(static_cast<size_t>(kBk * D)), S(static_cast<size_t>(kBq * kBk)),
        acc(static_cast<size_t>(kBq * Dv));
    float m[kBq], l[kBq];
    int64_t qi_of[kBq], h_of[kBq];
    for (int64_t tt = t0; tt < t1; ++tt) {
      // zig-zag: 0, n-1, 1, n-2, ... so contiguous halves carry similar causal work
      const int64_t task = (tt % 2 == 0) ? tt / 2 : tasks - 1 - tt / 2;
      const int64_t split = task % nsplit, btask = task / nsplit;
      const int64_t qblk = btask % nqb, hkv = (btask / nqb) % Hkv, b = btask / (nqb * Hkv);
      const int64_t r0 = qblk * kBq, nr = std::min(kBq, rows - r0);
      int64_t qmin = Tq, qmax = -1;
      for (int64_t ri = 0; ri < nr; ++ri) {
        const int64_t r = r0 + ri, qi = r / G, h = hkv * G + r % G;
        qi_of[ri] = qi;
        h_of[ri] = h;
        qmin = std::min(qmin, qi);
        qmax = std::max(qmax, qi);
        const char* qr = qb + b * q.stride(0) + h * q.stride(1) + qi * q.stride(2);
        float* qs = Qs.data() + ri * D;
        for (int64_t d = 0; d < D; ++d) qs[d] = Io<T>::load(qr + d * q.stride(3)) * scale;
        m[ri] = kNegInf;
        l[ri] = 0.0f;
      }
      std::fill(acc.begin(), acc.begin() + nr * Dv, 0.0f);
      int64_t jend = Tk, jbeg = 0;
      if (p.causal) jend = std::min(Tk, qmax + off + 1);
      if (p.window > 0) jbeg = std::max<int64_t>(0, qmin + off - p.window + 1);
      if (nsplit > 1) {
        jbeg = std::max(jbeg, split * split_len);
        jend = std::min(jend, (split + 1) * split_len);
      }
      const char* kbase = kb + b * k.stride(0) + hkv * k.stride(1);
      const char* vbase = vb + b * v.stride(0) + hkv * v.stride(1);
      for (int64_t j0 = jbeg; j0 < jend; j0 += kBk) {
        const int64_t nk = std::min(kBk, jend - j0);
        // K rows as f32 (in place when f32 contiguous, else converted into Kb)
        const float* krows[kBk];
        for (int64_t jj = 0; jj < nk; ++jj) {
          const char* kr = kbase + (j0 + jj) * k.stride(2);
          float* dst = Kb.data() + jj * D;
          if constexpr (std::is_same_v<T, float>) {
            if (k_contig) {
              krows[jj] = reinterpret_cast<const float*>(kr);
              continue;
            }
          } else {
            if (k_contig) {
              cvt_to_f32(reinterpret_cast<const T*>(kr), dst, D);
              krows[jj] = dst;
              continue;
            }
          }
          for (int64_t d = 0; d < D; ++d) dst[d] = Io<T>::load(kr + d * k.stride(3));
          krows[jj] = dst;
        }
        if (nr <= kSmallRows) {
          // S = Q K^T by row-major dot products (already scaled)
          for (int64_t ri = 0; ri < nr; ++ri) {
            float* s = S.data() + ri * kBk;
            const float* qs = Qs.data() + ri * D;
            for (int64_t jj = 0; jj < nk; ++jj) s[jj] = dot_f32(qs, krows[jj], D);
            for (int64_t jj = nk; jj < kBk; ++jj) s[jj] = 0.0f;
          }
        } else {
          // K block transposed to [D, kBk] (zero padded past nk)
          for (int64_t jj = 0; jj < nk; ++jj) {
            const float* kf = krows[jj];
            for (int64_t d = 0; d < D; ++d) Kt[static_cast<size_t>(d * kBk + jj)] = kf[d];
          }
          if (nk < kBk)
            for (int64_t d = 0; d < D; ++d)
              for (int64_t jj = nk; jj < kBk; ++jj) Kt[static_cast<size_t>(d * kBk + jj)] = 0.0f;
          for (int64_t ri = 0; ri < nr; ++ri) {
            float* __restrict s = S.data() + ri * kBk;
            const float* __restrict qs = Qs.data() + ri * D;
            for (int64_t jj = 0; jj < kBk; ++jj) s[jj] = 0.0f;
            for (int64_t d = 0; d < D; ++d) {
              const float qd = qs[d];
              const float* __restrict kt = Kt.data() + d * kBk;
              for (int64_t jj = 0; jj < kBk; ++jj) s[jj] += qd * kt[jj];
            }
          }
        }
        if (cap > 0)
          for (int64_t ri = 0; ri < nr; ++ri) {
            float* s = S.data() + ri * kBk;
            for (int64_t jj = 0; jj < kBk; ++jj) s[jj] = cap * tanh_f32(s[jj] / cap);
          }
        // masks and online softmax
        for (int64_t ri = 0; ri < nr; ++ri) {
          float* s = S.data() + ri * kBk;
          const int64_t qi = qi_of[ri];
          // visible key range for this row inside the block: [lo, hi)
          int64_t lo = 0, hi = nk;
          if (p.causal) hi = std::min(hi, std::max<int64_t>(0, qi + off + 1 - j0));
          if (p.window > 0) lo = std::max<int64_t>(lo, std::min<int64_t>(hi, qi + off - p.window + 1 - j0));
          for (int64_t jj = 0; jj < lo; ++jj) s[jj] = kNegInf;
          for (int64_t jj = hi; jj < kBk; ++jj) s[jj] = kNegInf;
          if constexpr (MK != kNoMask) {
            const char* mr = mb + b * mask->stride(0) + h_of[ri] * mask->stride(1) + qi * mask->stride(2);
            const int64_t ms = mask->stride(3);
            for (int64_t jj = lo; jj < hi; ++jj) {
              const char* mp = mr + (j0 + jj) * ms;
              if constexpr (MK == kBoolMask) {
                if (*reinterpret_cast<const uint8_t*>(mp) == 0) s[jj] = kNegInf;
              } else {
                float mv;
                std::memcpy(&mv, mp, 4);
                s[jj] += mv;
              }
            }
          }
          float bmax = kNegInf;
          for (int64_t jj = lo; jj < hi; ++jj) bmax = std::max(bmax, s[jj]);
          if (bmax == kNegInf) {  // nothing visible for this row in this block
            for (int64_t jj = 0; jj < kBk; ++jj) s[jj] = 0.0f;
            continue;
          }
          const float mnew = std::max(m[ri], bmax);
          const float alpha = exp_f32(m[ri] - mnew);  // m = -inf -> 0
          float sum = 0.0f;
          for (int64_t jj = 0; jj < kBk; ++jj) {
            const float e = exp_f32(s[jj] - mnew);
            s[jj] = e;
            sum += e;
          }
          if (alpha != 1.0f) {
            float* ar = acc.data() + ri * Dv;
            for (int64_t d = 0; d < Dv; ++d) ar[d] *= alpha;
          }
          l[ri] = l[ri] * alpha + sum;
          m[ri] = mnew;
        }
        // acc += P V
        const float* vrows[kBk];
        for (int64_t jj = 0; jj < nk; ++jj) {
          const char* vr = vbase + (j0 + jj) * v.stride(2);
          float* dst = Vb.data() + jj * Dv;
          if constexpr (std::is_same_v<T, float>) {
            if (v_contig) {
              vrows[jj] = reinterpret_cast<const float*>(vr);
              continue;
            }
          } else {
            if (v_contig) {
              cvt_to_f32(reinterpret_cast<const T*>(vr), dst, Dv);
              vrows[jj] = dst;
              continue;
            }
          }
          for (int64_t d = 0; d < Dv; ++d) dst[d] = Io<T>::load(vr + d * v.stride(3));
          vrows[jj] = dst;
        }
        for (int64_t ri = 0; ri < nr; ++ri) {
          const float* s = S.data() + ri * kBk;
          float* __restrict ar = acc.data() + ri * Dv;
          for (int64_t jj = 0; jj < nk; ++jj) {
            const float pj = s[jj];
            if (pj == 0.0f) continue;
            const float* __restrict vr = vrows[jj];
            for (int64_t d = 0; d < Dv; ++d) ar[d] += pj * vr[d];
          }
        }
      }
      if (nsplit > 1) {  // keep the partial result for the merge
        for (int64_t ri = 0; ri < nr; ++ri) {
          part_m[static_cast<size_t>(task * kBq + ri)] = m[ri];
          part_l[static_cast<size_t>(task * kBq + ri)] = l[ri];
          std::copy(acc.begin() + ri * Dv, acc.begin() + (ri + 1) * Dv,
                    part_acc.begin() + (task * kBq + ri) * Dv);
        }
        continue;
      }
      for (int64_t ri = 0; ri < nr; ++ri) {
        char* orow = ob + b * o.stride(0) + h_of[ri] * o.stride(1) + qi_of[ri] * o.stride(2);
        const float inv = l[ri] > 0 ? 1.0f / l[ri] : 0.0f;
        const float* ar = acc.data() + ri * Dv;
        for (int64_t d = 0; d < Dv; ++d) Io<T>::store(orow + d * o.stride(3), ar[d] * inv);
      }
    }
  });
  if (nsplit == 1) return;
  // merge the splits: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M)
  parallel_for(base_tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> res(static_cast<size_t>(Dv));
    for (int64_t bt = t0; bt < t1; ++bt) {
      const int64_t qblk = bt % nqb, hkv = (bt / nqb) % Hkv, b = bt / (nqb * Hkv);
      const int64_t r0 = qblk * kBq, nr = std::min(kBq, rows - r0);
      for (int64_t ri = 0; ri < nr; ++ri) {
        const int64_t r = r0 + ri, qi = r / G, h = hkv * G + r % G;
        float M = kNegInf;
        for (int64_t sp = 0; sp < nsplit; ++sp) M = std::max(M, part_m[static_cast<size_t>((bt * nsplit + sp) * kBq + ri)]);
        std::fill(res.begin(), res.end(), 0.0f);
        float L = 0.0f;
        if (M != kNegInf) {
          for (int64_t sp = 0; sp < nsplit; ++sp) {
            const size_t pi = static_cast<size_t>((bt * nsplit + sp) * kBq + ri);
            if (part_m[pi] == kNegInf) continue;
            const float w = exp_f32(part_m[pi] - M);
            L += part_l[pi] * w;
            const float* pa = part_acc.data() + pi * static_cast<size_t>(Dv);
            for (int64_t d = 0; d < Dv; ++d) res[static_cast<size_t>(d)] += w * pa[d];
          }
        }
        const float inv = L > 0 ? 1.0f / L : 0.0f;
        char* orow = ob + b * o.stride(0) + h * o.stride(1) + qi * o.stride(2);
        for (int64_t d = 0; d < Dv; ++d) Io<T>::store(orow + d * o.stride(3), res[static_cast<size_t>(d)] * inv);
      }
    }
  });
}

template <typename T>
void add_dtype(KernelRegistry& reg, uint16_t backend_id, DType dt) {
  reg.add("attention", backend_id, KernelKey{dt, DType::count_}, &attention_kernel<T, kNoMask>);
  reg.add("attention", backend_id, KernelKey{dt, DType::boolean}, &attention_kernel<T, kBoolMask>);
  reg.add("attention", backend_id, KernelKey{dt, DType::f32}, &attention_kernel<T, kFloatMask>);
}

}  // namespace

void register_attention(KernelRegistry& reg, uint16_t backend_id) {
  add_dtype<float>(reg, backend_id, DType::f32);
  add_dtype<f16>(reg, backend_id, DType::f16);
  add_dtype<bf16>(reg, backend_id, DType::bf16);
}

}  // namespace flagos::cpu::FLAGOS_ISA
