// multinomial and the fused sampler. Draws come from the counter-based generator in
// src/ops/random.h, so every backend produces the same ids for the same (seed, offset).
// The sampler's pipeline order is documented at ops::sample (src/ops/llm.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/loops.h"
#include "backends/cpu/portable_families.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"
#include "ops/random.h"

namespace flagos::cpu {
namespace {

// First index whose running sum of w exceeds target (skipping zero weights); the last
// non-zero weight when rounding leaves target at the total.
int64_t pick(const double* w, int64_t n, double target) {
  double cum = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!(w[i] > 0)) continue;
    cum += w[i];
    last = i;
    if (cum > target) return i;
  }
  return last < 0 ? 0 : last;
}

template <typename T>
void multinomial_kernel(const KernelArgs& a) {
  const RandomParams& p = a.p<RandomParams>();
  const Tensor& probs = *a.in[0];
  Tensor& out = *a.out[0];
  const int64_t N = probs.size(0), C = probs.size(1), ns = p.num_samples;
  const char* pb = static_cast<const char*>(probs.data());
  char* ob = static_cast<char*>(out.data());
  parallel_for(N, std::max<int64_t>(1, 16384 / (C * (p.replacement ? 1 : ns))), [&](int64_t rb, int64_t re) {
    std::vector<double> w(static_cast<size_t>(C)), cdf(static_cast<size_t>(C));
    for (int64_t r = rb; r < re; ++r) {
      for (int64_t c = 0; c < C; ++c)
        w[static_cast<size_t>(c)] = static_cast<double>(Io<T>::load(pb + r * probs.stride(0) + c * probs.stride(1)));
      const uint64_t base = p.offset + static_cast<uint64_t>(r * ns);
      char* orow = ob + r * out.stride(0);
      if (p.replacement) {
        double cum = 0;
        int64_t last = 0;
        for (int64_t c = 0; c < C; ++c) {
          cum += w[static_cast<size_t>(c)] > 0 ? w[static_cast<size_t>(c)] : 0.0;
          cdf[static_cast<size_t>(c)] = cum;
          if (w[static_cast<size_t>(c)] > 0) last = c;
        }
        for (int64_t s = 0; s < ns; ++s) {
          const double target = random::uniform(p.seed, base + static_cast<uint64_t>(s)) * cum;
          int64_t i = std::upper_bound(cdf.begin(), cdf.end(), target) - cdf.begin();
          if (i >= C) i = last;
          std::memcpy(orow + s * out.stride(1), &i, 8);
        }
      } else {
        for (int64_t s = 0; s < ns; ++s) {
          double total = 0;
          for (int64_t c = 0; c < C; ++c) total += w[static_cast<size_t>(c)] > 0 ? w[static_cast<size_t>(c)] : 0.0;
          const double target = random::uniform(p.seed, base + static_cast<uint64_t>(s)) * total;
          const int64_t i = pick(w.data(), C, target);
          w[static_cast<size_t>(i)] = 0;
          std::memcpy(orow + s * out.stride(1), &i, 8);
        }
      }
    }
  });
}

struct Cand {
  float l;
  int32_t i;
};
// larger logit first, lower id on ties
inline bool better(const Cand& a, const Cand& b) { return a.l > b.l || (a.l == b.l && a.i < b.i); }

