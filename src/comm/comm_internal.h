// Internal types of the communication library: errors carrying a result code, the per-call
// description every adaptor executes, the adaptor interface, and the communicator.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "flagos/comm.h"
#include "flagos/error.h"

namespace flagos::comm {

// Thrown inside the library; api.cpp turns it into its result code and the thread's last error.
class CommError : public Error {
 public:
  CommError(flagosResult_t r, const std::string& msg) : Error(msg), result(r) {}
  flagosResult_t result;
};

template <typename... Args>
[[noreturn]] void comm_fail(flagosResult_t r, Args&&... args) {
  throw CommError(r, detail::concat(std::forward<Args>(args)...));
}

size_t dtype_size(flagosDataType_t t);
const char* dtype_label(flagosDataType_t t);  // "f32", "bf16", ...
const char* op_label(flagosRedOp_t op);       // "sum", ...

enum class Coll : uint8_t {
  all_reduce, broadcast, reduce, all_gather, reduce_scatter, alltoall, alltoallv, gather, scatter, barrier, send, recv
};
const char* coll_call_name(Coll c);  // "flagosAllReduce", ...

// One call, validated by api.cpp. `count` is the per-rank count of the NCCL signature (sendcount
// for gathers, recvcount for scatters, per-peer count for alltoall); `root` is the peer for send/recv.
struct Op {
  Coll coll{};
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  flagosDataType_t dtype = flagosFloat32;
  flagosRedOp_t op = flagosSum;
  int root = 0;
  std::vector<size_t> sendcounts, sdispls, recvcounts, rdispls;  // alltoallv only
  void* stream = nullptr;
};

// What a rank tells the others at init (all-gathered by the bootstrap root).
struct RankInfo {
  std::string device;     // "cpu:0"
  std::string host;
  int64_t pid = 0;
  std::string adaptor;    // "host-mpi"
  std::string caps;       // device name and capabilities
  std::string transport;  // adaptor-specific address, e.g. "mpi-world-rank=3 world-size=5"
};

// A transport for one kind of buffer (host memory over MPI, CUDA over NCCL, ...). One folder each
// under adaptors/. Errors are thrown as CommError.
class Adaptor {
 public:
  virtual ~Adaptor() = default;
  virtual const char* name() const = 0;
  // Issues the calls together and returns when they are complete (host) or queued on their streams.
  virtual void run(std::span<const Op> ops) = 0;
  // Element-wise max of `n` int64 values over all ranks, in place (for argument checks).
  virtual void agree_max(int64_t* values, int n) = 0;
  // Drops pending work without talking to other ranks.
  virtual void abort() noexcept = 0;
};

struct Settings {
  std::string device;  // "cpu"
  std::chrono::milliseconds timeout{300000};
  bool check_args = false;
};
Settings resolve_settings(const flagosConfig_t* config);

}  // namespace flagos::comm

struct flagosComm {
  int rank = 0;
  int nranks = 0;
  flagos::comm::Settings settings;
  std::vector<flagos::comm::RankInfo> ranks;
  std::unique_ptr<flagos::comm::Adaptor> adaptor;
  flagosResult_t async_error = flagosSuccess;
  std::string async_message;
};
