// CUDA buffers over NCCL. Calls are issued inside ncclGroupStart/End on the ops' stream; the
// communicator is non-blocking (NCCL's blocking = 0), so init and every enqueue are polled against
// the timeout and a stuck rank at init turns into flagosTimeout. Gather, scatter and all-to-all(v)
// are grouped ncclSend/ncclRecv (the pattern NCCL documents; portable across NCCL versions); the
// rank's own block is a device copy. avg is ncclAvg. Errors abort the NCCL communicator.
#include "adaptors/nccl/nccl_adaptor.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace flagos::comm::nccl {

using Clock = std::chrono::steady_clock;

DeviceGuard::DeviceGuard(int device) : device_(device) {
  cudaGetDevice(&prev_);
  if (prev_ != device_) check_cuda(cudaSetDevice(device_), "cudaSetDevice");
}
DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0 && prev_ != device_) cudaSetDevice(prev_);
}

void check_cuda(int err, const char* what) {
  if (err != cudaSuccess)
    comm_fail(flagosUnhandledDeviceError, what, ": CUDA error ", err, " (",
              cudaGetErrorString(static_cast<cudaError_t>(err)), ")");
}

namespace {

flagosResult_t result_of(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return flagosSuccess;
    case ncclUnhandledCudaError: return flagosUnhandledDeviceError;
    case ncclSystemError: return flagosSystemError;
    case ncclInvalidArgument: return flagosInvalidArgument;
    case ncclInvalidUsage: return flagosInvalidUsage;
    case ncclRemoteError: return flagosRemoteError;
    case ncclInProgress: return flagosInProgress;
    default: return flagosInternalError;
  }
}

ncclDataType_t nccl_type(flagosDataType_t t) {
  switch (t) {
    case flagosInt8: return ncclInt8;
    case flagosUint8: return ncclUint8;
    case flagosInt32: return ncclInt32;
    case flagosUint32: return ncclUint32;
    case flagosInt64: return ncclInt64;
    case flagosUint64: return ncclUint64;
    case flagosFloat16: return ncclFloat16;
    case flagosFloat32: return ncclFloat32;
    case flagosFloat64: return ncclFloat64;
    case flagosBfloat16: return ncclBfloat16;
    default: comm_fail(flagosInvalidArgument, "NCCL adaptor: datatype ", static_cast<int>(t), " has no NCCL type");
  }
}

ncclRedOp_t nccl_op(flagosRedOp_t op) {
  switch (op) {
    case flagosSum: return ncclSum;
    case flagosProd: return ncclProd;
    case flagosMax: return ncclMax;
    case flagosMin: return ncclMin;
    case flagosAvg: return ncclAvg;
    default: comm_fail(flagosInvalidArgument, "NCCL adaptor: op ", static_cast<int>(op), " has no NCCL op");
  }
}

// A pool of completion events, reused across calls (creating an event per call costs a few us).
class EventPool {
 public:
  explicit EventPool(int device) : device_(device) {}
  ~EventPool() {
    DeviceGuard g(device_);
    for (cudaEvent_t e : free_) cudaEventDestroy(e);
  }
  cudaEvent_t get() {
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    return e;
  }
  void put(cudaEvent_t e) { free_.push_back(e); }

 private:
  int device_;
  std::vector<cudaEvent_t> free_;
};

// Events recorded after queued work; complete when the device got there. The events go back to the
// adaptor's pool when the work is dropped.
class NcclWork final : public Work {
 public:
  NcclWork(EventPool* pool, std::vector<cudaEvent_t> events) : pool_(pool), events_(std::move(events)) {}
  ~NcclWork() override {
    for (cudaEvent_t e : events_) pool_->put(e);
  }
  bool done() override {
    for (; next_ < events_.size(); ++next_) {
      const cudaError_t e = cudaEventQuery(events_[next_]);
      if (e == cudaErrorNotReady) return false;
      check_cuda(e, "NCCL work on the stream (cudaEventQuery)");
    }
    return true;
  }
  void* device_event() const override { return events_.empty() ? nullptr : events_.front(); }

