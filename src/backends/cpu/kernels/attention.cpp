// Scaled dot-product attention, flash style: for a block of query rows, walk key blocks with
// an online softmax (running max / sum, f32 accumulation), so memory stays O(block) for any Tk.
// GQA: the Hq/Hkv query heads sharing a kv head are processed together (rows ordered
// query-position major, head minor), so each K/V block is loaded once for all of them and a
// causal block still covers a narrow range of positions. Tasks = (batch, kv head, row block),
// ordered zig-zag so the static split of the thread pool balances causal work. When there are
// too few tasks for the threads (decode), the key range is also split (split-KV) and the partial
// (max, sum, acc) of each split are merged with a log-sum-exp rescale at the end. Few query rows
// (decode) take row-major dot products against each key row; 16-bit K/V convert whole rows.
// The same kernel runs paged_attention (a geometry gives each item's rows and finds its key rows
// through the block table) and kv_cache_store is a row copy into the cache slots.
#include <algorithm>
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

// Where the rows of an attention problem live. A geometry gives, per item b (a batch entry or a
// paged sequence): its query rows tq(b), keys tk(b) and the position offset off(b) of its first
// query row (query i sees keys j <= i + off(b) when causal), and byte pointers to the rows of q, o,
// K and V (feature strides q_cs, o_cs, k_cs, v_cs). krow/vrow may return null for a key whose
// block id is out of range (kMayMiss): the key is skipped.

// Dense q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv], o [B, Hq, Tq, Dv], optional mask.
struct DenseGeo {
  static constexpr bool kMayMiss = false;
  const Tensor& q;
  const Tensor& k;
  const Tensor& v;
  const Tensor& o;
  const Tensor* mask;
  int64_t q_cs, o_cs, k_cs, v_cs;
  DenseGeo(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& o_, const Tensor* m)
      : q(q_), k(k_), v(v_), o(o_), mask(m), q_cs(q.stride(3)), o_cs(o.stride(3)), k_cs(k.stride(3)),
        v_cs(v.stride(3)) {}
  int64_t items() const { return q.size(0); }
  int64_t tq(int64_t) const { return q.size(2); }
  int64_t tk(int64_t) const { return k.size(2); }
  int64_t off(int64_t) const { return k.size(2) - q.size(2); }
  const char* qrow(int64_t b, int64_t h, int64_t i) const {
    return static_cast<const char*>(q.data()) + b * q.stride(0) + h * q.stride(1) + i * q.stride(2);
  }
  char* orow(int64_t b, int64_t h, int64_t i) const {
    return static_cast<char*>(o.data()) + b * o.stride(0) + h * o.stride(1) + i * o.stride(2);
  }
  const char* krow(int64_t b, int64_t hkv, int64_t j) const {
    return static_cast<const char*>(k.data()) + b * k.stride(0) + hkv * k.stride(1) + j * k.stride(2);
  }
  const char* vrow(int64_t b, int64_t hkv, int64_t j) const {
    return static_cast<const char*>(v.data()) + b * v.stride(0) + hkv * v.stride(1) + j * v.stride(2);
  }
  const char* mrow(int64_t b, int64_t h, int64_t i) const {
    return static_cast<const char*>(mask->data()) + b * mask->stride(0) + h * mask->stride(1) + i * mask->stride(2);
  }
};

