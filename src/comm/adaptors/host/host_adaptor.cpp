// Host buffers over Open MPI. Every call is issued as a nonblocking MPI operation and completed by
// polling MPI_Testall against the communicator's timeout, so a missing or stuck rank turns into
// flagosTimeout instead of a hang. f16/bf16 reduce through user-defined MPI ops computing in f32;
// avg is a sum divided by nranks afterwards.
#include "adaptors/host/host_adaptor.h"

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "flagos/dtype.h"

namespace flagos::comm::host {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_poisoned{false};  // a communicator timed out: MPI_Finalize could hang
bool g_we_initialized = false;
MPI_Op g_ops16[2][4];  // [bf16][sum, prod, max, min]

std::string mpi_error_text(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized || g_poisoned.load()) return;
  for (auto& row : g_ops16)
    for (auto& op : row) MPI_Op_free(&op);
  MPI_Finalize();
}

template <bool Bf>
inline float load16(uint16_t h) { return Bf ? bf16_to_f32(h) : f16_to_f32(h); }
template <bool Bf>
inline uint16_t store16(float f) { return Bf ? f32_to_bf16(f) : f32_to_f16(f); }

template <bool Bf, int K>
void op16(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = load16<Bf>(a[i]), y = load16<Bf>(b[i]);
    float r;
    if constexpr (K == 0) r = x + y;
    else if constexpr (K == 1) r = x * y;
    else if constexpr (K == 2) r = x > y ? x : y;
    else r = x < y ? x : y;
    b[i] = store16<Bf>(r);
  }
}

void ensure_mpi(const char* call) {
  static std::once_flag once;
  std::call_once(once, [call] {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      if (rc != MPI_SUCCESS) comm_fail(flagosSystemError, call, ": MPI_Init_thread failed: ", mpi_error_text(rc));
      g_we_initialized = true;
      std::atexit(finalize_at_exit);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Op_create(&op16<false, 0>, 1, &g_ops16[0][0]);
    MPI_Op_create(&op16<false, 1>, 1, &g_ops16[0][1]);
    MPI_Op_create(&op16<false, 2>, 1, &g_ops16[0][2]);
    MPI_Op_create(&op16<false, 3>, 1, &g_ops16[0][3]);
    MPI_Op_create(&op16<true, 0>, 1, &g_ops16[1][0]);
    MPI_Op_create(&op16<true, 1>, 1, &g_ops16[1][1]);
    MPI_Op_create(&op16<true, 2>, 1, &g_ops16[1][2]);
    MPI_Op_create(&op16<true, 3>, 1, &g_ops16[1][3]);
  });
}