 private:
  EventPool* pool_;
  std::vector<cudaEvent_t> events_;
  size_t next_ = 0;
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The communicator is created non-blocking, so init is polled against the timeout (a rank that
// never joins turns into flagosTimeout). Calls on it would be polled too, which costs ~45-50 us per
// call (measured 2026-11-29 on 2 x H200: on a non-blocking communicator each ncclGroupEnd hands the
// launch to a fresh background thread and returns ncclInProgress). So by default a blocking child
// is split off the non-blocking communicator for the calls (FLAGOS_COMM_NCCL_BLOCKING=0 keeps the
// polled path); measured 2026-11-29 on 2 x H200: 8-10 us per small all-reduce (direct NCCL 10-11
// us) and 97-102% of direct NCCL's busbw from 1 MiB to 256 MiB. A watchdog thread then bounds the host calls that may
// wait for other ranks (the split, ncclGroupEnd: connections are set up lazily on first use,
// ncclCommFinalize): one still inside such a call after the timeout gets its communicator aborted
// from the watchdog (ncclCommAbort), so the call returns and the caller gets flagosTimeout; the hot
// path arms it with two atomic compare-exchanges. Its first GPU run (2026-11-29, NCCL 2.28) used
// the child before it existed: the split is a job of the non-blocking parent and ncclCommSplit
// returns before the child handle is written. init() now waits for the parent to settle first.
class NcclAdaptor final : public Adaptor {
 public:
  NcclAdaptor(int rank, int nranks, int device, std::chrono::milliseconds timeout)
      : rank_(rank), nranks_(nranks), device_(device), timeout_(timeout), events_(device) {}

  void init(const ncclUniqueId& id) {
    DeviceGuard g(device_);
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, nranks_, id, rank_, &cfg), "ncclCommInitRankConfig");
    settle(Clock::now() + timeout_, "ncclCommInitRankConfig (waiting for every rank of the NCCL communicator)");
    check_cuda(cudaStreamCreateWithFlags(&control_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check_cuda(cudaMalloc(&scratch_small_, 64 * sizeof(int64_t)), "cudaMalloc");
    control_event_ = events_.get();
    const char* e = std::getenv("FLAGOS_COMM_NCCL_BLOCKING");
    if (e && std::strcmp(e, "0") == 0) {  // the polled non-blocking path (see the class comment)
      coll_ = comm_;
      return;
    }
    watchdog_ = std::thread([this] { watch(); });
    ncclConfig_t bcfg = NCCL_CONFIG_INITIALIZER;
    bcfg.blocking = 1;
    const char* what = "ncclCommSplit (the blocking communicator for the calls)";
    const int64_t t = enter(what);
    // The split runs as a job of the (non-blocking) parent: it may return before the child exists
    // (the child handle is written when the job completes), so wait for the parent to settle.
    ncclComm_t& child = split_child_;  // a member: NCCL may write it after a timeout
    ncclResult_t r = ncclCommSplit(comm_, 0, rank_, &child, &bcfg);
    if (r == ncclSuccess || r == ncclInProgress) {
      ncclResult_t st = ncclInProgress;
      while ((r = ncclCommGetAsyncError(comm_, &st)) == ncclSuccess && st == ncclInProgress) {
        if (busy_.load() == kAborting) break;
        sched_yield();
      }
      if (r == ncclSuccess) r = st;
      if (r == ncclSuccess && !child) r = ncclInternalError;
      if (r == ncclSuccess) {
        while ((r = ncclCommGetAsyncError(child, &st)) == ncclSuccess && st == ncclInProgress) {
          if (busy_.load() == kAborting) break;
          sched_yield();
        }
        if (r == ncclSuccess) r = st;
      }
    }
    leave(t, what);
    fast_ = child;
    if (r != ncclSuccess) {
      // Not fatal: the calls keep to the non-blocking communicator (correct, ~45 us more per call).
      std::fprintf(stderr, "flagos comm: %s: NCCL: %s; the calls use the non-blocking communicator\n",
                   where(what).c_str(), ncclGetErrorString(r));
      if (fast_) ncclCommAbort(fast_);
      fast_ = nullptr;
      stop_watchdog();
      coll_ = comm_;
      return;
    }
    coll_ = fast_;
  }

  ~NcclAdaptor() override {
    DeviceGuard g(device_);
    if (fast_ && !aborted_) {
      // Blocking: ncclCommFinalize waits for queued work, bounded by the watchdog.
      const int64_t t = busy_enter();
      const ncclResult_t r = t ? ncclCommFinalize(fast_) : ncclInternalError;
      const bool fired = t && !busy_leave(t);
      if (!fired && r == ncclSuccess) {
        ncclCommDestroy(fast_);
        fast_ = nullptr;
      } else {
        abort();
      }
    }
    stop_watchdog();
    if (comm_ && !aborted_) {
      // A non-blocking communicator is finalized (polled, bounded by the timeout) before it is freed.
      bool finalized = false;
      const ncclResult_t r = ncclCommFinalize(comm_);
      if (r == ncclSuccess || r == ncclInProgress) {
        const auto deadline = Clock::now() + timeout_;
        ncclResult_t st = ncclInProgress;
        while (st == ncclInProgress && Clock::now() < deadline) {
          if (ncclCommGetAsyncError(comm_, &st) != ncclSuccess) break;
          if (st == ncclInProgress) sched_yield();
        }
        finalized = st == ncclSuccess;
      }
      if (finalized) ncclCommDestroy(comm_);
      else ncclCommAbort(comm_), aborted_ = true;
    }
    for (auto& [s, e] : last_) cudaEventDestroy(e);
    if (control_event_) events_.put(control_event_);
    if (control_) cudaStreamDestroy(control_);
    if (!aborted_) {
      if (scratch_small_) cudaFree(scratch_small_);
      if (scratch_) cudaFree(scratch_);
    }
  }

  const char* name() const override { return "nccl"; }

  void run(std::span<const Op> ops) override {
    DeviceGuard g(device_);
    issue(ops);
    for (const Op& op : ops) mark(static_cast<cudaStream_t>(op.stream));
  }

  std::unique_ptr<Work> start(std::span<const Op> ops, std::span<Work* const> after) override {
    DeviceGuard g(device_);
    std::vector<cudaStream_t> streams;
    for (const Op& op : ops) {
      const auto s = static_cast<cudaStream_t>(op.stream);
      if (std::find(streams.begin(), streams.end(), s) == streams.end()) streams.push_back(s);
    }
    for (cudaStream_t s : streams)
      for (Work* w : after)
        if (w && w->device_event())
          check_cuda(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(w->device_event()), 0), "cudaStreamWaitEvent");
    issue(ops);
    std::vector<cudaEvent_t> events;
    events.reserve(streams.size());
    for (cudaStream_t s : streams) {
      cudaEvent_t e = events_.get();
      events.push_back(e);
      check_cuda(cudaEventRecord(e, s), "cudaEventRecord");
      mark(s);
    }
    return std::make_unique<NcclWork>(&events_, std::move(events));
  }

  void agree_max(int64_t* values, int n) override {
    DeviceGuard g(device_);
    if (n > 63) comm_fail(flagosInternalError, where("argument check"), ": ", n, " values exceed the scratch");
    const auto deadline = Clock::now() + timeout_;
    check_cuda(cudaMemcpyAsync(scratch_small_, values, n * sizeof(int64_t), cudaMemcpyHostToDevice, control_),
               "cudaMemcpyAsync");
    if (!coll_) comm_fail(flagosInvalidUsage, where("argument check"), ": the NCCL communicator was aborted by an earlier error");
    check(ncclGroupStart(), "ncclGroupStart");
    check(ncclAllReduce(scratch_small_, scratch_small_, n, ncclInt64, ncclMax, coll_, control_), "ncclAllReduce");
    end_group("argument check", deadline);
    check_cuda(cudaMemcpyAsync(values, scratch_small_, n * sizeof(int64_t), cudaMemcpyDeviceToHost, control_),
               "cudaMemcpyAsync");
    check_cuda(cudaEventRecord(control_event_, control_), "cudaEventRecord");
    wait_event(control_event_, deadline, "argument check");
  }

  void abort() noexcept override {
    std::lock_guard<std::mutex> lock(abort_mu_);
    abort_locked();
  }

  flagosResult_t async_error(std::string* message) override {
    for (ncclComm_t c : {fast_, comm_}) {
      if (!c || aborted_) continue;
      ncclResult_t st = ncclSuccess;
      if (ncclCommGetAsyncError(c, &st) != ncclSuccess || st == ncclSuccess || st == ncclInProgress) continue;
      if (message) *message = detail::concat(where("NCCL"), ": ", ncclGetErrorString(st), ": ", ncclGetLastError(c));
      return result_of(st);
    }
    return flagosSuccess;
  }

  void finish(Clock::time_point deadline) override {
    DeviceGuard g(device_);
    for (auto& [s, e] : last_) wait_event(e, deadline, "flagosCommDestroy (waiting for queued collectives)");
  }

 private:
  static constexpr int64_t kAborting = -1;

  std::string where(const char* call) const {
    return detail::concat(call, " (rank ", rank_, " of ", nranks_, ", cuda:", device_, ")");
  }

  void check(ncclResult_t r, const char* what) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    fail(r, what);
  }
  [[noreturn]] void fail(ncclResult_t r, const char* what) {
    ncclComm_t c = coll_ ? coll_ : comm_;
    const std::string msg = detail::concat(where(what), ": NCCL: ", ncclGetErrorString(r),
                                           c && !aborted_ ? std::string(": ") + ncclGetLastError(c) : std::string());
    abort();
    comm_fail(result_of(r), msg);
  }

