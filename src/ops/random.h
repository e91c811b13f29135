// Counter-based random numbers shared by every backend: a draw is a pure function of
// (seed, counter), so any backend (or thread) computing draw #n gets the same value.
// The mixer is splitmix64's finalizer applied twice (seed and counter are mixed separately,
// so nearby seeds and nearby counters give unrelated streams). Header-only, no state.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FLAGOS_RANDOM_FN __host__ __device__ inline
#else
#define FLAGOS_RANDOM_FN inline
#endif

namespace flagos::random {

FLAGOS_RANDOM_FN uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// 64 random bits for draw number `counter` of stream `seed`.
FLAGOS_RANDOM_FN uint64_t bits(uint64_t seed, uint64_t counter) {
  const uint64_t s = mix64(seed + 0x9e3779b97f4a7c15ull);
  return mix64(s ^ (counter * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
}

// Uniform double in [0, 1) with 53 random bits.
FLAGOS_RANDOM_FN double uniform(uint64_t seed, uint64_t counter) {
  return static_cast<double>(bits(seed, counter) >> 11) * 0x1.0p-53;
}

}  // namespace flagos::random
