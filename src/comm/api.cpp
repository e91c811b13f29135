// The C API: validates arguments (backend-neutral), turns calls into Ops for the communicator's
// adaptor, queues them inside groups, and converts every exception into a result code plus the
// thread's last-error message.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bootstrap.h"
#include "comm_internal.h"
#include "setup.h"

namespace flagos::comm {

size_t dtype_size(flagosDataType_t t) {
  static const size_t sizes[flagosNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return static_cast<unsigned>(t) < flagosNumTypes ? sizes[t] : 0;
}
const char* dtype_label(flagosDataType_t t) {
  static const char* names[flagosNumTypes] = {"i8", "u8", "i32", "u32", "i64", "u64", "f16", "f32", "f64", "bf16"};
  return static_cast<unsigned>(t) < flagosNumTypes ? names[t] : "?";
}
const char* op_label(flagosRedOp_t op) {
  static const char* names[flagosNumOps] = {"sum", "prod", "max", "min", "avg"};
  return static_cast<unsigned>(op) < flagosNumOps ? names[op] : "?";
}
const char* coll_call_name(Coll c) {
  static const char* names[] = {"flagosAllReduce", "flagosBroadcast", "flagosReduce",   "flagosAllGather",
                                "flagosReduceScatter", "flagosAlltoAll", "flagosAlltoAllv", "flagosGather",
                                "flagosScatter",   "flagosBarrier",   "flagosSend",     "flagosRecv",
                                "all-gather-v",    "reduce-scatter-v", "gather-v",      "scatter-v"};
  return names[static_cast<int>(c)];
}

Settings resolve_settings(const flagosConfig_t* config) {
  Settings s;
  const char* dev = config && config->device ? config->device : std::getenv("FLAGOS_COMM_DEVICE");
  s.device = dev && *dev ? dev : "cpu";
  int64_t ms = config ? config->timeout_ms : 0;
  if (ms <= 0) {
    const char* e = std::getenv("FLAGOS_COMM_TIMEOUT_MS");
    if (e && *e) {
      char* end = nullptr;
      ms = std::strtoll(e, &end, 10);
      if (*end || ms <= 0)
        comm_fail(flagosInvalidArgument, "flagosCommInitRank: FLAGOS_COMM_TIMEOUT_MS='", e,
                  "' is not a positive number of milliseconds");
    }
  }
  if (ms > 0) s.timeout = std::chrono::milliseconds(ms);
  // -1 (default): env FLAGOS_COMM_CHECK; unset there: the cheap check only. 0: none. 1: full.
  int check = config ? config->check_args : -1;
  if (check < 0) {
    const char* e = std::getenv("FLAGOS_COMM_CHECK");
    check = !e || !*e ? -1 : std::strcmp(e, "0") != 0 ? 1 : 0;
  }
  s.check_args = check > 0;
  s.check_cheap = check != 0;
  return s;
}

namespace {

thread_local std::string t_last_error;
thread_local int t_group_depth = 0;
thread_local std::vector<std::pair<flagosComm*, Op>> t_group;

template <typename F>
flagosResult_t guarded(F&& f) {
  try {
    f();
    return flagosSuccess;
  } catch (const CommError& e) {
    t_last_error = e.what();
    return e.result;
  } catch (const InvalidArgument& e) {
    t_last_error = e.what();
    return flagosInvalidArgument;
  } catch (const NotSupported& e) {
    t_last_error = e.what();
    return flagosNotSupported;
  } catch (const std::bad_alloc&) {
    t_last_error = "out of host memory";
    return flagosSystemError;
  } catch (const std::exception& e) {
    t_last_error = e.what();
    return flagosInternalError;
  } catch (...) {
    t_last_error = "unknown exception";
    return flagosInternalError;
  }
}

std::string where(const char* call, const flagosComm* c) {
  return detail::concat(call, " (rank ", c->rank, " of ", c->nranks, ")");
}

void check_comm(const char* call, const flagosComm* c) {
  if (!c) comm_fail(flagosInvalidArgument, call, ": comm is null");
  if (c->async_error != flagosSuccess)
    comm_fail(c->async_error, where(call, c), ": the communicator is broken by an earlier error: ", c->async_message);
}

// Runs ops now (outside a group) and records a failure on the communicator.
void execute(flagosComm* c, std::span<const Op> ops) {
  try {
    c->adaptor->run(ops);
  } catch (const CommError& e) {
    if (e.result == flagosTimeout || e.result == flagosRemoteError || e.result == flagosInvalidUsage) {
      c->async_error = e.result;
      c->async_message = e.what();
    }
    throw;
  }
}

// Every rank compares (call, dtype, op, count, root) with the others first: always with check_args
// (FLAGOS_COMM_CHECK=1), and by default where the adaptor makes it cheap (one small host all-reduce:
// host and heterogeneous adaptors; NCCL alone would need a device round trip and a sync).
void agree(flagosComm* c, const Op& op) {
  if (op.coll == Coll::send || op.coll == Coll::recv) return;
  if (!c->settings.check_args && !(c->settings.check_cheap && c->adaptor->cheap_agree())) return;
  const char* names[5] = {"call", "datatype", "op", "count", "root"};
  const bool has_op = op.coll == Coll::all_reduce || op.coll == Coll::reduce || op.coll == Coll::reduce_scatter;
  const bool has_root = op.coll == Coll::broadcast || op.coll == Coll::reduce || op.coll == Coll::gather ||
                        op.coll == Coll::scatter;
  const int64_t mine[5] = {static_cast<int64_t>(op.coll), op.dtype, has_op ? op.op : 0,
                           op.coll == Coll::alltoallv || op.coll == Coll::barrier ? 0 : static_cast<int64_t>(op.count),
                           has_root ? op.root : 0};
  int64_t v[10];
  for (int i = 0; i < 5; ++i) { v[i] = mine[i]; v[5 + i] = -mine[i]; }
  try {
    c->adaptor->agree_max(v, 10);
  } catch (const CommError& e) {
    c->async_error = e.result;
    c->async_message = detail::concat(where(coll_call_name(op.coll), c), ": ", e.what());
    comm_fail(e.result, c->async_message);
  }
  for (int i = 0; i < 5; ++i) {
    const int64_t hi = v[i], lo = -v[5 + i];
    if (hi == lo) continue;
    std::string lo_s = std::to_string(lo), hi_s = std::to_string(hi), mine_s = std::to_string(mine[i]);
    if (i == 0) { lo_s = coll_call_name(static_cast<Coll>(lo)); hi_s = coll_call_name(static_cast<Coll>(hi)); mine_s = coll_call_name(op.coll); }
    if (i == 1) { lo_s = dtype_label(static_cast<flagosDataType_t>(lo)); hi_s = dtype_label(static_cast<flagosDataType_t>(hi)); mine_s = dtype_label(op.dtype); }
    if (i == 2) { lo_s = op_label(static_cast<flagosRedOp_t>(lo)); hi_s = op_label(static_cast<flagosRedOp_t>(hi)); mine_s = op_label(op.op); }
    comm_fail(flagosInvalidUsage, where(coll_call_name(op.coll), c), ": ranks disagree on ", names[i], " (this rank: ",
              mine_s, "; across ranks from ", lo_s, " to ", hi_s, ")");
  }
}

flagosResult_t submit(flagosComm* c, Op op) {
  return guarded([&] {
    const char* call = coll_call_name(op.coll);
    check_comm(call, c);
    if (t_group_depth > 0) {
      t_group.emplace_back(c, std::move(op));
      return;
    }
    agree(c, op);
    execute(c, std::span<const Op>(&op, 1));
  });
}

void check_rank(const char* call, const flagosComm* c, int r, const char* what) {
  if (r < 0 || r >= c->nranks)
    comm_fail(flagosInvalidArgument, where(call, c), ": ", what, " ", r, " is out of range (0..", c->nranks - 1, ")");
}
void check_ptr(const char* call, const flagosComm* c, const void* p, size_t count, const char* what) {
  if (!p && count) comm_fail(flagosInvalidArgument, where(call, c), ": ", what, " is null with count ", count);
}

// Datatype and op as integers, before they are stored in an Op (C callers may pass any value; a C++
// enum object holding one outside its range would be undefined behaviour).
flagosResult_t check_kinds(Coll c, int dtype, int op, flagosComm_t comm) {
  return guarded([&] {
    const char* call = coll_call_name(c);
    if (!comm) comm_fail(flagosInvalidArgument, call, ": comm is null");
    if (dtype < 0 || dtype >= flagosNumTypes)
      comm_fail(flagosInvalidArgument, where(call, comm), ": datatype ", dtype, " is not a flagosDataType_t (0..",
                flagosNumTypes - 1, ")");
    if (op < 0 || op >= flagosNumOps)
      comm_fail(flagosInvalidArgument, where(call, comm), ": op ", op, " is not a flagosRedOp_t (0..", flagosNumOps - 1,
                ")");
  });
}

// Buffer and root checks (after check_kinds), then the call is queued or run.
flagosResult_t make(Op op, flagosComm_t comm) {
  flagosResult_t r = guarded([&] {
    const char* call = coll_call_name(op.coll);
    if (!comm) comm_fail(flagosInvalidArgument, call, ": comm is null");
    const size_t n = static_cast<size_t>(comm->nranks);
    const bool is_root = op.root == comm->rank;
    switch (op.coll) {
      case Coll::all_reduce:
      case Coll::alltoall:
      case Coll::reduce_scatter:
      case Coll::all_gather: {
        const size_t big = op.coll == Coll::all_reduce ? op.count : op.count * n;
        check_ptr(call, comm, op.send, op.coll == Coll::all_gather ? op.count : big, "sendbuff");
        check_ptr(call, comm, op.recv, op.coll == Coll::reduce_scatter ? op.count : big, "recvbuff");
        break;
      }
      case Coll::broadcast:
        check_rank(call, comm, op.root, "root");
        if (is_root) check_ptr(call, comm, op.send, op.count, "sendbuff (on the root)");
        check_ptr(call, comm, op.recv, op.count, "recvbuff");
        break;
      case Coll::reduce:
        check_rank(call, comm, op.root, "root");
        check_ptr(call, comm, op.send, op.count, "sendbuff");
        if (is_root) check_ptr(call, comm, op.recv, op.count, "recvbuff (on the root)");
        break;
      case Coll::gather:
        check_rank(call, comm, op.root, "root");
        check_ptr(call, comm, op.send, op.count, "sendbuff");
        if (is_root) check_ptr(call, comm, op.recv, op.count * n, "recvbuff (on the root)");
        break;
      case Coll::scatter:
        check_rank(call, comm, op.root, "root");
        if (is_root) check_ptr(call, comm, op.send, op.count * n, "sendbuff (on the root)");
        check_ptr(call, comm, op.recv, op.count, "recvbuff");
        break;
      case Coll::send:
      case Coll::recv:
        check_rank(call, comm, op.root, "peer");
        check_ptr(call, comm, op.coll == Coll::send ? op.send : op.recv, op.count, "buffer");
        break;
      case Coll::alltoallv:
      case Coll::barrier:
        break;
      case Coll::all_gather_v:
      case Coll::reduce_scatter_v:
      case Coll::gather_v:
      case Coll::scatter_v:
        comm_fail(flagosInternalError, call, ": internal call kind");
    }
  });
  if (r != flagosSuccess) return r;
  return submit(comm, std::move(op));
}

}  // namespace
}  // namespace flagos::comm

using namespace flagos::comm;
using flagos::comm::Op;

extern "C" {

flagosResult_t flagosGetVersion(int* version) {
  if (!version) return flagosInvalidArgument;
  *version = FLAGOS_COMM_VERSION;
  return flagosSuccess;
}

const char* flagosGetErrorString(flagosResult_t r) {
  switch (r) {
    case flagosSuccess: return "no error";
    case flagosUnhandledDeviceError: return "unhandled device error (the backend failed)";
    case flagosSystemError: return "system error (sockets, processes, memory)";
    case flagosInternalError: return "internal error (a bug in flagos or the transport library)";
    case flagosInvalidArgument: return "invalid argument";
    case flagosInvalidUsage: return "invalid usage (wrong call order, or ranks disagree)";
    case flagosRemoteError: return "remote error (another rank failed or went away)";
    case flagosInProgress: return "operation in progress";
    case flagosTimeout: return "timeout (FLAGOS_COMM_TIMEOUT_MS)";
    case flagosNotSupported: return "not supported";
    default: return "unknown result code";
  }
}

const char* flagosGetLastError(flagosComm_t) { return t_last_error.c_str(); }

flagosResult_t flagosCommGetUniqueId(flagosUniqueId* id) {
  return guarded([&] {
    if (!id) comm_fail(flagosInvalidArgument, "flagosCommGetUniqueId: uniqueId is null");
    *id = make_unique_id();
  });
}

flagosResult_t flagosCommInitRankConfig(flagosComm_t* out, int nranks, flagosUniqueId id, int rank,
                                        const flagosConfig_t* config) {
  return guarded([&] {
    const char* call = "flagosCommInitRank";
    if (!out) comm_fail(flagosInvalidArgument, call, ": comm is null");
    *out = nullptr;
    if (nranks < 1) comm_fail(flagosInvalidArgument, call, ": nranks ", nranks, " must be >= 1");
    if (rank < 0 || rank >= nranks)
      comm_fail(flagosInvalidArgument, call, ": rank ", rank, " is out of range (0..", nranks - 1, ")");
    if (config && (config->magic != FLAGOS_CONFIG_MAGIC || config->size != sizeof(flagosConfig_t)))
      comm_fail(flagosInvalidArgument, call, ": config was not set up with FLAGOS_CONFIG_INITIALIZER");
    const IdFields fields = decode_id(id, call);
    auto c = std::make_unique<flagosComm>();
    c->rank = rank;
    c->nranks = nranks;
    c->settings = resolve_settings(config);
    const LocalDevice dev = resolve_device(c->settings.device, call);
    Bootstrap bootstrap(id, nranks, rank, describe_rank(dev, call), c->settings.timeout);
    c->ranks = bootstrap.table();
    c->adaptor = make_adaptor(rank, c->ranks, bootstrap, dev, fields.magic, c->settings.timeout, call);
    *out = c.release();
  });
}

flagosResult_t flagosCommInitRank(flagosComm_t* comm, int nranks, flagosUniqueId id, int rank) {
  return flagosCommInitRankConfig(comm, nranks, id, rank, nullptr);
}

flagosResult_t flagosCommDestroy(flagosComm_t comm) {
  return guarded([&] {
    if (!comm) comm_fail(flagosInvalidArgument, "flagosCommDestroy: comm is null");
    std::unique_ptr<flagosComm> owned(comm);
    if (comm->async_error != flagosSuccess) {
      comm->adaptor->abort();
      return;
    }
    try {
      comm->adaptor->finish(std::chrono::steady_clock::now() + comm->settings.timeout);
    } catch (...) {
      comm->adaptor->abort();
      throw;
    }
  });
}

flagosResult_t flagosCommAbort(flagosComm_t comm) {
  return guarded([&] {
    if (!comm) comm_fail(flagosInvalidArgument, "flagosCommAbort: comm is null");
    std::unique_ptr<flagosComm> owned(comm);
    if (comm->adaptor) comm->adaptor->abort();
  });
}

flagosResult_t flagosCommGetAsyncError(flagosComm_t comm, flagosResult_t* err) {
  if (!comm || !err) return flagosInvalidArgument;
  if (comm->async_error == flagosSuccess && comm->adaptor) {
    std::string msg;
    const flagosResult_t r = comm->adaptor->async_error(&msg);
    if (r != flagosSuccess) comm->async_error = r, comm->async_message = msg;
  }
  *err = comm->async_error;
  return flagosSuccess;
}

flagosResult_t flagosCommCount(const flagosComm_t comm, int* count) {
  if (!comm || !count) return flagosInvalidArgument;
  *count = comm->nranks;
  return flagosSuccess;
}

flagosResult_t flagosCommUserRank(const flagosComm_t comm, int* rank) {
  if (!comm || !rank) return flagosInvalidArgument;
  *rank = comm->rank;
  return flagosSuccess;
}

flagosResult_t flagosCommDevice(const flagosComm_t comm, char* buf, size_t bufsize) {
  if (!comm || !buf || !bufsize) return flagosInvalidArgument;
  std::snprintf(buf, bufsize, "%s", comm->ranks[static_cast<size_t>(comm->rank)].device.c_str());
  return flagosSuccess;
}

flagosResult_t flagosCommRankInfo(const flagosComm_t comm, int rank, char* buf, size_t bufsize) {
  if (!comm || !buf || rank < 0 || rank >= comm->nranks) return flagosInvalidArgument;
  const RankInfo& r = comm->ranks[static_cast<size_t>(rank)];
  const std::string s = flagos::detail::concat("rank ", rank, ": ", r.device, " on host ", r.host, " (pid ", r.pid,
                                               "), adaptor ", r.adaptor, ", ", r.transport, ", caps ", r.caps,
                                               "; communicator mode ", comm->adaptor->name());
  std::snprintf(buf, bufsize, "%s", s.c_str());
  return flagosSuccess;
}

flagosResult_t flagosAllReduce(const void* s, void* r, size_t count, flagosDataType_t t, flagosRedOp_t op,
                               flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::all_reduce, static_cast<int>(t), static_cast<int>(op), comm)) return e;
  Op o{Coll::all_reduce, s, r, count, t, op, 0, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosBroadcast(const void* s, void* r, size_t count, flagosDataType_t t, int root,
                               flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::broadcast, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::broadcast, s, r, count, t, flagosSum, root, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosReduce(const void* s, void* r, size_t count, flagosDataType_t t, flagosRedOp_t op, int root,
                            flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::reduce, static_cast<int>(t), static_cast<int>(op), comm)) return e;
  Op o{Coll::reduce, s, r, count, t, op, root, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosAllGather(const void* s, void* r, size_t count, flagosDataType_t t, flagosComm_t comm,
                               void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::all_gather, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::all_gather, s, r, count, t, flagosSum, 0, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosReduceScatter(const void* s, void* r, size_t count, flagosDataType_t t, flagosRedOp_t op,
                                   flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::reduce_scatter, static_cast<int>(t), static_cast<int>(op), comm)) return e;
  Op o{Coll::reduce_scatter, s, r, count, t, op, 0, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosAlltoAll(const void* s, void* r, size_t count, flagosDataType_t t, flagosComm_t comm,
                              void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::alltoall, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::alltoall, s, r, count, t, flagosSum, 0, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosAlltoAllv(const void* s, const size_t sendcounts[], const size_t sdispls[], void* r,
                               const size_t recvcounts[], const size_t rdispls[], flagosDataType_t t,
                               flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::alltoallv, static_cast<int>(t), flagosSum, comm)) return e;
  flagosResult_t res = guarded([&] {
    const char* call = "flagosAlltoAllv";
    if (!comm) comm_fail(flagosInvalidArgument, call, ": comm is null");
    if (!sendcounts || !sdispls || !recvcounts || !rdispls)
      comm_fail(flagosInvalidArgument, where(call, comm), ": sendcounts, sdispls, recvcounts and rdispls must not be null");
    size_t ns = 0, nr = 0;
    for (int i = 0; i < comm->nranks; ++i) { ns += sendcounts[i]; nr += recvcounts[i]; }
    check_ptr(call, comm, s, ns, "sendbuff");
    check_ptr(call, comm, r, nr, "recvbuff");
  });
  if (res != flagosSuccess) return res;
  const size_t n = static_cast<size_t>(comm->nranks);
  Op o{Coll::alltoallv, s, r, 0, t, flagosSum, 0,
       std::vector<size_t>(sendcounts, sendcounts + n), std::vector<size_t>(sdispls, sdispls + n),
       std::vector<size_t>(recvcounts, recvcounts + n), std::vector<size_t>(rdispls, rdispls + n), stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosGather(const void* s, void* r, size_t count, flagosDataType_t t, int root, flagosComm_t comm,
                            void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::gather, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::gather, s, r, count, t, flagosSum, root, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosScatter(const void* s, void* r, size_t count, flagosDataType_t t, int root, flagosComm_t comm,
                             void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::scatter, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::scatter, s, r, count, t, flagosSum, root, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosBarrier(flagosComm_t comm, void* stream) {
  Op o{Coll::barrier, nullptr, nullptr, 0, flagosUint8, flagosSum, 0, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosSend(const void* s, size_t count, flagosDataType_t t, int peer, flagosComm_t comm,
                          void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::send, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::send, s, nullptr, count, t, flagosSum, peer, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}
flagosResult_t flagosRecv(void* r, size_t count, flagosDataType_t t, int peer, flagosComm_t comm, void* stream) {
  if (const flagosResult_t e = check_kinds(Coll::recv, static_cast<int>(t), static_cast<int>(flagosSum), comm)) return e;
  Op o{Coll::recv, nullptr, r, count, t, flagosSum, peer, {}, {}, {}, {}, stream};
  return make(std::move(o), comm);
}

flagosResult_t flagosGroupStart(void) {
  ++t_group_depth;
  return flagosSuccess;
}

flagosResult_t flagosGroupEnd(void) {
  return guarded([&] {
    if (t_group_depth == 0) comm_fail(flagosInvalidUsage, "flagosGroupEnd: no matching flagosGroupStart");
    if (--t_group_depth > 0) return;
    auto queued = std::move(t_group);
    t_group.clear();
    // One run per communicator, in first-use order.
    std::vector<flagosComm*> comms;
    for (auto& [c, op] : queued)
      if (std::find(comms.begin(), comms.end(), c) == comms.end()) comms.push_back(c);
    for (flagosComm* c : comms) {
      std::vector<Op> ops;
      for (auto& [cc, op] : queued)
        if (cc == c) {
          agree(c, op);
          ops.push_back(std::move(op));
        }
      check_comm("flagosGroupEnd", c);
      execute(c, ops);
    }
  });
}

}  // extern "C"
