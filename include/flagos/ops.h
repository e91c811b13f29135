// The operator library. Every op is declared once (src/ops): signature, shape and dtype
// inference with type promotion, validation; then it runs the kernel the device's backend
// registered for the op and dtypes. Results go to a new tensor, or into `out` when given
// (its shape, dtype and device must match what the op produces; it may be an input only
// where noted "in place ok", and may not otherwise overlap an input).
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::ops {

// ---------------------------------------------------------------- creation / copy
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());  // 0-d tensor
void fill(Tensor& t, double value);  // any strides
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32, Device device = Device::cpu());
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::f32, Device device = Device::cpu());
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::f32, Device device = Device::cpu());
// dst <- src: broadcasts src to dst's shape and casts to dst's dtype; any strides (the "copy" op).
void copy(Tensor& dst, const Tensor& src);
Tensor cast(const Tensor& x, DType dtype, const Tensor& out = {});
Tensor contiguous(const Tensor& x);

// ---------------------------------------------------------------- unary (elementwise, in place ok)
// Float ops on integer inputs compute in f32. isnan/isinf/logical_not return bool.
#define FLAGOS_UNARY_OPS(X)                                                                                       \
  X(neg) X(abs) X(sign) X(exp) X(expm1) X(log) X(log1p) X(sqrt) X(rsqrt) X(reciprocal) X(sin) X(cos) X(tanh)  \
  X(sigmoid) X(relu) X(silu) X(gelu) X(gelu_tanh) X(erf) X(floor) X(ceil) X(round) X(isnan) X(isinf)          \
  X(logical_not)
#define FLAGOS_DECLARE_UNARY(name) Tensor name(const Tensor& x, const Tensor& out = {});
FLAGOS_UNARY_OPS(FLAGOS_DECLARE_UNARY)
#undef FLAGOS_DECLARE_UNARY
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0, const Tensor& out = {});

// ---------------------------------------------------------------- binary (broadcasting, promotion, in place ok)
// div of integers is true division (f32). remainder has the sign of the divisor (Python).
// Comparisons and logical ops return bool.
#define FLAGOS_BINARY_OPS(X)                                                                                \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(remainder) X(eq) X(ne) X(lt) X(le) X(gt) X(ge) \
  X(logical_and) X(logical_or)
#define FLAGOS_DECLARE_BINARY(name)                                        \
  Tensor name(const Tensor& a, const Tensor& b, const Tensor& out = {}); \
  Tensor name(const Tensor& a, double b, const Tensor& out = {});
FLAGOS_BINARY_OPS(FLAGOS_DECLARE_BINARY)
#undef FLAGOS_DECLARE_BINARY
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out = {});
// Bounds are optional (nullopt = unbounded on that side).
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi, const Tensor& out = {});
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight, const Tensor& out = {});
Tensor lerp(const Tensor& start, const Tensor& end, double weight, const Tensor& out = {});

// ---------------------------------------------------------------- reductions
// `dims` empty = all dims. Integer/bool sum/prod accumulate in i64; float types in f32 (f64 for f64).
Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false, const Tensor& out = {});
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false, const Tensor& out = {});
Tensor prod(const Tensor& x, const Dims& dims = {}, bool keepdim = false, const Tensor& out = {});
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false, const Tensor& out = {});
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false, const Tensor& out = {});
// max/min over one dim: (values, indices i64), first index on ties; NaN propagates.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor var(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor all(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim, const Tensor& out = {});
Tensor cumprod(const Tensor& x, int64_t dim, const Tensor& out = {});
Tensor softmax(const Tensor& x, int64_t dim = -1, const Tensor& out = {});
Tensor log_softmax(const Tensor& x, int64_t dim = -1, const Tensor& out = {});
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);

// ---------------------------------------------------------------- norms (over the last dim unless noted)
// weight/bias may be undefined. rms_norm: x / sqrt(mean(x^2) + eps) * weight.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6, const Tensor& out = {});
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5,
                  const Tensor& out = {});
// x: [N, C, *]; normalizes each of `groups` groups of C/groups channels.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5,
                  const Tensor& out = {});
// residual += x (in place, in residual's dtype), returns rms_norm(residual, weight, eps).
Tensor add_rms_norm(const Tensor& x, Tensor& residual, const Tensor& weight, double eps = 1e-6,
                    const Tensor& out = {});

