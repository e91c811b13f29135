// LLM ops: rope (+ its frequency tables), silu_and_mul / gelu_and_mul, attention, topk / sort /
// argsort, multinomial and the fused sampler. Validation and shape inference live here;
// kernels are per backend.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "ops/op_common.h"

namespace flagos::ops {
using namespace detail;

namespace {

bool is_float16ish(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

// Fills defaults (head_dim / rotary_dim 0 = whole head) and validates every field the scaling uses.
RopeParams normalized_rope(const RopeParams& in) {
  RopeParams p = in;
  FLAGOS_CHECK(p.head_dim > 0, "rope: head_dim must be > 0, got ", p.head_dim);
  if (p.rotary_dim == 0) p.rotary_dim = p.head_dim;
  FLAGOS_CHECK(p.rotary_dim > 0 && p.rotary_dim <= p.head_dim && p.rotary_dim % 2 == 0, "rope: rotary_dim ",
               p.rotary_dim, " must be even and in (0, head_dim=", p.head_dim, "]");
  FLAGOS_CHECK(std::isfinite(p.theta) && p.theta > 1.0, "rope: theta must be finite and > 1, got ", p.theta);
  if (p.scaling != RopeScaling::none)
    FLAGOS_CHECK(std::isfinite(p.factor) && p.factor > 0, "rope: scaling factor must be finite and > 0, got ",
                 p.factor);
  if (p.scaling == RopeScaling::ntk)
    FLAGOS_CHECK(p.rotary_dim > 2, "rope: ntk scaling needs rotary_dim > 2, got ", p.rotary_dim);
  if (p.scaling == RopeScaling::yarn || p.scaling == RopeScaling::llama3)
    FLAGOS_CHECK(p.original_max_position > 0, "rope: yarn/llama3 scaling needs original_max_position > 0, got ",
                 p.original_max_position);
  if (p.scaling == RopeScaling::yarn)
    FLAGOS_CHECK(p.yarn_beta_fast > 0 && p.yarn_beta_slow > 0 && std::isfinite(p.yarn_attn_factor),
                 "rope: yarn needs beta_fast > 0 and beta_slow > 0 (got ", p.yarn_beta_fast, ", ", p.yarn_beta_slow,
                 ") and a finite attn_factor (got ", p.yarn_attn_factor, ")");
  if (p.scaling == RopeScaling::llama3)
    FLAGOS_CHECK(p.llama3_high_freq_factor > p.llama3_low_freq_factor && p.llama3_low_freq_factor > 0,
                 "rope: llama3 needs 0 < low_freq_factor < high_freq_factor, got ", p.llama3_low_freq_factor, " and ",
                 p.llama3_high_freq_factor);
  return p;
}

}  // namespace

// ---------------------------------------------------------------- rope
//
// Semantics follow HF transformers' rope_init_functions (computed in double here):
//  none:   inv_freq[i] = theta^(-2i/d), d = rotary_dim
//  linear: inv_freq / factor                          (= positions / factor)
//  ntk:    theta' = theta * factor^(d/(d-2))          (static NTK-aware)
//  yarn:   _compute_yarn_parameters with truncate=True: correction range
//          [floor(cd(beta_fast)), ceil(cd(beta_slow))] clamped to [0, d-1], where
//          cd(r) = d*ln(orig_max/(2*pi*r)) / (2 ln theta); ramp over i in [0, d/2);
//          inv_freq = interp*(1-e) + extrap*e with e = 1 - ramp (interp = extrap / factor).
//  llama3: _compute_llama3_parameters (wavelength bands from original_max_position / low|high freq factor).
// mscale (multiplies cos and sin) is 1 except for yarn: yarn_attn_factor when > 0 (HF's explicit
// `attention_factor`), else HF's default get_mscale(factor) = 0.1*ln(factor)+1 (1 when factor <= 1).
std::vector<double> rope_inv_freq(const RopeParams& params) {
  const RopeParams p = normalized_rope(params);
  const int64_t d = p.rotary_dim, half = d / 2;
  double base = p.theta;
  if (p.scaling == RopeScaling::ntk)
    base = p.theta * std::pow(p.factor, static_cast<double>(d) / static_cast<double>(d - 2));
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    f[static_cast<size_t>(i)] = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d));
  switch (p.scaling) {
    case RopeScaling::none:
    case RopeScaling::ntk:
      break;
    case RopeScaling::linear:
      for (double& v : f) v /= p.factor;
      break;
    case RopeScaling::yarn: {
      const double pi = std::numbers::pi, dd = static_cast<double>(d);
      const double omp = static_cast<double>(p.original_max_position);
      auto corr_dim = [&](double rot) { return dd * std::log(omp / (rot * 2 * pi)) / (2 * std::log(base)); };
      double lo = std::max(std::floor(corr_dim(p.yarn_beta_fast)), 0.0);
      double hi = std::min(std::ceil(corr_dim(p.yarn_beta_slow)), dd - 1);
      if (lo == hi) hi += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - lo) / (hi - lo), 0.0, 1.0);
        const double extrap_w = 1.0 - ramp;
        const double ex = f[static_cast<size_t>(i)], in = ex / p.factor;
        f[static_cast<size_t>(i)] = in * (1 - extrap_w) + ex * extrap_w;
      }
      break;
    }
    case RopeScaling::llama3: {
      const double pi = std::numbers::pi, old = static_cast<double>(p.original_max_position);
      const double lo_w = old / p.llama3_low_freq_factor, hi_w = old / p.llama3_high_freq_factor;
      for (double& v : f) {
        const double wl = 2 * pi / v;
        if (wl < hi_w) continue;  // high frequency: unchanged
        if (wl > lo_w) {          // low frequency: interpolated
          v /= p.factor;
          continue;
        }
        const double s = (old / wl - p.llama3_low_freq_factor) / (p.llama3_high_freq_factor - p.llama3_low_freq_factor);
        v = (1 - s) * v / p.factor + s * v;
      }
      break;
    }
  }
  return f;
}