// Paged: q [N, Hq, D], o [N, Hq, D], caches [num_blocks, Hkv, block_size, D]; item b owns query rows
// [row0[b], row0[b] + tq(b)) and keys [0, tk(b)) through its row of the block table. The per-item
// values are read (and clamped so nothing is addressed out of bounds) once, before the kernel.
struct PagedGeo {
  static constexpr bool kMayMiss = true;
  const Tensor& q;
  const Tensor& kc;
  const Tensor& vc;
  const Tensor& o;
  const Tensor& bt;
  std::vector<int64_t> row0, nq, nk, offs;
  int64_t q_cs, o_cs, k_cs, v_cs, bs, nblocks;
  PagedGeo(const Tensor& q_, const Tensor& kc_, const Tensor& vc_, const Tensor& o_, const Tensor& bt_,
           const Tensor& seq_lens, const Tensor& q_start)
      : q(q_), kc(kc_), vc(vc_), o(o_), bt(bt_), q_cs(q.stride(2)), o_cs(o.stride(2)), k_cs(kc.stride(3)),
        v_cs(vc.stride(3)), bs(kc.size(2)), nblocks(kc.size(0)) {
    const int64_t B = bt.size(0), N = q.size(0), cap = bt.size(1) * bs;
    auto i32 = [](const Tensor& t, int64_t i) {
      const char* p = static_cast<const char*>(t.data()) + i * t.stride(0);
      return static_cast<int64_t>(*reinterpret_cast<const int32_t*>(p));
    };
    int64_t prev = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t s = std::clamp<int64_t>(i32(q_start, b), prev, N);
      const int64_t e = std::clamp<int64_t>(i32(q_start, b + 1), s, N);
      const int64_t len = std::max<int64_t>(0, i32(seq_lens, b));
      row0.push_back(s);
      nq.push_back(e - s);
      nk.push_back(std::min(len, cap));  // keys past the block table are skipped
      offs.push_back(len - (e - s));
      prev = e;
    }
  }
  int64_t items() const { return bt.size(0); }
  int64_t tq(int64_t b) const { return nq[static_cast<size_t>(b)]; }
  int64_t tk(int64_t b) const { return nk[static_cast<size_t>(b)]; }
  int64_t off(int64_t b) const { return offs[static_cast<size_t>(b)]; }
  const char* qrow(int64_t b, int64_t h, int64_t i) const {
    return static_cast<const char*>(q.data()) + (row0[static_cast<size_t>(b)] + i) * q.stride(0) + h * q.stride(1);
  }
  char* orow(int64_t b, int64_t h, int64_t i) const {
    return static_cast<char*>(o.data()) + (row0[static_cast<size_t>(b)] + i) * o.stride(0) + h * o.stride(1);
  }
  // Byte offset of key j's row in a cache, or -1 when its block id is out of range.
  int64_t key_off(const Tensor& c, int64_t b, int64_t hkv, int64_t j) const {
    const int64_t blk = *reinterpret_cast<const int32_t*>(static_cast<const char*>(bt.data()) + b * bt.stride(0) +
                                                          (j / bs) * bt.stride(1));
    if (blk < 0 || blk >= nblocks) return -1;
    return blk * c.stride(0) + hkv * c.stride(1) + (j % bs) * c.stride(2);
  }
  const char* krow(int64_t b, int64_t hkv, int64_t j) const {
    const int64_t off = key_off(kc, b, hkv, j);
    return off < 0 ? nullptr : static_cast<const char*>(kc.data()) + off;
  }
  const char* vrow(int64_t b, int64_t hkv, int64_t j) const {
    const int64_t off = key_off(vc, b, hkv, j);
    return off < 0 ? nullptr : static_cast<const char*>(vc.data()) + off;
  }
  const char* mrow(int64_t, int64_t, int64_t) const { return nullptr; }
};

