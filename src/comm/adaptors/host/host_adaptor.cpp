// Host buffers over Open MPI. Every call is issued as nonblocking MPI operations and completed by
// polling MPI_Testall (against the communicator's timeout in run(), by the caller after start()),
// so a missing or stuck rank turns into flagosTimeout instead of a hang. f16/bf16 reduce through
// user-defined MPI ops computing in f32; avg is a sum divided by nranks afterwards. Counts and
// displacements beyond MPI's int are split into pieces (several MPI calls, or point-to-point
// messages for the gathering collectives).
#include "adaptors/host/host_adaptor.h"

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
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

// The requests of one start(): completion is polled with MPI_Testall; afterwards the `after`
// steps (avg division, copies out of temporaries) run and receive counts are checked.
class HostWork final : public Work {
 public:
  using Pool = std::vector<std::vector<char>>;
  HostWork(std::string what, int rank, Pool* pool) : what_(std::move(what)), rank_(rank), pool_(pool) {}
  ~HostWork() override {
    // Requests still in flight cannot be freed safely: MPI_Finalize could hang on them, and MPI may
    // still read the pooled buffers.
    if (!complete_ && !reqs.empty()) {
      g_poisoned = true;
      for (auto& b : pooled_) static_cast<void>(new std::vector<char>(std::move(b)));  // abandoned to MPI
      return;
    }
    for (auto& b : pooled_) pool_->push_back(std::move(b));
  }
  // A buffer of at least `bytes` from the adaptor's pool (its pages are already mapped), returned
  // to the pool when this work ends.
  char* pooled_buffer(size_t bytes) {
    auto best = pool_->end();
    for (auto it = pool_->begin(); it != pool_->end(); ++it)
      if (it->size() >= bytes && (best == pool_->end() || it->size() < best->size())) best = it;
    if (best == pool_->end()) {
      pooled_.emplace_back(bytes);
    } else {
      pooled_.push_back(std::move(*best));
      pool_->erase(best);
    }
    return pooled_.back().data();
  }
  bool done() override {
    if (complete_) return true;
    if (!reqs.empty()) {
      status_.resize(reqs.size());
      int flag = 0;
      const int rc = MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, status_.data());
      if (rc != MPI_SUCCESS) fail_mpi(rc);
      if (!flag) return false;
    }
    complete_ = true;
    check_recv_counts();
    for (auto& f : after) f();
    return true;
  }
  const std::string& what() const { return what_; }

  std::vector<MPI_Request> reqs;
  std::vector<std::function<void()>> after;
  std::vector<std::vector<char>> temps;
  struct RecvCheck {
    size_t first, last;  // request range of one flagosRecv (several when split into pieces)
    size_t count;
    int peer;
    flagosDataType_t dt;
  };
  std::vector<RecvCheck> recv_checks;

 private:
  [[noreturn]] void fail_mpi(int rc) {
    int code = rc;
    if (rc == MPI_ERR_IN_STATUS)
      for (const auto& s : status_)
        if (s.MPI_ERROR != MPI_SUCCESS && s.MPI_ERROR != MPI_ERR_PENDING) {
          code = s.MPI_ERROR;
          break;
        }
    complete_ = true;  // the requests are dead; nothing to wait for
    g_poisoned = true;
    int cls = 0;
    MPI_Error_class(code, &cls);
    if (cls == MPI_ERR_TRUNCATE)
      comm_fail(flagosInvalidUsage, what_,
                ": a rank sent more elements than this rank expects (counts differ between ranks): ",
                mpi_error_text(code));
    comm_fail(flagosRemoteError, what_, ": MPI: ", mpi_error_text(code));
  }
  void check_recv_counts() {
    for (const auto& c : recv_checks) {
      size_t got = 0;
      for (size_t i = c.first; i < c.last; ++i) {
        int k = 0;
        MPI_Get_count(&status_[i], mpi_type(c.dt), &k);
        got += static_cast<size_t>(k);
      }
      if (got != c.count)
        comm_fail(flagosInvalidUsage, "flagosRecv (rank ", rank_, "): expected ", c.count, " elements of ",
                  dtype_label(c.dt), " from rank ", c.peer, ", received ", got);
    }
  }

  std::string what_;
  int rank_;
  Pool* pool_;
  Pool pooled_;
  bool complete_ = false;
  std::vector<MPI_Status> status_;
};

