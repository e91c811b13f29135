// The host adaptor: collectives on host-accessible buffers over Open MPI.
#pragma once
#include <memory>
#include <vector>

#include "comm_internal.h"

namespace flagos::comm::host {

// Initializes MPI if needed and describes this process for the rank table ("mpi-world-rank=3 ...").
std::string local_transport(const char* call);
// Builds the MPI communicator of the ranks in `table` (order = flagos rank). Collective over them.
std::unique_ptr<Adaptor> create(int rank, const std::vector<RankInfo>& table, uint64_t magic,
                                std::chrono::milliseconds timeout);

}  // namespace flagos::comm::host