// The flash kernel over any geometry: tasks = (item, kv head, row block) [x split].
template <typename T, int MK, typename Geo>
void flash_attention(const Geo& g, const AttentionParams& p, int64_t Hq, int64_t Hkv, int64_t D, int64_t Dv) {
  const int64_t G = Hq / Hkv;
  // (item, kv head, row block) tasks; rows of an item = G * tq, position-major
  struct Task {
    int64_t b, hkv, qblk;
  };
  std::vector<Task> btasks;
  bool multi_block_causal = false;
  int64_t max_tk = 0;
  for (int64_t b = 0; b < g.items(); ++b) {
    const int64_t nqb = (G * g.tq(b) + kBq - 1) / kBq;
    if (p.causal && nqb > 1) multi_block_causal = true;
    if (nqb > 0) max_tk = std::max(max_tk, g.tk(b));
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t qb = 0; qb < nqb; ++qb) btasks.push_back({b, h, qb});
  }
  const int64_t base_tasks = static_cast<int64_t>(btasks.size());
  if (base_tasks == 0) return;
  // split-KV when the (item, head, row block) tasks cannot keep the threads busy
  int64_t nsplit = 1;
  {
    const int64_t want = 4 * static_cast<int64_t>(num_threads());
    if (base_tasks < want && !multi_block_causal)
      nsplit = std::max<int64_t>(1, std::min((want + base_tasks - 1) / base_tasks, max_tk / kMinSplitKeys));
  }
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
  const bool v_contig = g.v_cs == static_cast<int64_t>(sizeof(T));
  const bool k_contig = g.k_cs == static_cast<int64_t>(sizeof(T));

  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> Qs(static_cast<size_t>(kBq * D)), Kt(static_cast<size_t>(D * kBk), 0.0f),
        Vb(static_cast<size_t>(kBk * Dv)), Kb(static_cast<size_t>(kBk * D)), S(static_cast<size_t>(kBq * kBk)),
        acc(static_cast<size_t>(kBq * Dv));
    float m[kBq], l[kBq];
    int64_t qi_of[kBq], h_of[kBq];
    bool miss[kBk] = {};
    for (int64_t tt = t0; tt < t1; ++tt) {
      // zig-zag: 0, n-1, 1, n-2, ... so contiguous halves carry similar causal work
      const int64_t task = (tt % 2 == 0) ? tt / 2 : tasks - 1 - tt / 2;
      const int64_t split = task % nsplit;
      const Task& bt = btasks[static_cast<size_t>(task / nsplit)];
      const int64_t b = bt.b, hkv = bt.hkv, qblk = bt.qblk;
      const int64_t Tq = g.tq(b), Tk = g.tk(b), off = g.off(b), rows = G * Tq;
      const int64_t r0 = qblk * kBq, nr = std::min(kBq, rows - r0);
      int64_t qmin = Tq, qmax = -1;
      for (int64_t ri = 0; ri < nr; ++ri) {
        const int64_t r = r0 + ri, qi = r / G, h = hkv * G + r % G;
        qi_of[ri] = qi;
        h_of[ri] = h;
        qmin = std::min(qmin, qi);
        qmax = std::max(qmax, qi);
        const char* qr = g.qrow(b, h, qi);
        float* qs = Qs.data() + ri * D;
        for (int64_t d = 0; d < D; ++d) qs[d] = Io<T>::load(qr + d * g.q_cs) * scale;
        m[ri] = kNegInf;
        l[ri] = 0.0f;
      }
      std::fill(acc.begin(), acc.begin() + nr * Dv, 0.0f);
      int64_t jend = Tk, jbeg = 0;
      if (p.causal) jend = std::min(Tk, qmax + off + 1);
      if (p.window > 0) jbeg = std::max<int64_t>(0, qmin + off - p.window + 1);
      if (nsplit > 1) {
        const int64_t split_len = ((Tk + nsplit - 1) / nsplit + kBk - 1) / kBk * kBk;
        jbeg = std::max(jbeg, split * split_len);
        jend = std::min(jend, (split + 1) * split_len);
      }
      for (int64_t j0 = jbeg; j0 < jend; j0 += kBk) {
        const int64_t nk = std::min(kBk, jend - j0);
        bool any_miss = false;
        // K rows as f32 (in place when f32 contiguous, else converted into Kb); missing rows are zeros
        const float* krows[kBk];
        for (int64_t jj = 0; jj < nk; ++jj) {
          const char* kr = g.krow(b, hkv, j0 + jj);
          float* dst = Kb.data() + jj * D;
          if constexpr (Geo::kMayMiss) {
            miss[jj] = kr == nullptr;
            if (kr == nullptr) {
              any_miss = true;
              std::fill(dst, dst + D, 0.0f);
              krows[jj] = dst;
              continue;
            }
          }
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
          for (int64_t d = 0; d < D; ++d) dst[d] = Io<T>::load(kr + d * g.k_cs);
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
          if (any_miss)
            for (int64_t jj = lo; jj < hi; ++jj)
              if (miss[jj]) s[jj] = kNegInf;
          if constexpr (MK != kNoMask) {
            const char* mr = g.mrow(b, h_of[ri], qi);
            const int64_t ms = g.mask->stride(3);
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
        // acc += P V (missing rows have probability 0: skipped)
        const float* vrows[kBk];
        for (int64_t jj = 0; jj < nk; ++jj) {
          const char* vr = g.vrow(b, hkv, j0 + jj);
          float* dst = Vb.data() + jj * Dv;
          if constexpr (Geo::kMayMiss) {
            if (vr == nullptr) {
              std::fill(dst, dst + Dv, 0.0f);
              vrows[jj] = dst;
              continue;
            }
          }
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
          for (int64_t d = 0; d < Dv; ++d) dst[d] = Io<T>::load(vr + d * g.v_cs);
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
          std::copy(acc.begin() + ri * Dv, acc.begin() + (ri + 1) * Dv, part_acc.begin() + (task * kBq + ri) * Dv);
        }
        continue;
      }
      for (int64_t ri = 0; ri < nr; ++ri) {
        char* orow = g.orow(b, h_of[ri], qi_of[ri]);
        const float inv = l[ri] > 0 ? 1.0f / l[ri] : 0.0f;
        const float* ar = acc.data() + ri * Dv;
        for (int64_t d = 0; d < Dv; ++d) Io<T>::store(orow + d * g.o_cs, ar[d] * inv);
      }
    }
  });
  if (nsplit == 1) return;
  // merge the splits: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M)
  parallel_for(base_tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> res(static_cast<size_t>(Dv));
    for (int64_t bti = t0; bti < t1; ++bti) {
      const Task& bt = btasks[static_cast<size_t>(bti)];
      const int64_t b = bt.b, hkv = bt.hkv, rows = G * g.tq(b);
      const int64_t r0 = bt.qblk * kBq, nr = std::min(kBq, rows - r0);
      for (int64_t ri = 0; ri < nr; ++ri) {
        const int64_t r = r0 + ri, qi = r / G, h = hkv * G + r % G;
        float M = kNegInf;
        for (int64_t sp = 0; sp < nsplit; ++sp)
          M = std::max(M, part_m[static_cast<size_t>((bti * nsplit + sp) * kBq + ri)]);
        std::fill(res.begin(), res.end(), 0.0f);
        float L = 0.0f;
        if (M != kNegInf) {
          for (int64_t sp = 0; sp < nsplit; ++sp) {
            const size_t pi = static_cast<size_t>((bti * nsplit + sp) * kBq + ri);
            if (part_m[pi] == kNegInf) continue;
            const float w = exp_f32(part_m[pi] - M);
            L += part_l[pi] * w;
            const float* pa = part_acc.data() + pi * static_cast<size_t>(Dv);
            for (int64_t d = 0; d < Dv; ++d) res[static_cast<size_t>(d)] += w * pa[d];
          }
        }
        const float inv = L > 0 ? 1.0f / L : 0.0f;
        char* orow = g.orow(b, h, qi);
        for (int64_t d = 0; d < Dv; ++d) Io<T>::store(orow + d * g.o_cs, res[static_cast<size_t>(d)] * inv);
      }
    }
  });
}

