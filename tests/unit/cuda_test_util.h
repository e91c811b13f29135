// Helpers of the unit tests that need the CUDA backend: its id, its first device, and a skip when
// this build has no CUDA backend or the machine has no CUDA device.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>

#include "flagos/backend.h"
#include "flagos/device.h"

namespace flagos::cudatest {

// The CUDA backend's id, or -1 when this build has none.
inline int cuda_id() { return find_backend("cuda"); }
inline Device cuda0() { return Device{static_cast<uint16_t>(cuda_id()), 0}; }

}  // namespace flagos::cudatest

#define SKIP_WITHOUT_CUDA_DEVICE()                                                                        \
  do {                                                                                                    \
    if (::flagos::cudatest::cuda_id() < 0) GTEST_SKIP() << "built without the CUDA backend";               \
    if (::flagos::backend(static_cast<uint16_t>(::flagos::cudatest::cuda_id())).device_count() == 0)       \
      GTEST_SKIP() << "no CUDA device";                                                                   \
  } while (0)
