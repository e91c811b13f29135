// The heterogeneous (hierarchical) mode: used when the ranks form several clusters (different
// adaptors, or a split forced through the environment; see topology.h). Each collective runs inside
// the clusters with the cluster's adaptor, between the cluster leaders with the host adaptor on host
// staging, and back inside the clusters, in chunks pipelined so that copies, intra-cluster and
// inter-cluster transfers overlap.
#pragma once
#include <chrono>
#include <memory>

#include "comm_internal.h"
#include "hetero/topology.h"

namespace flagos::comm::hetero {

struct Parts {
  std::unique_ptr<Adaptor> intra;    // over this rank's cluster (ranks numbered inside the cluster)
  std::unique_ptr<Adaptor> leaders;  // host adaptor over the cluster leaders (cluster order); null off leaders
  std::unique_ptr<Adaptor> world;    // host adaptor over every rank: control values, send/recv across clusters
  std::unique_ptr<DeviceOps> mem;    // scratch, staging and copies for this rank's buffers
};

std::unique_ptr<Adaptor> create(Topology topo, Parts parts, PipelineSettings settings, std::chrono::milliseconds timeout);

}  // namespace flagos::comm::hetero
