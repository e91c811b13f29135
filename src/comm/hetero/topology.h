// Clusters of the heterogeneous (hierarchical) mode: which ranks share an adaptor, who leads each
// cluster, and the pipeline settings. All of it comes from the rank table and environment variables
// every rank must set alike (checked at init):
//   FLAGOS_COMM_CLUSTERS=0,0,1,1   a cluster label per rank (forces the split; any labels, any order)
//   FLAGOS_COMM_SPLIT=N            N clusters of consecutive ranks
//   FLAGOS_COMM_PIPELINE=0         one chunk per collective (the unpipelined baseline)
//   FLAGOS_COMM_CHUNK_BYTES=B      bytes per pipeline chunk (default 1 MiB)
//   FLAGOS_COMM_PIPELINE_DEPTH=D   chunks in flight, i.e. staging slots per buffer (default 4, >= 2)
// Without a forced split the ranks are grouped by adaptor (host-mpi, nccl, ...).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "comm_internal.h"

namespace flagos::comm::hetero {

struct PipelineSettings {
  bool pipelined = true;
  size_t chunk_bytes = 1 << 20;
  int depth = 4;
};

// The environment's layout string, exchanged in RankInfo::layout ("clusters=...;split=...;...").
std::string layout_from_env(const char* call);
PipelineSettings pipeline_from_env(const char* call);

struct Topology {
  int rank = 0, nranks = 0;
  std::vector<int> cluster_of;            // per rank: its cluster (numbered by first rank)
  std::vector<int> local_of;              // per rank: index inside its cluster
  std::vector<std::vector<int>> members;  // per cluster: its ranks, ascending; [0] leads
  std::vector<size_t> first;              // per cluster: cluster-order position of its first member

  int clusters() const { return static_cast<int>(members.size()); }
  int cluster() const { return cluster_of[static_cast<size_t>(rank)]; }
  int local() const { return local_of[static_cast<size_t>(rank)]; }
  int cluster_size(int c) const { return static_cast<int>(members[static_cast<size_t>(c)].size()); }
  bool leader() const { return local() == 0; }
  // Position of rank g when ranks are listed cluster by cluster.
  size_t pos(int g) const { return first[static_cast<size_t>(cluster_of[static_cast<size_t>(g)])] + local_of[static_cast<size_t>(g)]; }
};

// Checks that every rank set the same layout, then forms the clusters (forced, or by adaptor).
// Throws CommError (flagosInvalidUsage / flagosInvalidArgument) naming the variable and the ranks.
Topology make_topology(const std::vector<RankInfo>& table, int rank, const char* call);

}  // namespace flagos::comm::hetero
