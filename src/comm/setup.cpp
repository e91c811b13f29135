// Chooses and builds adaptors at init. Host-accessible devices use the host adaptor (Open MPI, when
// built); CUDA devices use the NCCL adaptor (when built). One cluster: that adaptor over all ranks.
// Several clusters (different adaptors, or a forced split): the hierarchical adaptor over an intra
// adaptor per cluster, a host adaptor between the leaders and a host adaptor over all ranks.
#include "setup.h"

#include <unistd.h>

#include <cstdlib>

#include "flagos/backend.h"
#include "flagos/device.h"
#include "hetero/hetero_adaptor.h"
#include "hetero/topology.h"
#ifdef FLAGOS_COMM_HAVE_MPI
#include "adaptors/host/host_adaptor.h"
#endif
#ifdef FLAGOS_COMM_HAVE_NCCL
#include "adaptors/nccl/nccl_adaptor.h"
#endif

namespace flagos::comm {
namespace {

std::string hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// "cuda" or "cuda:N" -> N (0 for "cuda"), else -1.
int cuda_index(const std::string& s) {
  if (s == "cuda") return 0;
  if (s.rfind("cuda:", 0) != 0 || s.size() == 5) return -1;
  char* end = nullptr;
  const long v = std::strtol(s.c_str() + 5, &end, 10);
  return *end || v < 0 || v > 4096 ? -1 : static_cast<int>(v);
}

#ifndef FLAGOS_COMM_HAVE_MPI
[[noreturn]] void no_mpi(const char* call, const std::string& what) {
  comm_fail(flagosNotSupported, call, ": ", what, " needs the host adaptor, and this build has no MPI "
            "(install libopenmpi-dev and reconfigure)");
}
#endif

std::unique_ptr<Adaptor> host_adaptor(int rank, const std::vector<RankInfo>& table, int tag,
                                      std::chrono::milliseconds timeout, const char* call) {
#ifdef FLAGOS_COMM_HAVE_MPI
  return host::create(rank, table, tag, timeout);
#else
  no_mpi(call, "a communicator over host memory");
#endif
}

std::unique_ptr<Adaptor> device_adaptor(const LocalDevice& dev, int rank, const std::vector<RankInfo>& table,
                                        const std::string& nccl_id, int tag, std::chrono::milliseconds timeout,
                                        const char* call) {
  if (dev.adaptor == "host-mpi") return host_adaptor(rank, table, tag, timeout, call);
#ifdef FLAGOS_COMM_HAVE_NCCL
  if (dev.adaptor == "nccl") return nccl::create(rank, static_cast<int>(table.size()), dev.index, nccl_id, timeout);
#endif
  comm_fail(flagosInternalError, call, ": no adaptor '", dev.adaptor, "' in this build");
}

std::unique_ptr<DeviceOps> ops_for(const LocalDevice& dev) {
#ifdef FLAGOS_COMM_HAVE_NCCL
  if (dev.adaptor == "nccl") return nccl::device_ops(dev.index);
#endif
  return make_host_ops();
}

}  // namespace

LocalDevice resolve_device(const std::string& device, const char* call) {
  LocalDevice out;
  const int cuda = cuda_index(device);
  int backend_found = -1;
  try {
    const Device d = parse_device(device);
    Backend& be = backend_of(d);
    backend_found = 1;
    if (be.host_accessible(d.index)) {
      const DeviceProps props = be.device_props(d.index);
      out.label = to_string(d);
      out.adaptor = "host-mpi";
      out.index = d.index;
      out.caps = props.name + (props.capabilities.empty() ? "" : ", " + props.capabilities);
      return out;
    }
  } catch (const InvalidArgument&) {
    if (cuda < 0) throw;  // neither a registered backend nor CUDA: parse_device's message names the backends
  }
#ifdef FLAGOS_COMM_HAVE_NCCL
  if (cuda >= 0) {
    const int count = nccl::device_count();
    if (cuda >= count)
      comm_fail(flagosInvalidArgument, call, ": device ", device, " does not exist (", count, " CUDA device(s) visible)");
    out.label = "cuda:" + std::to_string(cuda);
    out.adaptor = "nccl";
    out.index = cuda;
    out.caps = nccl::device_caps(cuda);
    return out;
  }
#endif
  comm_fail(flagosNotSupported, call, ": device ", device, backend_found > 0 ? " is not host-accessible and " : " ",
            "has no adaptor in this build (CUDA devices need the NCCL adaptor: configure with the CUDA toolkit and NCCL)");
}

RankInfo describe_rank(const LocalDevice& dev, const char* call) {
  RankInfo r;
  r.device = dev.label;
  r.host = hostname();
  r.pid = ::getpid();
  r.adaptor = dev.adaptor;
  r.caps = dev.caps;
#ifdef FLAGOS_COMM_HAVE_MPI
  if (dev.adaptor == "host-mpi" || host::in_mpi_job()) r.transport = host::local_transport(call);
#else
  if (dev.adaptor == "host-mpi") no_mpi(call, "device " + dev.label);
#endif
  r.layout = hetero::layout_from_env(call);
  return r;
}

std::unique_ptr<Adaptor> make_adaptor(int rank, const std::vector<RankInfo>& table, Bootstrap& bootstrap,
                                      const LocalDevice& dev, uint64_t magic, std::chrono::milliseconds timeout,
                                      const char* call) {
  hetero::Topology topo = hetero::make_topology(table, rank, call);
  const int tag = static_cast<int>(magic & 0x1fff) * 4;  // MPI guarantees tags up to 32767
  // NCCL ids: each NCCL cluster's leader makes one; everyone all-gathers through the bootstrap.
  bool any_nccl = false;
  for (const auto& r : table) any_nccl = any_nccl || r.adaptor == "nccl";
  std::string nccl_id;
  if (any_nccl) {
    std::string mine;
#ifdef FLAGOS_COMM_HAVE_NCCL
    if (dev.adaptor == "nccl" && topo.leader()) mine = nccl::make_id();
#endif
    const auto ids = bootstrap.allgather(mine);
    nccl_id = ids[static_cast<size_t>(topo.members[static_cast<size_t>(topo.cluster())][0])];
  }
  if (topo.clusters() == 1) return device_adaptor(dev, rank, table, nccl_id, tag, timeout, call);

  hetero::Parts parts;
  std::vector<RankInfo> cluster_table, leader_table;
  for (int g : topo.members[static_cast<size_t>(topo.cluster())]) cluster_table.push_back(table[static_cast<size_t>(g)]);
  for (const auto& m : topo.members) leader_table.push_back(table[static_cast<size_t>(m[0])]);
  parts.intra = device_adaptor(dev, topo.local(), cluster_table, nccl_id, tag + 1, timeout, call);
  if (topo.leader()) parts.leaders = host_adaptor(topo.cluster(), leader_table, tag + 2, timeout, call);
  parts.world = host_adaptor(rank, table, tag + 3, timeout, call);
  parts.mem = ops_for(dev);
  return hetero::create(std::move(topo), std::move(parts), hetero::pipeline_from_env(call), timeout);
}

std::unique_ptr<DeviceOps> device_ops_for(const std::string& device) {
  return ops_for(resolve_device(device, "device_ops_for"));
}

}  // namespace flagos::comm