template <typename T, typename H>
void sample_kernel(const KernelArgs& a) {
  const SamplerParams& p = a.p<SamplerParams>();
  const Tensor& logits = *a.in[0];
  const Tensor* hist = a.in.size() > 1 ? a.in[1] : nullptr;
  Tensor& out = *a.out[0];
  const int64_t B = logits.size(0), V = logits.size(1);
  const char* lb = static_cast<const char*>(logits.data());
  const bool penalize = hist && hist->size(1) > 0 &&
                        (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  parallel_for(B, 1, [&](int64_t rb, int64_t re) {
    std::vector<float> lg(static_cast<size_t>(V));
    std::vector<Cand> cand;
    std::vector<double> w;
    std::vector<int64_t> ids;
    for (int64_t r = rb; r < re; ++r) {
      const char* lr = lb + r * logits.stride(0);
      const int64_t ls = logits.stride(1);
      for (int64_t i = 0; i < V; ++i) {
        const float v = Io<T>::load(lr + i * ls);
        lg[static_cast<size_t>(i)] = std::isnan(v) ? ninf : v;
      }
      // (1) penalties over distinct history ids
      if constexpr (!std::is_same_v<H, void>) {
        if (penalize) {
          ids.clear();
          const char* hr = static_cast<const char*>(hist->data()) + r * hist->stride(0);
          for (int64_t j = 0; j < hist->size(1); ++j) {
            H id;
            std::memcpy(&id, hr + j * hist->stride(1), sizeof(H));
            if (id >= 0 && static_cast<int64_t>(id) < V) ids.push_back(static_cast<int64_t>(id));
          }
          std::sort(ids.begin(), ids.end());
          for (size_t j = 0; j < ids.size();) {
            size_t e = j;
            while (e < ids.size() && ids[e] == ids[j]) ++e;
            float& x = lg[static_cast<size_t>(ids[j])];
            if (p.repetition_penalty != 1.0f) x = x > 0 ? x / p.repetition_penalty : x * p.repetition_penalty;
            x -= p.frequency_penalty * static_cast<float>(e - j) + p.presence_penalty;
            j = e;
          }
        }
      }
      int64_t result = 0;
      // (2) greedy
      if (p.temperature == 0.0f) {
        float best = lg[0];
        for (int64_t i = 1; i < V; ++i)
          if (lg[static_cast<size_t>(i)] > best) {
            best = lg[static_cast<size_t>(i)];
            result = i;
          }
        std::memcpy(static_cast<char*>(out.data()) + r * out.stride(0), &result, 8);
        continue;
      }
      // (4) top-k (exactly k), before (3) temperature: the order is unchanged by a positive scale
      bool desc = false;  // cand sorted by better()
      cand.clear();
      if (p.top_k > 0 && p.top_k < V) {
        const int64_t k = p.top_k;
        cand.reserve(static_cast<size_t>(k));
        for (int64_t i = 0; i < k; ++i) cand.push_back({lg[static_cast<size_t>(i)], static_cast<int32_t>(i)});
        std::make_heap(cand.begin(), cand.end(), better);  // worst on top
        for (int64_t i = k; i < V; ++i) {
          const float v = lg[static_cast<size_t>(i)];
          if (!(v > cand.front().l)) continue;
          std::pop_heap(cand.begin(), cand.end(), better);
          cand.back() = {v, static_cast<int32_t>(i)};
          std::push_heap(cand.begin(), cand.end(), better);
        }
        std::sort(cand.begin(), cand.end(), better);
        desc = true;
      } else {
        cand.resize(static_cast<size_t>(V));
        for (int64_t i = 0; i < V; ++i) cand[static_cast<size_t>(i)] = {lg[static_cast<size_t>(i)], static_cast<int32_t>(i)};
      }
      // (3) temperature, then unnormalized probabilities w = exp(l - max) (max weight is exactly 1)
      float mx = ninf;
      for (Cand& c : cand) {
        c.l /= p.temperature;
        mx = std::max(mx, c.l);
      }
      if (mx == ninf) {  // every logit is -inf: nothing to draw from; return the first candidate
        result = desc ? cand[0].i : 0;
        std::memcpy(static_cast<char*>(out.data()) + r * out.stride(0), &result, 8);
        continue;
      }
      w.resize(cand.size());
      double total = 0;
      for (size_t j = 0; j < cand.size(); ++j) {
        w[j] = std::exp(static_cast<double>(cand[j].l) - static_cast<double>(mx));
        total += w[j];
      }
      // (5) top-p: only the largest weights can be in the nucleus; narrow to w >= t before sorting
      if (p.top_p < 1.0f) {
        const double need = static_cast<double>(p.top_p) * total;
        if (!desc) {
          double t = 1e-3;
          for (;;) {
            double mass = 0;
            for (size_t j = 0; j < cand.size(); ++j)
              if (w[j] >= t) mass += w[j];
            if (mass >= need || t == 0) break;
            t = t < 1e-30 ? 0.0 : t * 1e-3;
          }
          size_t n = 0;
          for (size_t j = 0; j < cand.size(); ++j)
            if (w[j] >= t) {
              cand[n] = cand[j];
              w[n++] = w[j];
            }
          cand.resize(n);
          w.resize(n);
          std::vector<size_t> ord(n);
          for (size_t j = 0; j < n; ++j) ord[j] = j;
          std::sort(ord.begin(), ord.end(), [&](size_t x, size_t y) { return better(cand[x], cand[y]); });
          std::vector<Cand> c2(n);
          std::vector<double> w2(n);
          for (size_t j = 0; j < n; ++j) {
            c2[j] = cand[ord[j]];
            w2[j] = w[ord[j]];
          }
          cand.swap(c2);
          w.swap(w2);
          desc = true;
        }
        double before_mass = 0;
        size_t keep = 0;
        while (keep < cand.size() && (keep == 0 || before_mass < need)) before_mass += w[keep++];
        cand.resize(keep);
        w.resize(keep);
      }
      // (6) min-p relative to the max probability (weight 1)
      if (p.min_p > 0.0f) {
        size_t n = 0;
        for (size_t j = 0; j < cand.size(); ++j)
          if (w[j] >= static_cast<double>(p.min_p)) {
            cand[n] = cand[j];
            w[n++] = w[j];
          }
        cand.resize(n);
        w.resize(n);
      }
      // (7) draw over the survivors in ascending id order
      if (desc) {
        std::vector<size_t> ord(cand.size());
        for (size_t j = 0; j < ord.size(); ++j) ord[j] = j;
        std::sort(ord.begin(), ord.end(), [&](size_t x, size_t y) { return cand[x].i < cand[y].i; });
        std::vector<Cand> c2(ord.size());
        std::vector<double> w2(ord.size());
        for (size_t j = 0; j < ord.size(); ++j) {
          c2[j] = cand[ord[j]];
          w2[j] = w[ord[j]];
        }
        cand.swap(c2);
        w.swap(w2);
      }
      double kept = 0;
      for (double x : w) kept += x;
      const double u = random::uniform(p.seed, p.offset + static_cast<uint64_t>(r));
      const int64_t j = pick(w.data(), static_cast<int64_t>(w.size()), u * kept);
      result = cand[static_cast<size_t>(j)].i;
      std::memcpy(static_cast<char*>(out.data()) + r * out.stride(0), &result, 8);
    }
  });
}

template <DType D>
void add_dtype(KernelRegistry& reg, uint16_t backend_id) {
  using T = typename StorageOf<D>::type;
  reg.add("multinomial", backend_id, KernelKey{D}, &multinomial_kernel<T>);
  if constexpr (D != DType::f64) {
    reg.add("sample", backend_id, KernelKey{D, DType::count_}, &sample_kernel<T, void>);
    reg.add("sample", backend_id, KernelKey{D, DType::i32}, &sample_kernel<T, int32_t>);
    reg.add("sample", backend_id, KernelKey{D, DType::i64}, &sample_kernel<T, int64_t>);
  }
}

}  // namespace

void register_sampling(KernelRegistry& reg, uint16_t backend_id) {
  add_dtype<DType::f32>(reg, backend_id);
  add_dtype<DType::f64>(reg, backend_id);
  add_dtype<DType::f16>(reg, backend_id);
  add_dtype<DType::bf16>(reg, backend_id);
}

}  // namespace flagos::cpu
