// The NCCL adaptor: collectives on CUDA buffers through the NCCL that ships with the CUDA toolkit,
// queued on the caller's stream (a cudaStream_t). Uses the CUDA runtime directly (no flagos backend
// headers), so it works whether or not the runtime's CUDA backend is loaded.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "comm_internal.h"

namespace flagos::comm::nccl {

int device_count();
std::string device_caps(int device);  // "NVIDIA H200, sm_90, 139 GiB, NCCL 2.28.9"
// A fresh NCCL unique id, as bytes for the bootstrap to pass on.
std::string make_id();
// Joins the NCCL communicator of `nranks` ranks identified by `id` (from make_id on its rank 0) on
// CUDA device `device`, which becomes the calling thread's current device. Collective over those
// ranks; flagosTimeout if they do not all join in time.
std::unique_ptr<Adaptor> create(int rank, int nranks, int device, const std::string& id,
                                std::chrono::milliseconds timeout);
// Device scratch, pinned host staging and copies on two copy streams, for the heterogeneous mode.
std::unique_ptr<DeviceOps> device_ops(int device);

// Makes `device` current for the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1, device_;
};

// Throws CommError (flagosUnhandledDeviceError) naming the CUDA call when `err` is not cudaSuccess.
void check_cuda(int err, const char* what);

}  // namespace flagos::comm::nccl