MPI_Datatype mpi_type(flagosDataType_t t) {
  switch (t) {
    case flagosInt8: return MPI_INT8_T;
    case flagosUint8: return MPI_UINT8_T;
    case flagosInt32: return MPI_INT32_T;
    case flagosUint32: return MPI_UINT32_T;
    case flagosInt64: return MPI_INT64_T;
    case flagosUint64: return MPI_UINT64_T;
    case flagosFloat16:
    case flagosBfloat16: return MPI_UINT16_T;
    case flagosFloat32: return MPI_FLOAT;
    case flagosFloat64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(flagosDataType_t t, flagosRedOp_t op) {
  const int k = op == flagosAvg ? 0 : static_cast<int>(op);
  if (t == flagosFloat16 || t == flagosBfloat16) return g_ops16[t == flagosBfloat16 ? 1 : 0][k];
  static const MPI_Op builtin[4] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN};
  return builtin[k];
}

template <typename T>
void divide_ints(void* p, size_t n, int by) {
  T* v = static_cast<T*>(p);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(v[i] / static_cast<T>(by));
}

// avg = sum / nranks; integers truncate toward zero.
void divide(void* p, size_t n, flagosDataType_t t, int by) {
  switch (t) {
    case flagosInt8: return divide_ints<int8_t>(p, n, by);
    case flagosUint8: return divide_ints<uint8_t>(p, n, by);
    case flagosInt32: return divide_ints<int32_t>(p, n, by);
    case flagosUint32: return divide_ints<uint32_t>(p, n, by);
    case flagosInt64: return divide_ints<int64_t>(p, n, by);
    case flagosUint64: return divide_ints<uint64_t>(p, n, by);
    case flagosFloat32: {
      float* v = static_cast<float*>(p);
      for (size_t i = 0; i < n; ++i) v[i] /= static_cast<float>(by);
      return;
    }
    case flagosFloat64: {
      double* v = static_cast<double*>(p);
      for (size_t i = 0; i < n; ++i) v[i] /= by;
      return;
    }
    case flagosFloat16:
    case flagosBfloat16: {
      uint16_t* v = static_cast<uint16_t*>(p);
      const bool bf = t == flagosBfloat16;
      for (size_t i = 0; i < n; ++i)
        v[i] = bf ? f32_to_bf16(bf16_to_f32(v[i]) / static_cast<float>(by))
                  : f32_to_f16(f16_to_f32(v[i]) / static_cast<float>(by));
      return;
    }
    default: return;
  }
}

class HostAdaptor final : public Adaptor {
 public:
  HostAdaptor(int rank, int nranks, MPI_Comm comm, std::chrono::milliseconds timeout)
      : rank_(rank), nranks_(nranks), comm_(comm), timeout_(timeout) {}
  ~HostAdaptor() override {
    if (comm_ != MPI_COMM_NULL && !broken_) MPI_Comm_free(&comm_);
  }
  const char* name() const override { return "host-mpi"; }

  void run(std::span<const Op> ops) override {
    Pending p;
    for (const Op& op : ops) start(op, p);
    wait(p, ops);
    for (auto& f : p.after) f();
  }

  void agree_max(int64_t* values, int n) override {
    Pending p;
    p.reqs.emplace_back();
    check(MPI_Iallreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_MAX, comm_, &p.reqs.back()),
          "argument check");
    Op op;
    op.coll = Coll::all_reduce;
    wait(p, std::span<const Op>(&op, 1));
  }

  void abort() noexcept override {
    broken_ = true;  // pending requests cannot be cancelled: leave the MPI communicator alone
  }

 private:
  struct Pending {
    std::vector<MPI_Request> reqs;
    std::vector<std::function<void()>> after;
    std::vector<std::vector<char>> temps;
    struct RecvCheck { size_t req; size_t count; int peer; flagosDataType_t dt; };
    std::vector<RecvCheck> recv_checks;
  };

  std::string where(const char* call) const {
    return detail::concat(call, " (rank ", rank_, " of ", nranks_, ")");
  }
  void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) comm_fail(flagosRemoteError, where(call), ": MPI: ", mpi_error_text(rc));
  }
  int to_int(size_t v, const Op& op, const char* what) const {
    if (v > static_cast<size_t>(INT_MAX))
      comm_fail(flagosNotSupported, where(coll_call_name(op.coll)), ": ", what, " ", v,
                " exceeds the host adaptor's limit of INT_MAX elements per call (MPI counts are int)");
    return static_cast<int>(v);
  }
  MPI_Request& next(Pending& p) { return p.reqs.emplace_back(MPI_REQUEST_NULL); }
  char* temp(Pending& p, size_t bytes) { return p.temps.emplace_back(bytes ? bytes : 1).data(); }

  void start(const Op& op, Pending& p) {
    const char* call = coll_call_name(op.coll);
    const MPI_Datatype dt = mpi_type(op.dtype);
    const size_t es = dtype_size(op.dtype);
    const int n = to_int(op.count, op, "count");
    const char* send = static_cast<const char*>(op.send);
    char* recv = static_cast<char*>(op.recv);
    const bool reducing = op.coll == Coll::all_reduce || op.coll == Coll::reduce || op.coll == Coll::reduce_scatter;
    if (reducing) to_int(op.count * static_cast<size_t>(nranks_), op, "count x nranks");
    auto avg_after = [&](void* out, size_t count) {
      if (op.op == flagosAvg && count) {
        const flagosDataType_t t = op.dtype;
        const int by = nranks_;
        p.after.push_back([out, count, t, by] { divide(out, count, t, by); });
      }
    };
    switch (op.coll) {
      case Coll::all_reduce:
        check(MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, n, dt, mpi_op(op.dtype, op.op), comm_, &next(p)),
              call);
        avg_after(recv, op.count);
        break;
      case Coll::broadcast:
        if (rank_ == op.root && send != recv && op.count) std::memcpy(recv, send, op.count * es);
        check(MPI_Ibcast(recv, n, dt, op.root, comm_, &next(p)), call);
        break;
      case Coll::reduce: {
        const bool in_place = rank_ == op.root && send == recv;
        check(MPI_Ireduce(in_place ? MPI_IN_PLACE : send, recv, n, dt, mpi_op(op.dtype, op.op), op.root, comm_,
                          &next(p)),
              call);
        if (rank_ == op.root) avg_after(recv, op.count);
        break;
      }
      case Coll::all_gather: {
        const bool in_place = send == recv + static_cast<size_t>(rank_) * op.count * es;
        check(MPI_Iallgather(in_place ? MPI_IN_PLACE : send, n, dt, recv, n, dt, comm_, &next(p)), call);
        break;
      }
      case Coll::reduce_scatter: {
        // MPI forbids aliasing; NCCL's in-place form (recv inside send) goes through a temporary.
        const size_t bytes = op.count * es;
        const bool overlaps = recv + bytes > send && send + bytes * static_cast<size_t>(nranks_) > recv;
        char* out = overlaps && bytes ? temp(p, bytes) : recv;
        check(MPI_Ireduce_scatter_block(send, out, n, dt, mpi_op(op.dtype, op.op), comm_, &next(p)), call);
        if (out != recv) p.after.push_back([out, recv, bytes] { std::memcpy(recv, out, bytes); });
        avg_after(recv, op.count);
        break;
      }
      case Coll::alltoall: {
        const size_t bytes = op.count * es * static_cast<size_t>(nranks_);
        const char* in = send;
        if (send == recv && bytes) {
          char* t = temp(p, bytes);
          std::memcpy(t, send, bytes);
          in = t;
        }
        check(MPI_Ialltoall(in, n, dt, recv, n, dt, comm_, &next(p)), call);
        break;
      }
      case Coll::alltoallv: {
        auto& ints = p.temps.emplace_back(4 * static_cast<size_t>(nranks_) * sizeof(int));
        int* sc = reinterpret_cast<int*>(ints.data());
        int* sd = sc + nranks_;
        int* rc = sd + nranks_;
        int* rd = rc + nranks_;
        size_t send_extent = 0;
        for (int r = 0; r < nranks_; ++r) {
          const size_t i = static_cast<size_t>(r);
          sc[r] = to_int(op.sendcounts[i], op, "sendcounts[r]");
          sd[r] = to_int(op.sdispls[i], op, "sdispls[r]");
          rc[r] = to_int(op.recvcounts[i], op, "recvcounts[r]");
          rd[r] = to_int(op.rdispls[i], op, "rdispls[r]");
          if (op.sendcounts[i]) send_extent = std::max(send_extent, op.sdispls[i] + op.sendcounts[i]);
        }
        const char* in = send;
        if (send == recv && send_extent) {
          char* t = temp(p, send_extent * es);
          std::memcpy(t, send, send_extent * es);
          in = t;
        }
        check(MPI_Ialltoallv(in, sc, sd, dt, recv, rc, rd, dt, comm_, &next(p)), call);
        break;
      }
      case Coll::gather: {
        const bool in_place = rank_ == op.root && send == recv + static_cast<size_t>(op.root) * op.count * es;
        check(MPI_Igather(in_place ? MPI_IN_PLACE : send, n, dt, recv, n, dt, op.root, comm_, &next(p)), call);
        break;
      }
      case Coll::scatter: {
        const bool in_place = rank_ == op.root && recv == send + static_cast<size_t>(op.root) * op.count * es;
        check(MPI_Iscatter(send, n, dt, in_place ? MPI_IN_PLACE : recv, n, dt, op.root, comm_, &next(p)), call);
        break;
      }
      case Coll::barrier:
        check(MPI_Ibarrier(comm_, &next(p)), call);
        break;
      case Coll::send:
        check(MPI_Isend(send, n, dt, op.root, 0, comm_, &next(p)), call);
        break;
      case Coll::recv:
        p.recv_checks.push_back({p.reqs.size(), op.count, op.root, op.dtype});
        check(MPI_Irecv(recv, n, dt, op.root, 0, comm_, &next(p)), call);
        break;
    }
  }

  std::string describe(std::span<const Op> ops) const {
    if (ops.size() == 1) return where(coll_call_name(ops[0].coll));
    std::string names;
    for (size_t i = 0; i < ops.size() && i < 4; ++i) names += (i ? ", " : "") + std::string(coll_call_name(ops[i].coll));
    if (ops.size() > 4) names += ", ...";
    return detail::concat("group of ", ops.size(), " calls (", names, ") (rank ", rank_, " of ", nranks_, ")");
  }

  void wait(Pending& p, std::span<const Op> ops) {
    if (p.reqs.empty()) return;
    std::vector<MPI_Status> st(p.reqs.size());
    const auto started = Clock::now();
    const auto deadline = started + timeout_;
    for (uint64_t spin = 0;; ++spin) {
      int done = 0;
      const int rc = MPI_Testall(static_cast<int>(p.reqs.size()), p.reqs.data(), &done, st.data());
      if (rc != MPI_SUCCESS) {
        int code = rc;
        if (rc == MPI_ERR_IN_STATUS)
          for (const auto& s : st)
            if (s.MPI_ERROR != MPI_SUCCESS && s.MPI_ERROR != MPI_ERR_PENDING) { code = s.MPI_ERROR; break; }
        broken_ = true;
        int cls = 0;
        MPI_Error_class(code, &cls);
        if (cls == MPI_ERR_TRUNCATE)
          comm_fail(flagosInvalidUsage, describe(ops),
                    ": a rank sent more elements than this rank expects (counts differ between ranks): ",
                    mpi_error_text(code));
        comm_fail(flagosRemoteError, describe(ops), ": MPI: ", mpi_error_text(code));
      }
      if (done) break;
      if ((spin & 63) == 63) {
        if (Clock::now() > deadline) {
          broken_ = true;
          g_poisoned = true;
          comm_fail(flagosTimeout, describe(ops), ": not complete after ", timeout_.count(),
                    " ms (a rank is missing, stuck or called something else; FLAGOS_COMM_TIMEOUT_MS sets the limit)");
        }
        // Nonblocking MPI collectives progress only inside MPI_Test*, so keep calling it; yield so
        // ranks that outnumber the cores can run, and back off only once a call looks stuck.
        if (Clock::now() - started > std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(100));
        else sched_yield();
      }
    }
    for (const auto& c : p.recv_checks) {
      int got = 0;
      MPI_Get_count(&st[c.req], mpi_type(c.dt), &got);
      if (static_cast<size_t>(got) != c.count)
        comm_fail(flagosInvalidUsage, where("flagosRecv"), ": expected ", c.count, " elements of ",
                  dtype_label(c.dt), " from rank ", c.peer, ", received ", got);
    }
  }

  int rank_, nranks_;
  MPI_Comm comm_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
};

