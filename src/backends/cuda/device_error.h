// Deferred device errors: kernels that check their inputs on the device (so the op layer need not
// copy them to the host) report the first bad value into a per-device record; the CUDA backend
// raises it as a flagos InvalidArgument at the device's next synchronization point (stream, event or
// device sync, a synchronous copy such as Tensor::to_vector), like CUDA's own asynchronous errors
// but recoverable: the record is cleared when raised and the device stays usable. Each kind below
// is one message format (op and meaning of the values a, b, c), written by raise_device_error.
#pragma once
#include <cstdint>

namespace flagos::cuda {

enum class DeviceErrorKind : int {
  none = 0,
  embedding_id = 1,  // a = position in ids, b = the id, c = vocabulary size
};

// In mapped pinned host memory (written by kernels, read by the host after a sync), one per device.
struct DeviceErrorRecord {
  int set;   // 1 once a kernel recorded an error
  int kind;  // DeviceErrorKind
  long long a, b, c;
};

// What a kernel needs to report: the record (a device pointer) and a lock word in device memory.
struct DeviceErrorSlot {
  DeviceErrorRecord* rec = nullptr;
  unsigned* lock = nullptr;
};

// The slot of `device` (created with the device's state; valid for the process).
DeviceErrorSlot device_error_slot(int device);

#ifdef __CUDACC__
// Records (kind, a, b, c) unless an error is already recorded, except that a lower `a` of the same
// kind replaces the recorded one (the first bad position of a launch). Error path only: it spins on
// a lock and writes host memory across the bus.
__device__ inline void report_device_error(DeviceErrorSlot s, DeviceErrorKind kind, long long a, long long b,
                                           long long c) {
  while (atomicCAS(s.lock, 0u, 1u) != 0u) {
  }
  __threadfence();
  volatile DeviceErrorRecord* r = s.rec;
  if (!r->set || (r->kind == static_cast<int>(kind) && a < r->a)) {
    r->kind = static_cast<int>(kind);
    r->a = a;
    r->b = b;
    r->c = c;
    __threadfence_system();
    r->set = 1;
  }
  __threadfence_system();
  atomicExch(s.lock, 0u);
}
#endif

}  // namespace flagos::cuda