double rope_mscale(const RopeParams& params) {
  const RopeParams p = normalized_rope(params);
  if (p.scaling != RopeScaling::yarn) return 1.0;
  if (p.yarn_attn_factor > 0) return p.yarn_attn_factor;
  return p.factor <= 1 ? 1.0 : 0.1 * std::log(p.factor) + 1.0;
}

Tensor rope(const Tensor& x, const Tensor& positions, const RopeParams& params, const Tensor& out) {
  check_defined("rope", x, "x");
  check_defined("rope", positions, "positions");
  const Device dev = common_device("rope", {&x, &positions, &out});
  FLAGOS_CHECK(is_float16ish(x.dtype()), "rope: x must be f32/f16/bf16, got ", x.dtype());
  FLAGOS_CHECK(positions.dtype() == DType::i32 || positions.dtype() == DType::i64, "rope: positions must be i32/i64, got ",
               positions.dtype());
  FLAGOS_CHECK(x.dim() >= 3, "rope: x must be [..., T, H, D], got shape ", x.shape());
  RopeParams p = params;
  if (p.head_dim == 0) p.head_dim = x.shape().back();
  FLAGOS_CHECK(p.head_dim == x.shape().back(), "rope: head_dim ", p.head_dim, " does not match x's last dim (shape ",
               x.shape(), ")");
  p = normalized_rope(p);
  Shape lead;  // [..., T]
  for (int i = 0; i < x.dim() - 2; ++i) lead.push_back(x.size(i));
  FLAGOS_CHECK(positions.shape() == lead || (positions.dim() == 1 && positions.size(0) == lead.back()),
               "rope: positions shape ", positions.shape(), " must be [T] = [", lead.back(), "] or ", lead,
               " for x of shape ", x.shape());
  Tensor o = prepare_out("rope", out, x.shape(), x.dtype(), dev);
  check_inplace_ok("rope", o, x);
  check_no_overlap("rope", o, positions);
  if (o.numel() == 0) return o;
  const Tensor pos = positions.shape() == lead ? positions : positions.expand(lead);
  static const uint16_t id = op_id("rope");
  launch(id, KernelKey{x.dtype(), positions.dtype()}, dev, {&x, &pos}, {&o}, &p);
  return o;
}

