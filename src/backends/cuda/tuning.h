// Launch configs of the CUDA backend's tunable kernel families, from the shipped per-architecture
// tables (tables/sm_XY.txt, compiled in) or FLAGOS_CUDA_TUNING_TABLE=path, else the built-in
// heuristics. Looked up once per launch; nothing is timed at run time (`flagos tune ops` makes
// the tables). Free of CUDA types: included by .cpp and .cu files.
#pragma once
#include <cstdint>
#include <string>

#include "flagos/tuning.h"

namespace flagos::cuda::tuning {

using flagos::tuning::Config;
using flagos::tuning::Key;

// ---- gemv: the skinny kernel of linear for 16-bit weights and activations of the same dtype
// (M <= 8 rows). Key (m, n, k) = (pow2(M), half-octave(N), half-octave(K)).
// rows: weight rows per warp group (1, 2, 4: compiled variants); ksplit: warps splitting K of
// those rows (1, 2, 4, 8; partial sums combined in shared memory); threads: block size (128, 256).
struct GemvConfig {
  int rows = 2;
  int ksplit = 1;
  int threads = 256;
};
constexpr int kGemvMaxThreads = 256;
GemvConfig gemv_config(int device, int64_t M, int64_t N, int64_t K);
GemvConfig gemv_heuristic();

// ---- softmax: the block path of softmax/log_softmax (rows longer than the register path holds:
// vocabularies). Key (esize, rows, n) = (element bytes, pow2(rows), half-octave(n)).
// segments: blocks each row is split over (a stats pass and a write pass when > 1); threads: block
// size (64 .. 512, a power of two).
struct SoftmaxConfig {
  int segments = 1;
  int threads = 256;
};
SoftmaxConfig softmax_config(int device, int esize, int64_t rows, int64_t n);
SoftmaxConfig softmax_heuristic(int device, int esize, int64_t rows, int64_t n);

// "sm_90" for compute capability 9.0.
std::string arch_name(int device);
// The table launches on `device` use: FLAGOS_CUDA_TUNING_TABLE when set (must be for the device's
// arch), else the shipped one for the arch, else null. Loaded and validated once; throws
// InvalidArgument naming file:line for a bad override file.
const flagos::tuning::Table* active_table(int device);
// The shipped table text for `arch` ("" when none is compiled in).
std::string shipped_table_text(const std::string& arch);

// Registers the families (names, key/config fields, spaces, heuristics) with the runtime.
void register_tunables(uint16_t backend_id);

}  // namespace flagos::cuda::tuning
