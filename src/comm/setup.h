// Communicator set-up: which adaptor serves this rank's device, what the rank tells the others, and
// the adaptor (homogeneous, or hierarchical over clusters) built from the all-gathered rank table.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bootstrap.h"
#include "comm_internal.h"

namespace flagos::comm {

struct LocalDevice {
  std::string label;    // "cpu:0", "cuda:1"
  std::string adaptor;  // "host-mpi", "nccl"
  int index = 0;        // device index for device adaptors
  std::string caps;     // device name and capabilities
};

// Resolves a device string ("cpu", "cuda:1") to the adaptor that serves it; throws CommError
// (flagosNotSupported when this build has no adaptor for it, flagosInvalidArgument for a bad name).
LocalDevice resolve_device(const std::string& device, const char* call);
// This rank's entry of the rank table (host, pid, transport address, heterogeneous-mode layout).
RankInfo describe_rank(const LocalDevice& dev, const char* call);
// Builds the communicator's adaptor. Collective over all ranks (uses the bootstrap for NCCL ids).
std::unique_ptr<Adaptor> make_adaptor(int rank, const std::vector<RankInfo>& table, Bootstrap& bootstrap,
                                      const LocalDevice& dev, uint64_t magic, std::chrono::milliseconds timeout,
                                      const char* call);
// Memory operations for buffers of a device string (for the bench and tests); throws like resolve_device.
std::unique_ptr<DeviceOps> device_ops_for(const std::string& device);

}  // namespace flagos::comm