  void abort_locked() noexcept {
    if (!aborted_) {
      DeviceGuard g(device_);
      if (fast_) ncclCommAbort(fast_);
      if (comm_) ncclCommAbort(comm_);
      fast_ = comm_ = coll_ = nullptr;
    }
    aborted_ = true;
  }

  // The watchdog's side of a host call that may block: busy_ holds the call's start (ns) while it
  // runs, 0 when idle, kAborting once the watchdog took over. Returns 0 when the watchdog already
  // fired (the communicator is gone).
  int64_t busy_enter() {
    if (!watchdog_.joinable()) return 1;  // no watchdog (non-blocking mode): nothing to arm
    int64_t t = now_ns(), idle = 0;
    if (t <= 0) t = 1;
    return busy_.compare_exchange_strong(idle, t) ? t : 0;
  }
  // False when the watchdog fired during the call.
  bool busy_leave(int64_t t) {
    if (!watchdog_.joinable()) return true;
    return busy_.compare_exchange_strong(t, 0);
  }
  int64_t enter(const char* what) {
    const int64_t t = busy_enter();
    if (!t) timed_out(what);
    return t;
  }
  void leave(int64_t t, const char* what) {
    if (!busy_leave(t)) timed_out(what);
  }
  [[noreturn]] void timed_out(const char* what) {
    {
      std::lock_guard<std::mutex> lock(abort_mu_);  // the watchdog holds it while aborting
      abort_locked();
    }
    comm_fail(flagosTimeout, where(what), ": not done after ", timeout_.count(),
              " ms (a rank is missing or stuck; FLAGOS_COMM_TIMEOUT_MS sets the limit); the NCCL communicator was "
              "aborted");
  }

