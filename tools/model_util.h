// Shared by `flagos run` and `flagos bench model`: where the default model lives, and loading a
// model with a progress bar.
#pragma once
#include <optional>
#include <string>

#include "cli.h"
#include "flagos/model.h"

namespace flagos::cli {

// $FLAGOS_CACHE (default ~/.cache/flagos): scripts/fetch_default_model.sh puts the default model
// under <cache>/models/ and records its path in <cache>/models/default.path.
std::string cache_dir();
// -m PATH when given; else the cached default model; else an error saying how to fetch it.
std::string resolve_model_path(const std::optional<std::string>& m);

struct ModelArgs {
  std::string path;
  model::LoadOptions load;
  // --compute-dtype f32|bf16|f16: activations and KV cache. Default: f32 on the CPU; on other
  // devices the weights' 16-bit dtype when they have one (tensor-core GEMMs), else f32.
  std::optional<DType> compute;
};
// The engine's activation dtype for these arguments and the loaded weights.
DType compute_dtype_for(const ModelArgs& m, DType weight_dtype);
// Parses -m/--model, --device, --dtype, --quant, --compute-dtype, -t/--threads (sets FLAGOS_NUM_THREADS before the
// CPU thread pool starts). need_path: resolve -m (or the default model) into `path`.
ModelArgs parse_model_args(Args& a, bool need_path = true);
// load_model with a progress bar on stderr.
model::LoadedModel load_with_progress(const ModelArgs& m);

}  // namespace flagos::cli