// Largest element count (and displacement) given to one MPI call; bigger calls are split into
// pieces. INT_MAX unless FLAGOS_COMM_MPI_MAX_COUNT lowers it (tests use it to reach the split paths).
size_t max_mpi_count() {
  static const size_t v = [] {
    const char* e = std::getenv("FLAGOS_COMM_MPI_MAX_COUNT");
    if (!e || !*e) return static_cast<size_t>(INT_MAX);
    char* end = nullptr;
    const unsigned long long x = std::strtoull(e, &end, 10);
    if (*end || x == 0 || x > static_cast<unsigned long long>(INT_MAX))
      comm_fail(flagosInvalidArgument, "FLAGOS_COMM_MPI_MAX_COUNT='", e, "' must be a count in 1..", INT_MAX);
    return static_cast<size_t>(x);
  }();
  return v;
}

constexpr size_t kInPlaceCopyBytes = 1 << 20;

class HostAdaptor final : public Adaptor {
 public:
  HostAdaptor(int rank, int nranks, MPI_Comm comm, std::chrono::milliseconds timeout)
      : rank_(rank), nranks_(nranks), comm_(comm), timeout_(timeout), limit_(max_mpi_count()) {}
  ~HostAdaptor() override {
    if (comm_ != MPI_COMM_NULL && !broken_ && !g_poisoned) MPI_Comm_free(&comm_);
  }
  const char* name() const override { return "host-mpi"; }

  void run(std::span<const Op> ops) override {
    auto w = start(ops, {});
    wait(static_cast<HostWork&>(*w));
  }

  std::unique_ptr<Work> start(std::span<const Op> ops, std::span<Work* const>) override {
    auto w = std::make_unique<HostWork>(describe(ops), rank_, &pool_);
    try {
      for (const Op& op : ops) start_one(op, *w);
    } catch (...) {
      broken_ = true;
      throw;
    }
    return w;
  }