// ---------------------------------------------------------------- linear algebra
// torch.matmul semantics: 1-D operands promoted, batch dims broadcast; transposed views are fine.
Tensor matmul(const Tensor& a, const Tensor& b, const Tensor& out = {});
// y = x @ weight^T + bias; weight [out_features, in_features] may be f32/f16/bf16 or any
// block-quantized type (dequantized inside the kernel). x is f32/f16/bf16 [..., in_features].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Tensor& out = {});
// table [vocab, dim] (f32/f16/bf16/quantized), ids i32/i64 of any shape -> [..., dim] in `out_dtype`
// (default: f32 for quantized tables, else the table's dtype). Ids the host can read (CPU) are
// checked before the gather (InvalidArgument naming id, position and vocabulary size). Ids in device
// memory are checked by the kernel on the device, without a round trip: a bad id's output row is
// NaN and the same message is raised as InvalidArgument ("deferred device error ...") at the
// device's next synchronization (stream/event/device sync, any synchronous copy such as to_vector),
// like CUDA's own asynchronous errors but recoverable: the device stays usable.
Tensor embedding(const Tensor& table, const Tensor& ids, std::optional<DType> out_dtype = {});
// embedding without the host check of host-readable ids (the engine, which checked the token ids
// itself): the caller guarantees 0 <= id < vocab. Device kernels still check as above.
Tensor embedding_unchecked(const Tensor& table, const Tensor& ids, std::optional<DType> out_dtype = {});

// ---------------------------------------------------------------- quantization (GGUF block formats)
// x f32 [..., K] with K a multiple of the block size -> block tensor of the same shape.
Tensor quantize(const Tensor& x, DType qtype);
// block tensor -> f32/f16/bf16 tensor of the same shape.
Tensor dequantize(const Tensor& q, DType dtype = DType::f32);

// ---------------------------------------------------------------- LLM ops
// x: [..., T, H, D]; positions: i32/i64 [T] (or the leading shape [..., T]). In place ok.
Tensor rope(const Tensor& x, const Tensor& positions, const RopeParams& p, const Tensor& out = {});
// Inverse frequencies (rotary_dim / 2 values) and the cos/sin multiplier for these params.
std::vector<double> rope_inv_freq(const RopeParams& p);
double rope_mscale(const RopeParams& p);
// x [..., 2n] = [gate | up] -> act(gate) * up  [..., n]
Tensor silu_and_mul(const Tensor& x, const Tensor& out = {});
Tensor gelu_and_mul(const Tensor& x, bool tanh_approx = false, const Tensor& out = {});
// q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv], Hq % Hkv == 0 (GQA/MQA);
// mask (optional) broadcastable to [B, Hq, Tq, Tk]: bool (true = attend) or float (added).
// Returns [B, Hq, Tq, Dv]. Rows with no visible key produce zeros.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                 const Tensor& mask = {}, const Tensor& out = {});
// Paged KV cache (vLLM-style blocks with stable addresses; lengths live on the device so both ops
// can be captured in a CUDA graph: validation reads shapes/dtypes only, never device data).
// kv_cache_store: k_cache, v_cache [num_blocks, Hkv, block_size, D] (f32/f16/bf16), written in place;
// k, v [N, Hkv, D] of the caches' dtype (views welcome, e.g. slices of a fused qkv projection);
// slots i32 [N]: row i goes to block slots[i] / block_size at offset slots[i] % block_size; a negative
// slot skips the row (padding rows); a slot past the cache is a programming error and is skipped too.
void kv_cache_store(const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
                    const Tensor& slots);
// Attention of query rows over a paged KV cache for a batch of B sequences ("items").
// q [N, Hq, D]; q_start i32 [B + 1] (non-decreasing, q_start[0] = 0, q_start[B] <= N): item b owns query
// rows [q_start[b], q_start[b+1]); seq_lens i32 [B]: keys item b holds, its new ones included
// (kv_cache_store ran first); block_table i32 [B, max_blocks]: key p of item b lives in block
// block_table[b][p / block_size] at offset p % block_size. Query row j of item b (n_b rows) sits at
// position qpos = seq_lens[b] - n_b + j and sees key p iff p <= qpos (p.causal; else p < seq_lens[b]) and
// (p.window == 0 || qpos - p < p.window). Hq % Hkv == 0 (GQA). p.scale / p.softcap as in attention;
// p.has_mask must be false. Rows that see no key, rows >= q_start[B] and items with seq_lens 0 give zeros.
// Returns [N, Hq, D] in q's dtype (f32 accumulation). Block ids outside [0, num_blocks) are skipped.
Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                       const Tensor& seq_lens, const Tensor& q_start, const AttentionParams& p,
                       const Tensor& out = {});
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// Returns a copy of x with src scattered at index along dim (reduce "add" accumulates).
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, bool add = false);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// Returns x with alpha * src added at rows `index` along dim (repeated indices accumulate).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);  // views
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor repeat(const Tensor& x, const Dims& repeats);
// pads: (before, after) pairs starting from the LAST dim, as torch.nn.functional.pad; constant value.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::i64);

// Counter-based random numbers: the same (seed, offset) gives the same draws on every backend.
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // advanced by every op that draws
};
// probs [N, C] or [C] (non-negative, need not sum to 1) -> i64 [N, num_samples].
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen);
// Fused sampler. logits [B, V] (f32/f16/bf16); history (optional) i32/i64 [B, L] of previously seen
// token ids, padded with -1, for the penalties. Applies penalties, temperature, top-k, top-p, min-p,
// then draws (greedy when temperature == 0). Returns i64 [B].
Tensor sample(const Tensor& logits, const SamplerParams& p, const Tensor& history = {});

}  // namespace flagos::ops
