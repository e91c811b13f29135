// Internal types of the communication library: errors carrying a result code, the per-call
// description every adaptor executes, the adaptor interface (blocking `run` and asynchronous
// `start`), the memory operations the hierarchical mode needs per kind of buffer, and the
// communicator.
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
  all_reduce, broadcast, reduce, all_gather, reduce_scatter, alltoall, alltoallv, gather, scatter, barrier, send, recv,
  // Internal only (the hierarchical mode's leaders, host adaptor): per-rank counts and displacements,
  // given on every rank, in recvcounts/rdispls (all_gather_v, gather_v), recvcounts
  // (reduce_scatter_v: blocks consecutive in send), sendcounts/sdispls (scatter_v).
  all_gather_v, reduce_scatter_v, gather_v, scatter_v
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
  std::string transport;  // adaptor-specific address, e.g. "mpi-world-rank=3 world-size=5"; "" without MPI
  std::string layout;     // the hierarchical mode's settings from the environment (must agree)
};

// Work issued asynchronously: host transfers in flight, or device work queued on a stream.
class Work {
 public:
  virtual ~Work() = default;
  // Polls; true once complete (host memory written, device work finished). Throws CommError on
  // failure. Never blocks.
  virtual bool done() = 0;
  // The device event marking the end of this work (a cudaEvent_t), or null for host work. Later
  // device work may order itself after it on the device instead of waiting on the host.
  virtual void* device_event() const { return nullptr; }
};

// A transport for one kind of buffer (host memory over MPI, CUDA over NCCL, ...). One folder each
// under adaptors/. Errors are thrown as CommError.
class Adaptor {
 public:
  virtual ~Adaptor() = default;
  virtual const char* name() const = 0;
  // Issues the calls together and returns when they are complete (host) or queued on their streams.
  virtual void run(std::span<const Op> ops) = 0;
  // Issues the calls together without waiting. Device adaptors order them after `after`'s device
  // events; host work in `after` must already be done.
  virtual std::unique_ptr<Work> start(std::span<const Op> ops, std::span<Work* const> after) = 0;
  // Element-wise max of `n` int64 values over all ranks, in place (for argument checks).
  virtual void agree_max(int64_t* values, int n) = 0;
  // True when agree_max is one small host exchange (no device round trip): the argument check then
  // runs by default.
  virtual bool cheap_agree() const { return false; }
  // Drops pending work without talking to other ranks.
  virtual void abort() noexcept = 0;
  // An error found after a call returned (device adaptors), else flagosSuccess.
  virtual flagosResult_t async_error(std::string* message) { return flagosSuccess; }
  // Waits (up to the deadline) for work queued on devices; throws flagosTimeout.
  virtual void finish(std::chrono::steady_clock::time_point deadline) {}
};

// Memory and copies for the buffers of one kind of device, as the hierarchical mode needs them:
// device scratch, host staging (pinned where that matters) and asynchronous copies between them.
class DeviceOps {
 public:
  struct Segment {
    size_t dst = 0, src = 0, bytes = 0;  // byte offsets from the copy's dst and src
  };
  virtual ~DeviceOps() = default;
  virtual bool is_host() const = 0;  // buffers are host memory: copies are plain memcpy
  virtual void* alloc(size_t bytes) = 0;  // device memory; throws CommError
  virtual void release(void* p) noexcept = 0;
  virtual void* alloc_host(size_t bytes) = 0;  // staging for transfers between hosts
  virtual void release_host(void* p) noexcept = 0;
  // Orders the copies of this call after the work already queued on the caller's stream.
  virtual void begin(void* stream) = 0;
  // Copies segments (device -> host when to_host, else host -> device) after `after`.
  virtual std::unique_ptr<Work> copy(void* dst, const void* src, std::span<const Segment> segments, bool to_host,
                                     std::span<Work* const> after) = 0;
  // Makes the caller's stream wait for every copy of this call.
  virtual void end(void* stream) = 0;
  // Host <-> device copies that complete before returning (tests, bench, control values).
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void synchronize(void* stream) = 0;
};

// DeviceOps for host-accessible buffers (copies are memcpy).
std::unique_ptr<DeviceOps> make_host_ops();
// avg = sum / by, in place; integers truncate toward zero, f16/bf16 divide in f32.
void divide_elements(void* p, size_t n, flagosDataType_t t, int by);

struct Settings {
  std::string device;  // "cpu"
  std::chrono::milliseconds timeout{300000};
  bool check_args = false;  // compare every collective's arguments across ranks (any adaptor)
  bool check_cheap = true;  // ... where the adaptor says that costs one small host exchange
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