  void agree_max(int64_t* values, int n) override {
    auto w = std::make_unique<HostWork>(detail::concat("argument check (rank ", rank_, " of ", nranks_, ")"), rank_, &pool_);
    check(MPI_Iallreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_MAX, comm_, &next(*w)), "argument check");
    wait(*w);
  }

  bool cheap_agree() const override { return true; }
  void abort() noexcept override {
    broken_ = true;  // pending requests cannot be cancelled: leave the MPI communicator alone
  }

 private:
  std::string where(const char* call) const {
    return detail::concat(call, " (rank ", rank_, " of ", nranks_, ")");
  }
  void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) comm_fail(flagosRemoteError, where(call), ": MPI: ", mpi_error_text(rc));
  }
  bool fits(size_t v) const { return v <= limit_; }
  MPI_Request& next(HostWork& w) { return w.reqs.emplace_back(MPI_REQUEST_NULL); }
  char* temp(HostWork& w, size_t bytes) { return w.temps.emplace_back(bytes ? bytes : 1).data(); }
  // Calls f(first, n) for consecutive pieces of at most limit_ elements; one empty piece for 0.
  template <typename F>
  void pieces(size_t count, F&& f) const {
    if (count == 0) return f(size_t{0}, 0);
    for (size_t a = 0; a < count; a += limit_) f(a, static_cast<int>(std::min(limit_, count - a)));
  }

  // Internal point-to-point (tag 1; flagosSend/flagosRecv use tag 0), split into pieces.
  void p2p_send(HostWork& w, const char* p, size_t count, flagosDataType_t t, int peer, const char* call) {
    const size_t es = dtype_size(t);
    pieces(count, [&](size_t a, int n) {
      check(MPI_Isend(p + a * es, n, mpi_type(t), peer, 1, comm_, &next(w)), call);
    });
  }
  void p2p_recv(HostWork& w, char* p, size_t count, flagosDataType_t t, int peer, const char* call) {
    const size_t es = dtype_size(t);
    pieces(count, [&](size_t a, int n) {
      check(MPI_Irecv(p + a * es, n, mpi_type(t), peer, 1, comm_, &next(w)), call);
    });
  }

  void avg_after(HostWork& w, const Op& op, void* out, size_t count) {
    if (op.op == flagosAvg && count) {
      const flagosDataType_t t = op.dtype;
      const int by = nranks_;
      w.after.push_back([out, count, t, by] { divide_elements(out, count, t, by); });
    }
  }

  void start_one(const Op& op, HostWork& w) {
    const char* call = coll_call_name(op.coll);
    const MPI_Datatype dt = mpi_type(op.dtype);
    const size_t es = dtype_size(op.dtype);
    const size_t count = op.count;
    const size_t n = static_cast<size_t>(nranks_), me = static_cast<size_t>(rank_);
    const char* send = static_cast<const char*>(op.send);
    char* recv = static_cast<char*>(op.recv);
    const MPI_Op mop = mpi_op(op.dtype, op.op);
    switch (op.coll) {
      case Coll::all_reduce: {
        // Large in-place all-reduces run out of place from a pooled copy: Open MPI's nonblocking
        // in-place algorithm allocates and faults in a fresh temporary every call (2-4x slower).
        const char* in = send;
        if (send == recv && count * es >= kInPlaceCopyBytes) {
          char* t = w.pooled_buffer(count * es);
          std::memcpy(t, send, count * es);
          in = t;
        }
        pieces(count, [&](size_t a, int k) {
          check(MPI_Iallreduce(in == recv ? MPI_IN_PLACE : in + a * es, recv + a * es, k, dt, mop, comm_, &next(w)), call);
        });
        avg_after(w, op, recv, count);
        break;
      }
      case Coll::broadcast:
        if (rank_ == op.root && send != recv && count) std::memcpy(recv, send, count * es);
        pieces(count, [&](size_t a, int k) { check(MPI_Ibcast(recv + a * es, k, dt, op.root, comm_, &next(w)), call); });
        break;
      case Coll::reduce: {
        const bool in_place = rank_ == op.root && send == recv;
        pieces(count, [&](size_t a, int k) {
          check(MPI_Ireduce(in_place ? MPI_IN_PLACE : send + a * es, recv ? recv + a * es : nullptr, k, dt, mop, op.root,
                            comm_, &next(w)),
                call);
        });
        if (rank_ == op.root) avg_after(w, op, recv, count);
        break;
      }
      case Coll::all_gather: {
        const bool in_place = send == recv + me * count * es;
        if (fits(count)) {
          check(MPI_Iallgather(in_place ? MPI_IN_PLACE : send, static_cast<int>(count), dt, recv,
                               static_cast<int>(count), dt, comm_, &next(w)),
                call);
        } else {  // every rank broadcasts its block, in pieces
          if (!in_place) std::memcpy(recv + me * count * es, send, count * es);
          for (int r = 0; r < nranks_; ++r)
            pieces(count, [&](size_t a, int k) {
              check(MPI_Ibcast(recv + (static_cast<size_t>(r) * count + a) * es, k, dt, r, comm_, &next(w)), call);
            });
        }
        break;
      }
      case Coll::reduce_scatter: {
        // MPI forbids aliasing; NCCL's in-place form (recv inside send) goes through a temporary.
        const size_t bytes = count * es;
        const bool overlaps = recv + bytes > send && send + bytes * n > recv;
        char* out = overlaps && bytes ? temp(w, bytes) : recv;
        if (fits(count) && fits(count * n)) {
          check(MPI_Ireduce_scatter_block(send, out, static_cast<int>(count), dt, mop, comm_, &next(w)), call);
        } else {  // one reduce per block, in pieces
          for (int r = 0; r < nranks_; ++r)
            pieces(count, [&](size_t a, int k) {
              check(MPI_Ireduce(send + (static_cast<size_t>(r) * count + a) * es, r == rank_ ? out + a * es : nullptr, k,
                                dt, mop, r, comm_, &next(w)),
                    call);
            });
        }
        if (out != recv) w.after.push_back([out, recv, bytes] { std::memcpy(recv, out, bytes); });
        avg_after(w, op, recv, count);
        break;
      }
      case Coll::alltoall: {
        const size_t bytes = count * es * n;
        const char* in = send;
        if (send == recv && bytes) {
          char* t = temp(w, bytes);
          std::memcpy(t, send, bytes);
          in = t;
        }
        if (fits(count) && fits(count * n)) {
          check(MPI_Ialltoall(in, static_cast<int>(count), dt, recv, static_cast<int>(count), dt, comm_, &next(w)), call);
        } else {
          for (size_t p = 0; p < n; ++p) {
            if (p == me) {
              std::memcpy(recv + p * count * es, in + p * count * es, count * es);
              continue;
            }
            p2p_recv(w, recv + p * count * es, count, op.dtype, static_cast<int>(p), call);
            p2p_send(w, in + p * count * es, count, op.dtype, static_cast<int>(p), call);
          }
        }
        break;
      }
      case Coll::alltoallv: {
        size_t send_extent = 0;
        bool all_fit = true;
        for (size_t r = 0; r < n; ++r) {
          all_fit = all_fit && fits(op.sendcounts[r]) && fits(op.sdispls[r]) && fits(op.recvcounts[r]) &&
                    fits(op.rdispls[r]);
          if (op.sendcounts[r]) send_extent = std::max(send_extent, op.sdispls[r] + op.sendcounts[r]);
        }
        const char* in = send;
        if (send == recv && send_extent) {
          char* t = temp(w, send_extent * es);
          std::memcpy(t, send, send_extent * es);
          in = t;
        }
        if (all_fit) {
          const int* v = keep_ints(w, ints(op.sendcounts, op.sdispls, op.recvcounts, op.rdispls));
          check(MPI_Ialltoallv(in, v, v + n, dt, recv, v + 2 * n, v + 3 * n, dt, comm_, &next(w)), call);
        } else {
          for (size_t p = 0; p < n; ++p) {
            if (p == me) {
              if (op.sendcounts[p] != op.recvcounts[p])
                comm_fail(flagosInvalidUsage, where(call), ": sendcounts[", p, "]=", op.sendcounts[p],
                          " differs from recvcounts[", p, "]=", op.recvcounts[p], " for this rank's own block");
              std::memcpy(recv + op.rdispls[p] * es, in + op.sdispls[p] * es, op.sendcounts[p] * es);
              continue;
            }
            p2p_recv(w, recv + op.rdispls[p] * es, op.recvcounts[p], op.dtype, static_cast<int>(p), call);
            p2p_send(w, in + op.sdispls[p] * es, op.sendcounts[p], op.dtype, static_cast<int>(p), call);
          }
        }
        break;
      }
      case Coll::gather: {
        const bool in_place = rank_ == op.root && send == recv + static_cast<size_t>(op.root) * count * es;
        if (fits(count) && fits(count * n)) {
          check(MPI_Igather(in_place ? MPI_IN_PLACE : send, static_cast<int>(count), dt, recv, static_cast<int>(count),
                            dt, op.root, comm_, &next(w)),
                call);
        } else if (rank_ == op.root) {
          if (!in_place) std::memcpy(recv + me * count * es, send, count * es);
          for (size_t r = 0; r < n; ++r)
            if (r != me) p2p_recv(w, recv + r * count * es, count, op.dtype, static_cast<int>(r), call);
        } else {
          p2p_send(w, send, count, op.dtype, op.root, call);
        }
        break;
      }
      case Coll::scatter: {
        const bool in_place = rank_ == op.root && recv == send + static_cast<size_t>(op.root) * count * es;
        if (fits(count) && fits(count * n)) {
          check(MPI_Iscatter(send, static_cast<int>(count), dt, in_place ? MPI_IN_PLACE : recv, static_cast<int>(count),
                             dt, op.root, comm_, &next(w)),
                call);
        } else if (rank_ == op.root) {
          if (!in_place) std::memcpy(recv, send + me * count * es, count * es);
          for (size_t r = 0; r < n; ++r)
            if (r != me) p2p_send(w, send + r * count * es, count, op.dtype, static_cast<int>(r), call);
        } else {
          p2p_recv(w, recv, count, op.dtype, op.root, call);
        }
        break;
      }
      case Coll::barrier:
        check(MPI_Ibarrier(comm_, &next(w)), call);
        break;
      case Coll::send:
        pieces(count, [&](size_t a, int k) { check(MPI_Isend(send + a * es, k, dt, op.root, 0, comm_, &next(w)), call); });
        break;
      case Coll::recv: {
        const size_t first = w.reqs.size();
        pieces(count, [&](size_t a, int k) { check(MPI_Irecv(recv + a * es, k, dt, op.root, 0, comm_, &next(w)), call); });
        w.recv_checks.push_back({first, w.reqs.size(), count, op.root, op.dtype});
        break;
      }
      case Coll::all_gather_v: {
        bool all_fit = fits(count);
        for (size_t r = 0; r < n; ++r) all_fit = all_fit && fits(op.recvcounts[r]) && fits(op.rdispls[r]);
        char* mine = recv + op.rdispls[me] * es;
        if (all_fit) {
          const int* v_data = keep_ints(w, ints(op.recvcounts, op.rdispls));
          check(MPI_Iallgatherv(send == mine ? MPI_IN_PLACE : send, static_cast<int>(count), dt, recv, v_data,
                                v_data + n, dt, comm_, &next(w)),
                call);
        } else {
          if (send != mine && count) std::memcpy(mine, send, count * es);
          for (size_t r = 0; r < n; ++r)
            pieces(op.recvcounts[r], [&](size_t a, int k) {
              check(MPI_Ibcast(recv + (op.rdispls[r] + a) * es, k, dt, static_cast<int>(r), comm_, &next(w)), call);
            });
        }
        break;
      }
      case Coll::reduce_scatter_v: {
        size_t total = 0;
        bool all_fit = true;
        for (size_t r = 0; r < n; ++r) total += op.recvcounts[r], all_fit = all_fit && fits(op.recvcounts[r]);
        if (all_fit && fits(total)) {
          check(MPI_Ireduce_scatter(send, recv, keep_ints(w, ints(op.recvcounts)), dt, mop, comm_, &next(w)), call);
        } else {
          size_t off = 0;
          for (size_t r = 0; r < n; ++r) {
            pieces(op.recvcounts[r], [&](size_t a, int k) {
              check(MPI_Ireduce(send + (off + a) * es, r == me ? recv + a * es : nullptr, k, dt, mop, static_cast<int>(r),
                                comm_, &next(w)),
                    call);
            });
            off += op.recvcounts[r];
          }
        }
        avg_after(w, op, recv, op.recvcounts[me]);
        break;
      }
      case Coll::gather_v: {
        const bool root = rank_ == op.root;
        bool all_fit = true;  // the counts are given on every rank, so every rank decides alike
        for (size_t r = 0; r < n; ++r) all_fit = all_fit && fits(op.recvcounts[r]) && fits(op.rdispls[r]);
        if (all_fit) {
          const int* v_data = nullptr;
          if (root) v_data = keep_ints(w, ints(op.recvcounts, op.rdispls));
          const bool in_place = root && send == recv + op.rdispls[me] * es;
          check(MPI_Igatherv(in_place ? MPI_IN_PLACE : send, static_cast<int>(count), dt, recv, v_data,
                             root ? v_data + n : nullptr, dt, op.root, comm_, &next(w)),
                call);
        } else if (root) {
          if (send != recv + op.rdispls[me] * es && count) std::memcpy(recv + op.rdispls[me] * es, send, count * es);
          for (size_t r = 0; r < n; ++r)
            if (r != me) p2p_recv(w, recv + op.rdispls[r] * es, op.recvcounts[r], op.dtype, static_cast<int>(r), call);
        } else {
          p2p_send(w, send, count, op.dtype, op.root, call);
        }
        break;
      }
      case Coll::scatter_v: {
        const bool root = rank_ == op.root;
        bool all_fit = true;  // the counts are given on every rank, so every rank decides alike
        for (size_t r = 0; r < n; ++r) all_fit = all_fit && fits(op.sendcounts[r]) && fits(op.sdispls[r]);
        if (all_fit) {
          const int* v_data = nullptr;
          if (root) v_data = keep_ints(w, ints(op.sendcounts, op.sdispls));
          const bool in_place = root && recv == send + op.sdispls[me] * es;
          check(MPI_Iscatterv(send, v_data, root ? v_data + n : nullptr, dt, in_place ? MPI_IN_PLACE : recv,
                              static_cast<int>(count), dt, op.root, comm_, &next(w)),
                call);
        } else if (root) {
          if (recv != send + op.sdispls[me] * es && count) std::memcpy(recv, send + op.sdispls[me] * es, count * es);
          for (size_t r = 0; r < n; ++r)
            if (r != me) p2p_send(w, send + op.sdispls[r] * es, op.sendcounts[r], op.dtype, static_cast<int>(r), call);
        } else {
          p2p_recv(w, recv, count, op.dtype, op.root, call);
        }
        break;
      }
    }
  }

  template <typename... V>
  static std::vector<int> ints(const V&... vs) {
    std::vector<int> out;
    (void)std::initializer_list<int>{(out.insert(out.end(), vs.begin(), vs.end()), 0)...};
    return out;
  }
  // MPI reads count arrays until the request completes: the work keeps them.
  static const int* keep_ints(HostWork& w, const std::vector<int>& v) {
    auto& t = w.temps.emplace_back(v.size() * sizeof(int) + 1);
    std::memcpy(t.data(), v.data(), v.size() * sizeof(int));
    return reinterpret_cast<const int*>(t.data());
  }

  std::string describe(std::span<const Op> ops) const {
    if (ops.size() == 1) return where(coll_call_name(ops[0].coll));
    std::string names;
    for (size_t i = 0; i < ops.size() && i < 4; ++i) names += (i ? ", " : "") + std::string(coll_call_name(ops[i].coll));
    if (ops.size() > 4) names += ", ...";
    return detail::concat("group of ", ops.size(), " calls (", names, ") (rank ", rank_, " of ", nranks_, ")");
  }

  void wait(HostWork& w) {
    const auto started = Clock::now();
    const auto deadline = started + timeout_;
    try {
      for (uint64_t spin = 0; !w.done(); ++spin) {
        if ((spin & 63) != 63) continue;
        if (Clock::now() > deadline) {
          broken_ = true;
          g_poisoned = true;
          comm_fail(flagosTimeout, w.what(), ": not complete after ", timeout_.count(),
                    " ms (a rank is missing, stuck or called something else; FLAGOS_COMM_TIMEOUT_MS sets the limit)");
        }
        // Nonblocking MPI collectives progress only inside MPI_Test*, so keep calling it; yield so
        // ranks that outnumber the cores can run, and back off only once a call looks stuck.
        if (Clock::now() - started > std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(100));
        else sched_yield();
      }
    } catch (const CommError&) {
      broken_ = true;
      throw;
    }
  }

  int rank_, nranks_;
  MPI_Comm comm_;
  std::chrono::milliseconds timeout_;
  size_t limit_;
  bool broken_ = false;
  HostWork::Pool pool_;  // buffers of finished works, reused
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

bool in_mpi_job() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

std::unique_ptr<Adaptor> create(int rank, const std::vector<RankInfo>& table, int tag,
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
  const int rc = MPI_Comm_create_group(MPI_COMM_WORLD, g, tag, &c);
  MPI_Group_free(&g);
  MPI_Group_free(&wg);
  if (rc != MPI_SUCCESS) comm_fail(flagosRemoteError, call, ": MPI_Comm_create_group: ", mpi_error_text(rc));
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return std::make_unique<HostAdaptor>(rank, nranks, c, timeout);
}

}  // namespace flagos::comm::host