// ---------------------------------------------------------------- gated activations

static Tensor act_and_mul(const char* op, const Tensor& x, const ScalarParams* p, const Tensor& out) {
  check_defined(op, x, "x");
  const Device dev = common_device(op, {&x, &out});
  FLAGOS_CHECK(is_float16ish(x.dtype()), op, ": x must be f32/f16/bf16, got ", x.dtype());
  FLAGOS_CHECK(x.dim() >= 1 && x.shape().back() % 2 == 0, op, ": last dim must be even ([..., 2n] = [gate | up]), got shape ",
               x.shape());
  Shape s = x.shape();
  s[s.size() - 1] /= 2;
  Tensor o = prepare_out(op, out, s, x.dtype(), dev);
  check_no_overlap(op, o, x);
  if (o.numel() == 0) return o;
  static const uint16_t silu_id = op_id("silu_and_mul"), gelu_id = op_id("gelu_and_mul");
  launch(p ? gelu_id : silu_id, KernelKey{x.dtype()}, dev, {&x}, {&o}, p);
  return o;
}

Tensor silu_and_mul(const Tensor& x, const Tensor& out) { return act_and_mul("silu_and_mul", x, nullptr, out); }

Tensor gelu_and_mul(const Tensor& x, bool tanh_approx, const Tensor& out) {
  const ScalarParams p{tanh_approx ? 1.0 : 0.0, 0.0};
  return act_and_mul("gelu_and_mul", x, &p, out);
}

// ---------------------------------------------------------------- attention

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& params, const Tensor& mask,
                 const Tensor& out) {
  check_defined("attention", q, "q");
  check_defined("attention", k, "k");
  check_defined("attention", v, "v");
  const Device dev = common_device("attention", {&q, &k, &v, &mask, &out});
  FLAGOS_CHECK(is_float16ish(q.dtype()), "attention: q must be f32/f16/bf16, got ", q.dtype());
  FLAGOS_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), "attention: q, k, v must share a dtype, got ",
               q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  FLAGOS_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
               "attention: q [B,Hq,Tq,D], k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv] must be 4-D, got ", q.shape(), ", ",
               k.shape(), ", ", v.shape());
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3);
  FLAGOS_CHECK(k.size(0) == B && v.size(0) == B && v.size(1) == Hkv && v.size(2) == Tk && k.size(3) == D,
               "attention: inconsistent shapes q ", q.shape(), ", k ", k.shape(), ", v ", v.shape());
  FLAGOS_CHECK(Hkv > 0 ? Hq % Hkv == 0 : Hq == 0, "attention: Hq (", Hq, ") must be a multiple of Hkv (", Hkv, ")");
  FLAGOS_CHECK(D > 0 || B * Hq * Tq == 0, "attention: head dim must be > 0, got q ", q.shape());
  FLAGOS_CHECK(params.window >= 0, "attention: window must be >= 0, got ", params.window);
  FLAGOS_CHECK(params.softcap >= 0 && std::isfinite(params.softcap), "attention: softcap must be finite and >= 0, got ",
               params.softcap);
  FLAGOS_CHECK(std::isfinite(params.scale), "attention: scale must be finite, got ", params.scale);
  FLAGOS_CHECK(!params.causal || Tq <= Tk, "attention: causal needs Tq <= Tk (queries are the last Tq positions), got Tq=",
               Tq, ", Tk=", Tk);
  AttentionParams p = params;
  if (p.scale == 0) p.scale = 1.0 / std::sqrt(static_cast<double>(D > 0 ? D : 1));
  p.has_mask = mask.defined();
  const Shape full{B, Hq, Tq, Tk};
  Tensor m;
  if (mask.defined()) {
    FLAGOS_CHECK(mask.dtype() == DType::boolean || is_float16ish(mask.dtype()),
                 "attention: mask must be bool (true = attend) or f32/f16/bf16 (added), got ", mask.dtype());
    FLAGOS_CHECK(mask.dim() <= 4 && broadcast_shapes(mask.shape(), full, "attention") == full, "attention: mask shape ",
                 mask.shape(), " does not broadcast to [B,Hq,Tq,Tk] = ", full);
    m = mask.dtype() == DType::f16 || mask.dtype() == DType::bf16 ? cast(mask, DType::f32) : mask;
    m = m.expand(full);
  }
  Tensor o = prepare_out("attention", out, Shape{B, Hq, Tq, Dv}, q.dtype(), dev);
  for (const Tensor* t : {&q, &k, &v, &mask}) check_no_overlap("attention", o, *t);
  if (o.numel() == 0) return o;
  static const uint16_t id = op_id("attention");
  const KernelKey key{q.dtype(), m.defined() ? m.dtype() : DType::count_};
  if (m.defined())
    launch(id, key, dev, {&q, &k, &v, &m}, {&o}, &p);
  else
    launch(id, key, dev, {&q, &k, &v}, {&o}, &p);
  return o;
}

