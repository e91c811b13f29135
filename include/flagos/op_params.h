// Parameter structs passed from op declarations (src/ops) to backend kernels. Plain data only.
#pragma once
#include <cstdint>

#include "flagos/dtype.h"

namespace flagos {

struct ScalarParams {  // fill, clamp, pow with scalar, ...
  double a = 0.0;
  double b = 0.0;
};

struct SoftplusParams {
  double beta = 1.0;
  double threshold = 20.0;
};

// Reductions: the op layer permutes the reduced dims innermost and passes a view
// [outer..., reduced...] flattened to [outer, inner] where possible; kernels see
// `in` of shape [outer, inner] (any strides) and `out` of shape [outer].
struct ReduceParams {
  int64_t correction = 1;  // var/std
  double p = 2.0;          // norm
};

struct ScanParams {  // cumsum/cumprod/softmax/log_softmax over the last dim of a [rows, n] view
  int dummy = 0;
};

struct NormParams {
  double eps = 1e-6;
  int64_t groups = 1;  // group_norm
};

enum class RopeLayout : uint8_t { neox, gptj };
enum class RopeScaling : uint8_t { none, linear, ntk, yarn, llama3 };

struct RopeParams {
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;  // <= head_dim; the first rotary_dim features are rotated
  RopeLayout layout = RopeLayout::neox;
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::none;
  double factor = 1.0;                  // linear / ntk / yarn / llama3
  int64_t original_max_position = 0;   // yarn / llama3
  double yarn_beta_fast = 32.0;
  double yarn_beta_slow = 1.0;
  double yarn_attn_factor = 1.0;       // multiplies cos/sin (mscale); yarn default 0.1*ln(factor)+1 if <= 0
  double llama3_low_freq_factor = 1.0;
  double llama3_high_freq_factor = 4.0;
};

struct AttentionParams {
  double scale = 0.0;        // 0: 1/sqrt(head_dim)
  bool causal = false;       // query i (of Tq) sees keys j <= i + (Tk - Tq)
  int64_t window = 0;        // sliding window: also requires j > i + (Tk - Tq) - window; 0 = none
  double softcap = 0.0;      // logits = softcap * tanh(logits / softcap); 0 = off
  bool has_mask = false;     // in[3] holds an additive (float) or boolean (true = keep) mask
};

struct TopkParams {
  int64_t k = 1;
  bool largest = true;
};

struct SortParams {
  bool descending = false;
  bool stable = true;
};

struct IndexParams {  // gather/scatter/index_select/index_add: dim already normalized
  int64_t dim = 0;
  double alpha = 1.0;
  int reduce = 0;  // scatter: 0 = replace, 1 = add
};

struct PadParams {
  double value = 0.0;
};

struct TriParams {
  int64_t diagonal = 0;
  bool upper = false;
};

struct RandomParams {
  uint64_t seed = 0;
  uint64_t offset = 0;  // counter: draws consumed before this call
  int64_t num_samples = 1;
  bool replacement = false;
};

struct SamplerParams {
  float temperature = 1.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;
  uint64_t offset = 0;
};

struct MatmulParams {
  bool trans_a = false;  // kernels get logical views; these say a/b are transposed views of contiguous data
  bool trans_b = false;
};

}  // namespace flagos
