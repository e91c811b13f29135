// The host adaptor: collectives on host-accessible buffers over Open MPI.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm_internal.h"

namespace flagos::comm::host {

// Initializes MPI if needed and describes this process for the rank table ("mpi-world-rank=3 ...").
std::string local_transport(const char* call);
// True when this process was started as part of an MPI job (mpirun, `flagos launch`).
bool in_mpi_job();
// Builds the MPI communicator of the ranks in `table` (order = rank in the new communicator) and an
// adaptor on it. Collective over those ranks only; `tag` tells apart communicators made at the same
// time (the hierarchical mode makes several).
std::unique_ptr<Adaptor> create(int rank, const std::vector<RankInfo>& table, int tag,
                                std::chrono::milliseconds timeout);

}  // namespace flagos::comm::host