// ---------------------------------------------------------------- paged KV cache
//
// Shapes and dtypes only: lengths, slots and block ids stay on the device (capturable in a CUDA
// graph); kernels skip out-of-range slots and block ids instead of reading or writing out of bounds.

namespace {

// k_cache / v_cache [num_blocks, Hkv, block_size, D] of one float dtype, one shape, disjoint.
void check_paged_cache(const char* op, const Tensor& kc, const Tensor& vc) {
  check_defined(op, kc, "k_cache");
  check_defined(op, vc, "v_cache");
  FLAGOS_CHECK(kc.dim() == 4 && vc.dim() == 4, op, ": k_cache and v_cache must be 4-D [num_blocks, Hkv, block_size, D], got ",
               kc.shape(), " and ", vc.shape());
  FLAGOS_CHECK(kc.shape() == vc.shape(), op, ": k_cache ", kc.shape(), " and v_cache ", vc.shape(),
               " must have the same shape");
  FLAGOS_CHECK(is_float16ish(kc.dtype()) && vc.dtype() == kc.dtype(), op,
               ": k_cache and v_cache must share a dtype in f32/f16/bf16, got ", kc.dtype(), " and ", vc.dtype());
  FLAGOS_CHECK(kc.size(1) > 0 && kc.size(2) > 0 && kc.size(3) > 0, op,
               ": caches need Hkv, block_size and D > 0, got ", kc.shape());
  FLAGOS_CHECK(!overlaps(kc, vc), op, ": k_cache ", kc.describe(), " and v_cache ", vc.describe(), " overlap");
}

void check_i32_vector(const char* op, const Tensor& t, const char* name, int64_t n) {
  check_defined(op, t, name);
  FLAGOS_CHECK(t.dtype() == DType::i32 && t.dim() == 1 && t.size(0) == n, op, ": ", name, " must be i32 [", n,
               "], got ", t.dtype(), " ", t.shape());
}

}  // namespace

