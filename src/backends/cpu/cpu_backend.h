// The CPU backend: host memory, synchronous streams, kernels compiled per ISA.
#pragma once
#include <memory>
#include <string>

#include "flagos/backend.h"

namespace flagos::cpu {

// The ISA whose kernels are in use: "avx512", "avx2" or "generic" (FLAGOS_CPU_ISA overrides).
const std::string& active_isa();
std::unique_ptr<Backend> make_cpu_backend();

}  // namespace flagos::cpu

// Per-ISA kernel sets (src/backends/cpu/kernels/*.cpp compiled once per ISA).
#define FLAGOS_CPU_DECLARE_ISA(isa) \
  namespace flagos::cpu::isa { void register_simd_kernels(KernelRegistry& reg, uint16_t backend_id); }
FLAGOS_CPU_DECLARE_ISA(generic)
FLAGOS_CPU_DECLARE_ISA(avx2)
FLAGOS_CPU_DECLARE_ISA(avx512)
#undef FLAGOS_CPU_DECLARE_ISA

namespace flagos::cpu {
// Kernels compiled once (no SIMD benefit): src/backends/cpu/*.cpp families.
void register_portable_kernels(KernelRegistry& reg, uint16_t backend_id);
}  // namespace flagos::cpu