  void watch() {
    const auto period = std::clamp<std::chrono::milliseconds>(timeout_ / 8, std::chrono::milliseconds(5),
                                                               std::chrono::milliseconds(200));
    const int64_t limit = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout_).count();
    std::unique_lock<std::mutex> lock(watch_mu_);
    while (!stop_) {
      watch_cv_.wait_for(lock, period);
      if (stop_) break;
      int64_t t = busy_.load();
      if (t > 0 && now_ns() - t > limit && busy_.compare_exchange_strong(t, kAborting)) {
        std::lock_guard<std::mutex> a(abort_mu_);
        abort_locked();  // the blocked call returns with an error; its caller sees kAborting
        break;
      }
    }
  }

  void stop_watchdog() {
    if (!watchdog_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(watch_mu_);
      stop_ = true;
    }
    watch_cv_.notify_all();
    watchdog_.join();
  }

  // ncclGroupEnd: on the blocking communicator under the watchdog, else polled until enqueued.
  void end_group(const char* what, Clock::time_point deadline) {
    if (coll_ == comm_) {
      check(ncclGroupEnd(), what);
      settle(deadline, what);
      return;
    }
    const int64_t t = enter(what);
    const ncclResult_t r = ncclGroupEnd();
    leave(t, what);
    check(r, what);
  }

  // Waits until the non-blocking communicator has enqueued everything asked of it.
  void settle(Clock::time_point deadline, const char* what) {
    for (uint64_t spin = 0;; ++spin) {
      ncclResult_t st = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(comm_, &st);
      if (r != ncclSuccess) fail(r, what);
      if (st == ncclSuccess) return;
      if (st != ncclInProgress) fail(st, what);
      if ((spin & 255) == 255 && Clock::now() > deadline) {
        abort();
        comm_fail(flagosTimeout, where(what), ": not done after ", timeout_.count(),
                  " ms (a rank is missing or stuck; FLAGOS_COMM_TIMEOUT_MS sets the limit)");
      }
      sched_yield();
    }
  }

  void wait_event(cudaEvent_t e, Clock::time_point deadline, const char* what) {
    for (uint64_t spin = 0;; ++spin) {
      const cudaError_t q = cudaEventQuery(e);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) check_cuda(q, what);
      std::string msg;
      if (const flagosResult_t a = async_error(&msg); a != flagosSuccess) {
        abort();
        comm_fail(a, msg);
      }
      if ((spin & 63) == 63 && Clock::now() > deadline) {
        abort();
        comm_fail(flagosTimeout, where(what), ": not complete after ", timeout_.count(),
                  " ms (a rank is missing, stuck or called something else; FLAGOS_COMM_TIMEOUT_MS sets the limit)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // The last scratch element: barriers add into it while argument checks use the first ones.
  int64_t* barrier_slot() const { return static_cast<int64_t*>(scratch_small_) + 63; }

  // Remembers the last work queued on `s` (for finish()).
  void mark(cudaStream_t s) {
    auto [it, fresh] = last_.emplace(s, nullptr);
    if (fresh) check_cuda(cudaEventCreateWithFlags(&it->second, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check_cuda(cudaEventRecord(it->second, s), "cudaEventRecord");
  }

  // Device scratch of at least `bytes`, free of earlier users on `s`.
  char* scratch(size_t bytes, cudaStream_t s) {
    if (scratch_bytes_ < bytes) {
      if (scratch_) {
        check_cuda(cudaStreamSynchronize(scratch_user_), "cudaStreamSynchronize");
        cudaFree(scratch_);
      }
      scratch_ = nullptr;
      check_cuda(cudaMalloc(&scratch_, bytes), "cudaMalloc (in-place all-to-all scratch)");
      scratch_bytes_ = bytes;
    } else if (scratch_user_ != s && scratch_event_) {
      check_cuda(cudaStreamWaitEvent(s, scratch_event_, 0), "cudaStreamWaitEvent");
    }
    scratch_user_ = s;
    return static_cast<char*>(scratch_);
  }

  // Device copies that must precede the group (own blocks, in-place all-to-all inputs); returns
  // the send pointer to use for all-to-all(v).
  const char* prepare(const Op& op, size_t es) {
    const auto s = static_cast<cudaStream_t>(op.stream);
    const char* send = static_cast<const char*>(op.send);
    char* recv = static_cast<char*>(op.recv);
    const size_t n = static_cast<size_t>(nranks_), me = static_cast<size_t>(rank_), C = op.count;
    auto d2d = [&](void* dst, const void* src, size_t bytes) {
      if (bytes && dst != src)
        check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync (own block)");
    };
    switch (op.coll) {
      case Coll::alltoall:
      case Coll::alltoallv: {
        size_t extent = op.coll == Coll::alltoall ? n * C : 0;
        if (op.coll == Coll::alltoallv)
          for (size_t r = 0; r < n; ++r)
            if (op.sendcounts[r]) extent = std::max(extent, op.sdispls[r] + op.sendcounts[r]);
        const char* in = send;
        if (send == recv && extent) {
          char* t = scratch(extent * es, s);
          d2d(t, send, extent * es);
          in = t;
          if (!scratch_event_)
            check_cuda(cudaEventCreateWithFlags(&scratch_event_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
          scratch_pending_ = true;
        }
        if (op.coll == Coll::alltoall) d2d(recv + me * C * es, in + me * C * es, C * es);
        else d2d(recv + op.rdispls[me] * es, in + op.sdispls[me] * es, op.sendcounts[me] * es);
        return in;
      }
      case Coll::gather:
        if (rank_ == op.root) d2d(recv + me * C * es, send, C * es);
        return send;
      case Coll::scatter:
        if (rank_ == op.root) d2d(recv, send + me * C * es, C * es);
        return send;
      default:
        return send;
    }
  }

  // Sends to and receives from this rank itself, paired in order, become device copies.
  void copy_to_self(std::span<const Op> ops) {
    std::vector<const Op*> sends, recvs;
    for (const Op& op : ops)
      if ((op.coll == Coll::send || op.coll == Coll::recv) && op.root == rank_)
        (op.coll == Coll::send ? sends : recvs).push_back(&op);
    if (sends.size() != recvs.size())
      comm_fail(flagosInvalidUsage, where("flagosSend/flagosRecv"), ": ", sends.size(), " send(s) to this rank itself but ",
                recvs.size(), " receive(s) from it in the group");
    for (size_t i = 0; i < sends.size(); ++i) {
      const Op& snd = *sends[i];
      const Op& rcv = *recvs[i];
      if (snd.count != rcv.count || snd.dtype != rcv.dtype)
        comm_fail(flagosInvalidUsage, where("flagosSend/flagosRecv"), ": a send of ", snd.count, " ",
                  dtype_label(snd.dtype), " to this rank itself meets a receive of ", rcv.count, " ",
                  dtype_label(rcv.dtype));
      if (snd.count && snd.send != rcv.recv)
        check_cuda(cudaMemcpyAsync(rcv.recv, snd.send, snd.count * dtype_size(snd.dtype), cudaMemcpyDeviceToDevice,
                                   static_cast<cudaStream_t>(rcv.stream)),
                   "cudaMemcpyAsync (send to self)");
    }
  }

  void issue(std::span<const Op> ops) {
    copy_to_self(ops);
    std::vector<const char*> inputs;
    for (const Op& op : ops) inputs.push_back(prepare(op, dtype_size(op.dtype)));
    const auto deadline = Clock::now() + timeout_;
    if (!coll_) comm_fail(flagosInvalidUsage, where(ops.size() == 1 ? coll_call_name(ops[0].coll) : "group of NCCL calls"),
                          ": the NCCL communicator was aborted by an earlier error");
    check(ncclGroupStart(), "ncclGroupStart");
    try {
      for (size_t i = 0; i < ops.size(); ++i) issue_one(ops[i], inputs[i]);
    } catch (...) {
      ncclGroupEnd();
      throw;
    }
    const char* what = ops.size() == 1 ? coll_call_name(ops[0].coll) : "group of NCCL calls";
    end_group(what, deadline);
    if (scratch_pending_) {
      check_cuda(cudaEventRecord(scratch_event_, scratch_user_), "cudaEventRecord");
      scratch_pending_ = false;
    }
  }

  void issue_one(const Op& op, const char* in) {
    const char* call = coll_call_name(op.coll);
    const auto s = static_cast<cudaStream_t>(op.stream);
    const ncclDataType_t dt = nccl_type(op.dtype);
    const size_t es = dtype_size(op.dtype), n = static_cast<size_t>(nranks_), me = static_cast<size_t>(rank_);
    const size_t C = op.count;
    char* recv = static_cast<char*>(op.recv);
    switch (op.coll) {
      case Coll::all_reduce:
        check(ncclAllReduce(op.send, op.recv, C, dt, nccl_op(op.op), coll_, s), call);
        break;
      case Coll::broadcast:
        check(ncclBroadcast(op.send, op.recv, C, dt, op.root, coll_, s), call);
        break;
      case Coll::reduce:
        check(ncclReduce(op.send, op.recv, C, dt, nccl_op(op.op), op.root, coll_, s), call);
        break;
      case Coll::all_gather:
        check(ncclAllGather(op.send, op.recv, C, dt, coll_, s), call);
        break;
      case Coll::reduce_scatter:
        check(ncclReduceScatter(op.send, op.recv, C, dt, nccl_op(op.op), coll_, s), call);
        break;
      case Coll::alltoall:
        for (size_t p = 0; p < n; ++p)
          if (p != me && C) {
            check(ncclSend(in + p * C * es, C, dt, static_cast<int>(p), coll_, s), call);
            check(ncclRecv(recv + p * C * es, C, dt, static_cast<int>(p), coll_, s), call);
          }
        break;
      case Coll::alltoallv:
        for (size_t p = 0; p < n; ++p) {
          if (p == me) continue;
          if (op.sendcounts[p])
            check(ncclSend(in + op.sdispls[p] * es, op.sendcounts[p], dt, static_cast<int>(p), coll_, s), call);
          if (op.recvcounts[p])
            check(ncclRecv(recv + op.rdispls[p] * es, op.recvcounts[p], dt, static_cast<int>(p), coll_, s), call);
        }
        break;
      case Coll::gather:
        if (!C) break;
        if (rank_ == op.root) {
          for (size_t r = 0; r < n; ++r)
            if (r != me) check(ncclRecv(recv + r * C * es, C, dt, static_cast<int>(r), coll_, s), call);
        } else {
          check(ncclSend(op.send, C, dt, op.root, coll_, s), call);
        }
        break;
      case Coll::scatter:
        if (!C) break;
        if (rank_ == op.root) {
          for (size_t r = 0; r < n; ++r)
            if (r != me) check(ncclSend(in + r * C * es, C, dt, static_cast<int>(r), coll_, s), call);
        } else {
          check(ncclRecv(op.recv, C, dt, op.root, coll_, s), call);
        }
        break;
      case Coll::barrier:
        check(ncclAllReduce(barrier_slot(), barrier_slot(), 1, ncclInt64, ncclSum, coll_, s), call);
        break;
      case Coll::send:
        if (op.root != rank_) check(ncclSend(op.send, C, dt, op.root, coll_, s), call);
        break;
      case Coll::recv:
        if (op.root != rank_) check(ncclRecv(op.recv, C, dt, op.root, coll_, s), call);
        break;
      default:
        comm_fail(flagosInternalError, where(call), ": not an NCCL adaptor call");
    }
  }

  int rank_, nranks_, device_;
  std::chrono::milliseconds timeout_;
  EventPool events_;
  ncclComm_t comm_ = nullptr;  // non-blocking: init (bounded by the timeout)
  ncclComm_t fast_ = nullptr;  // blocking child: the calls
  ncclComm_t coll_ = nullptr;  // the one the calls use
  ncclComm_t split_child_ = nullptr;
  bool aborted_ = false;
  cudaEvent_t control_event_ = nullptr;
  std::atomic<int64_t> busy_{0};
  std::mutex abort_mu_, watch_mu_;
  std::condition_variable watch_cv_;
  bool stop_ = false;
  std::thread watchdog_;
  cudaStream_t control_ = nullptr;
  void* scratch_small_ = nullptr;  // argument checks and barriers
  void* scratch_ = nullptr;        // in-place all-to-all inputs
  size_t scratch_bytes_ = 0;
  cudaStream_t scratch_user_ = nullptr;
  cudaEvent_t scratch_event_ = nullptr;
  bool scratch_pending_ = false;
  std::map<cudaStream_t, cudaEvent_t> last_;
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::string device_caps(int device) {
  cudaDeviceProp p{};
  check_cuda(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  int v = 0;
  ncclGetVersion(&v);
  return detail::concat(p.name, ", sm_", p.major, p.minor, ", ", p.totalGlobalMem >> 30, " GiB, NCCL ", v / 10000, ".",
                        (v / 100) % 100, ".", v % 100);
}

std::string make_id() {
  ncclUniqueId id;
  const ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) comm_fail(result_of(r), "ncclGetUniqueId: ", ncclGetErrorString(r));
  return std::string(id.internal, sizeof(id.internal));
}

std::unique_ptr<Adaptor> create(int rank, int nranks, int device, const std::string& id,
                                std::chrono::milliseconds timeout) {
  ncclUniqueId uid;
  if (id.size() != sizeof(uid.internal))
    comm_fail(flagosInternalError, "NCCL adaptor: the bootstrap passed a ", id.size(), "-byte id, NCCL's has ",
              sizeof(uid.internal));
  std::memcpy(uid.internal, id.data(), sizeof(uid.internal));
  // The communicator's device becomes (and stays) current on this thread, as NCCL programs set it
  // anyway; later calls then switch devices only if the program changed it meanwhile (restoring
  // another device would create a context on it).
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  auto a = std::make_unique<NcclAdaptor>(rank, nranks, device, timeout);
  a->init(uid);
  return a;
}

}  // namespace flagos::comm::nccl