int world_rank_of(const RankInfo& r) {
  const auto pos = r.transport.find("mpi-world-rank=");
  if (pos == std::string::npos) return -1;
  return std::atoi(r.transport.c_str() + pos + 15);
}

}  // namespace

std::string local_transport(const char* call) {
  ensure_mpi(call);
  int wr = 0, ws = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &wr);
  MPI_Comm_size(MPI_COMM_WORLD, &ws);
  return detail::concat("mpi-world-rank=", wr, " world-size=", ws);
}

std::unique_ptr<Adaptor> create(int rank, const std::vector<RankInfo>& table, uint64_t magic,
                                std::chrono::milliseconds timeout) {
  const int nranks = static_cast<int>(table.size());
  const std::string call = detail::concat("flagosCommInitRank (rank ", rank, " of ", nranks, ")");
  int ws = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ws);
  std::vector<int> world(table.size());
  for (int r = 0; r < nranks; ++r) {
    const int w = world_rank_of(table[static_cast<size_t>(r)]);
    if (w < 0 || w >= ws)
      comm_fail(flagosInvalidUsage, call, ": rank ", r, " (", table[static_cast<size_t>(r)].host, " pid ",
                table[static_cast<size_t>(r)].pid, ") is not in this process's MPI job (",
                table[static_cast<size_t>(r)].transport, ", MPI world size ", ws,
                "); start the ranks with `flagos launch -n N` or mpirun");
    for (int q = 0; q < r; ++q)
      if (world[static_cast<size_t>(q)] == w)
        comm_fail(flagosInvalidUsage, call, ": ranks ", q, " and ", r, " are the same MPI process (world rank ", w,
                  "); with ", nranks, " ranks the MPI job needs ", nranks,
                  " processes (a singleton MPI process cannot host several ranks)");
    world[static_cast<size_t>(r)] = w;
  }
  MPI_Group wg, g;
  MPI_Comm_group(MPI_COMM_WORLD, &wg);
  MPI_Group_incl(wg, nranks, world.data(), &g);
  MPI_Comm c = MPI_COMM_NULL;
  const int rc = MPI_Comm_create_group(MPI_COMM_WORLD, g, static_cast<int>(magic & 0x7fff), &c);
  MPI_Group_free(&g);
  MPI_Group_free(&wg);
  if (rc != MPI_SUCCESS) comm_fail(flagosRemoteError, call, ": MPI_Comm_create_group: ", mpi_error_text(rc));
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return std::make_unique<HostAdaptor>(rank, nranks, c, timeout);
}

}  // namespace flagos::comm::host