template <typename T, int MK>
void attention_kernel(const KernelArgs& a) {
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  const DenseGeo g(q, k, v, *a.out[0], MK != kNoMask ? a.in[3] : nullptr);
  flash_attention<T, MK>(g, a.p<AttentionParams>(), q.size(1), k.size(1), q.size(3), v.size(3));
}

// in: q, k_cache, v_cache, block_table, seq_lens, q_start; out: o. Rows outside every item are zeros.
template <typename T>
void paged_attention_kernel(const KernelArgs& a) {
  const Tensor& q = *a.in[0];
  const Tensor& kc = *a.in[1];
  Tensor& o = *a.out[0];
  const PagedGeo g(q, kc, *a.in[2], o, *a.in[3], *a.in[4], *a.in[5]);
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2);
  // zero the rows no item owns (before q_start[B] is covered by the items, gaps only if malformed)
  int64_t next = 0;
  auto zero_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t h = 0; h < Hq; ++h) {
        char* orow = static_cast<char*>(o.data()) + r * o.stride(0) + h * o.stride(1);
        for (int64_t d = 0; d < D; ++d) Io<T>::store(orow + d * o.stride(2), 0.0f);
      }
  };
  for (int64_t b = 0; b < g.items(); ++b) {
    zero_rows(next, g.row0[static_cast<size_t>(b)]);
    next = g.row0[static_cast<size_t>(b)] + g.tq(b);
  }
  zero_rows(next, N);
  flash_attention<T, kNoMask>(g, a.p<AttentionParams>(), Hq, kc.size(1), D, D);
}