void kv_cache_store(const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
                    const Tensor& slots) {
  const char* op = "kv_cache_store";
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  check_paged_cache(op, k_cache, v_cache);
  const Device dev = common_device(op, {&k, &v, &k_cache, &v_cache, &slots});
  const int64_t Hkv = k_cache.size(1), D = k_cache.size(3);
  FLAGOS_CHECK(k.dim() == 3 && v.dim() == 3 && k.shape() == v.shape(), op,
               ": k and v must be 3-D [N, Hkv, D] of one shape, got ", k.shape(), " and ", v.shape());
  FLAGOS_CHECK(k.size(1) == Hkv && k.size(2) == D, op, ": k/v ", k.shape(), " do not match the caches ",
               k_cache.shape(), " (need [N, ", Hkv, ", ", D, "])");
  FLAGOS_CHECK(k.dtype() == k_cache.dtype() && v.dtype() == k_cache.dtype(), op, ": k and v must have the caches' dtype ",
               k_cache.dtype(), ", got ", k.dtype(), " and ", v.dtype());
  check_i32_vector(op, slots, "slots", k.size(0));
  for (const Tensor* c : {&k_cache, &v_cache})
    for (const Tensor* t : {&k, &v, &slots}) check_no_overlap(op, *c, *t);
  if (k.size(0) == 0 || k_cache.size(0) == 0) return;
  static const uint16_t id = op_id(op);
  Tensor kc = k_cache, vc = v_cache;
  launch(id, KernelKey{k_cache.dtype()}, dev, {&k, &v, &slots}, {&kc, &vc});
}

Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                       const Tensor& seq_lens, const Tensor& q_start, const AttentionParams& params,
                       const Tensor& out) {
  const char* op = "paged_attention";
  check_defined(op, q, "q");
  check_paged_cache(op, k_cache, v_cache);
  check_defined(op, block_table, "block_table");
  const Device dev = common_device(op, {&q, &k_cache, &v_cache, &block_table, &seq_lens, &q_start, &out});
  FLAGOS_CHECK(q.dim() == 3, op, ": q must be 3-D [N, Hq, D], got ", q.shape());
  FLAGOS_CHECK(q.dtype() == k_cache.dtype(), op, ": q and the caches must share a dtype, got ", q.dtype(), " and ",
               k_cache.dtype());
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), Hkv = k_cache.size(1);
  FLAGOS_CHECK(D == k_cache.size(3), op, ": q head dim ", D, " does not match the caches ", k_cache.shape());
  FLAGOS_CHECK(Hq % Hkv == 0, op, ": Hq (", Hq, ") must be a multiple of Hkv (", Hkv, ")");
  FLAGOS_CHECK(block_table.dtype() == DType::i32 && block_table.dim() == 2, op,
               ": block_table must be i32 [B, max_blocks], got ", block_table.dtype(), " ", block_table.shape());
  const int64_t B = block_table.size(0);
  check_i32_vector(op, seq_lens, "seq_lens", B);
  check_i32_vector(op, q_start, "q_start", B + 1);
  FLAGOS_CHECK(!params.has_mask, op, ": masks are not supported (has_mask must be false)");
  FLAGOS_CHECK(params.window >= 0, op, ": window must be >= 0, got ", params.window);
  FLAGOS_CHECK(params.softcap >= 0 && std::isfinite(params.softcap), op, ": softcap must be finite and >= 0, got ",
               params.softcap);
  FLAGOS_CHECK(std::isfinite(params.scale), op, ": scale must be finite, got ", params.scale);
  AttentionParams p = params;
  if (p.scale == 0) p.scale = 1.0 / std::sqrt(static_cast<double>(D));
  Tensor o = prepare_out(op, out, Shape{N, Hq, D}, q.dtype(), dev);
  for (const Tensor* t : {&q, &k_cache, &v_cache, &block_table, &seq_lens, &q_start}) check_no_overlap(op, o, *t);
  if (o.numel() == 0) return o;
  static const uint16_t id = op_id(op);
  launch(id, KernelKey{q.dtype()}, dev, {&q, &k_cache, &v_cache, &block_table, &seq_lens, &q_start}, {&o}, &p);
  return o;
}

// ---------------------------------------------------------------- topk / sort
//
// Order: NaN sorts as the largest value (as torch); -0.0 == +0.0; ties keep the lower index first
// (stable) in every direction.

