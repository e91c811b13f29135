// The multi-process correctness suite of the communication library, shared by the CPU test
// (tests/comm/test_comm.cpp, host buffers) and the GPU test (tests/comm/gpu, device buffers).
// Every rank builds deterministic inputs for every rank, so each checks its output against a float64
// reference computed locally; one line per failure, counted in g_pass / g_fail.
#pragma once
#include <cstddef>

#include "flagos/comm.h"

namespace comm_test {

// Where a rank's buffers live. Buffers are allocated filled with a poison pattern by the suite.
class Memory {
 public:
  virtual ~Memory() = default;
  virtual bool host() const = 0;  // true: device pointers are host pointers
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void* stream() = 0;  // passed to every call
  virtual void synchronize() = 0;
};

extern int g_rank, g_n, g_pass, g_fail;

// Every collective x dtype x op x size (0, 1, primes, 65537) x in/out of place, send/recv, groups.
void run_suite(flagosComm_t comm, Memory& mem);
// Argument errors, ranks disagreeing (check mode), wrong and stale unique ids. `device` is this
// rank's device string for the extra communicators it makes.
void run_errors(flagosComm_t world, Memory& mem, const char* device);

}  // namespace comm_test