// in: k, v, slots; out: k_cache, v_cache (written in place). Negative or out-of-range slots skip.
template <typename T>
void kv_cache_store_kernel(const KernelArgs& a) {
  const Tensor& slots = *a.in[2];
  const int64_t N = a.in[0]->size(0), Hkv = a.in[0]->size(1), D = a.in[0]->size(2);
  const int64_t bs = a.out[0]->size(2), cap = a.out[0]->size(0) * bs;
  parallel_for(N * Hkv, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / Hkv, h = i % Hkv;
      const int64_t slot = *reinterpret_cast<const int32_t*>(static_cast<const char*>(slots.data()) + n * slots.stride(0));
      if (slot < 0 || slot >= cap) continue;
      for (int t = 0; t < 2; ++t) {
        const Tensor& src = *a.in[t];
        const Tensor& dst = *a.out[t];
        const char* s = static_cast<const char*>(src.data()) + n * src.stride(0) + h * src.stride(1);
        char* d = static_cast<char*>(dst.data()) + (slot / bs) * dst.stride(0) + h * dst.stride(1) +
                  (slot % bs) * dst.stride(2);
        const int64_t ss = src.stride(2), ds = dst.stride(3), es = static_cast<int64_t>(sizeof(T));
        if (ss == es && ds == es) {
          std::memcpy(d, s, static_cast<size_t>(D * es));
        } else {
          for (int64_t e = 0; e < D; ++e) std::memcpy(d + e * ds, s + e * ss, sizeof(T));
        }
      }
    }
  });
}

template <typename T>
void add_dtype(KernelRegistry& reg, uint16_t backend_id, DType dt) {
  reg.add("attention", backend_id, KernelKey{dt, DType::count_}, &attention_kernel<T, kNoMask>);
  reg.add("attention", backend_id, KernelKey{dt, DType::boolean}, &attention_kernel<T, kBoolMask>);
  reg.add("attention", backend_id, KernelKey{dt, DType::f32}, &attention_kernel<T, kFloatMask>);
  reg.add("paged_attention", backend_id, KernelKey{dt}, &paged_attention_kernel<T>);
  reg.add("kv_cache_store", backend_id, KernelKey{dt}, &kv_cache_store_kernel<T>);
}

}  // namespace

void register_attention(KernelRegistry& reg, uint16_t backend_id) {
  add_dtype<float>(reg, backend_id, DType::f32);
  add_dtype<f16>(reg, backend_id, DType::f16);
  add_dtype<bf16>(reg, backend_id, DType::bf16);
}

}  // namespace flagos::cpu::FLAGOS_ISA