static const DType kSortable[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                                  DType::u8,  DType::i16, DType::i32, DType::i64};
static void check_sortable(const char* op, const Tensor& x) {
  FLAGOS_CHECK(std::find(std::begin(kSortable), std::end(kSortable), x.dtype()) != std::end(kSortable), op,
               ": unsupported dtype ", x.dtype(), " (float or integer)");
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_defined("topk", x, "x");
  check_sortable("topk", x);
  if (x.dim() == 0) {
    auto [v, i] = topk(x.unsqueeze(0), k, 0, largest);
    return {v.squeeze(0), i.squeeze(0)};
  }
  const int d = normalize_dim(dim, x.dim(), "topk");
  FLAGOS_CHECK(k >= 0 && k <= x.size(d), "topk: k = ", k, " out of range [0, ", x.size(d), "] for dim ", dim,
               " of shape ", x.shape());
  Shape s = x.shape();
  s[d] = k;
  Tensor vals = Tensor::empty(s, x.dtype(), x.device()), idx = Tensor::empty(s, DType::i64, x.device());
  if (vals.numel() == 0) return {vals, idx};
  const int last = x.dim() - 1;
  const Tensor xi = x.transpose(d, last);
  Tensor vo = vals.transpose(d, last), io = idx.transpose(d, last);
  const TopkParams p{k, largest};
  static const uint16_t id = op_id("topk");
  launch(id, KernelKey{x.dtype()}, x.device(), {&xi}, {&vo, &io}, &p);
  return {vals, idx};
}

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  check_defined("sort", x, "x");
  check_sortable("sort", x);
  if (x.dim() == 0) {
    auto [v, i] = sort(x.unsqueeze(0), 0, descending);
    return {v.squeeze(0), i.squeeze(0)};
  }
  const int d = normalize_dim(dim, x.dim(), "sort");
  Tensor vals = Tensor::empty(x.shape(), x.dtype(), x.device()), idx = Tensor::empty(x.shape(), DType::i64, x.device());
  if (vals.numel() == 0) return {vals, idx};
  const int last = x.dim() - 1;
  const Tensor xi = x.transpose(d, last);
  Tensor vo = vals.transpose(d, last), io = idx.transpose(d, last);
  const SortParams p{descending, true};
  static const uint16_t id = op_id("sort");
  launch(id, KernelKey{x.dtype()}, x.device(), {&xi}, {&vo, &io}, &p);
  return {vals, idx};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return sort(x, dim, descending).second; }

// ---------------------------------------------------------------- random sampling

// Draw numbering (counter-based, see src/ops/random.h): draw s of row r uses counter
// gen.offset + r * num_samples + s; afterwards gen.offset += rows * num_samples.
// probs [C] gives [num_samples] (as torch), probs [N, C] gives [N, num_samples].
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen) {
  check_defined("multinomial", probs, "probs");
  FLAGOS_CHECK(is_float16ish(probs.dtype()) || probs.dtype() == DType::f64,
               "multinomial: probs must be a float tensor, got ", probs.dtype());
  FLAGOS_CHECK(probs.dim() == 1 || probs.dim() == 2, "multinomial: probs must be [C] or [N, C], got ", probs.shape());
  const Tensor p2 = probs.dim() == 1 ? probs.unsqueeze(0) : probs;
  const int64_t N = p2.size(0), C = p2.size(1);
  FLAGOS_CHECK(C > 0, "multinomial: probs has no categories (shape ", probs.shape(), ")");
  FLAGOS_CHECK(num_samples > 0, "multinomial: num_samples must be > 0, got ", num_samples);
  FLAGOS_CHECK(replacement || num_samples <= C, "multinomial: cannot draw ", num_samples,
               " samples without replacement from ", C, " categories");
  // Distribution checks need the values; they are cheap next to the draw and only done on host memory.
  if (p2.is_host_accessible()) {
    for (int64_t r = 0; r < N; ++r) {
      double sum = 0;
      int64_t nonzero = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double v = load_as_double(static_cast<const char*>(p2.data()) + r * p2.stride(0) + c * p2.stride(1),
                                        p2.dtype());
        FLAGOS_CHECK(std::isfinite(v) && v >= 0, "multinomial: row ", r, " has an invalid probability ", v,
                     " at column ", c, " (must be finite and >= 0)");
        sum += v;
        nonzero += v > 0;
      }
      FLAGOS_CHECK(sum > 0, "multinomial: row ", r, " sums to 0");
      FLAGOS_CHECK(replacement || nonzero >= num_samples, "multinomial: row ", r, " has only ", nonzero,
                   " non-zero categories, fewer than num_samples = ", num_samples, " without replacement");
    }
  }
  Tensor o = Tensor::empty(Shape{N, num_samples}, DType::i64, probs.device());
  const RandomParams p{gen.seed, gen.offset, num_samples, replacement};
  static const uint16_t id = op_id("multinomial");
  launch(id, KernelKey{probs.dtype()}, probs.device(), {&p2}, {&o}, &p);
  gen.offset += static_cast<uint64_t>(N * num_samples);
  return probs.dim() == 1 ? o.squeeze(0) : o;
}

// Pipeline, per row: (1) penalties over the distinct ids of `history` (ids outside [0, V) and -1 padding are
// ignored): repetition (logit > 0 ? logit / rp : logit * rp), then frequency (- fp * count) and presence
// (- pp); (2) temperature 0 -> argmax (first index on ties; NaN logits count as -inf), no draw;
// (3) logits / temperature; (4) top-k: keeps exactly k (larger logit first, lower index on ties);
// (5) top-p over the softmax of the survivors: in descending order, keeps a token while the mass
// before it is < top_p (so at least one); (6) min-p: keeps p >= min_p * max p; (7) draws with
// u = uniform(seed, offset + row): first surviving token, in ascending id order, whose cumulative
// (unnormalized) mass exceeds u * total.
Tensor sample(const Tensor& logits, const SamplerParams& p, const Tensor& history) {
  check_defined("sample", logits, "logits");
  const Device dev = common_device("sample", {&logits, &history});
  FLAGOS_CHECK(is_float16ish(logits.dtype()), "sample: logits must be f32/f16/bf16, got ", logits.dtype());
  FLAGOS_CHECK(logits.dim() == 2 && logits.size(1) > 0, "sample: logits must be [B, V] with V > 0, got ",
               logits.shape());
  FLAGOS_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, "sample: temperature must be >= 0, got ",
               p.temperature);
  FLAGOS_CHECK(p.top_k >= 0, "sample: top_k must be >= 0, got ", p.top_k);
  FLAGOS_CHECK(p.top_p > 0 && p.top_p <= 1, "sample: top_p must be in (0, 1], got ", p.top_p);
  FLAGOS_CHECK(p.min_p >= 0 && p.min_p <= 1, "sample: min_p must be in [0, 1], got ", p.min_p);
  FLAGOS_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0,
               "sample: repetition_penalty must be > 0, got ", p.repetition_penalty);
  FLAGOS_CHECK(std::isfinite(p.frequency_penalty) && std::isfinite(p.presence_penalty),
               "sample: frequency/presence penalties must be finite, got ", p.frequency_penalty, ", ",
               p.presence_penalty);
  const int64_t B = logits.size(0);
  if (history.defined()) {
    FLAGOS_CHECK(history.dtype() == DType::i32 || history.dtype() == DType::i64, "sample: history must be i32/i64, got ",
                 history.dtype());
    FLAGOS_CHECK(history.dim() == 2 && history.size(0) == B, "sample: history must be [B, L] with B = ", B, ", got ",
                 history.shape());
  }
  Tensor o = Tensor::empty(Shape{B}, DType::i64, dev);
  if (B == 0) return o;
  static const uint16_t id = op_id("sample");
  if (history.defined())
    launch(id, KernelKey{logits.dtype(), history.dtype()}, dev, {&logits, &history}, {&o}, &p);
  else
    launch(id, KernelKey{logits.dtype(), DType::count_}, dev, {&logits}, {&o}, &p);
  return o;
}

}  // namespace flagos::ops
