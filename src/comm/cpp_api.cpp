// The C++ layer (include/flagos/comm.hpp): checks tensors, maps dtypes and ops, takes the stream of
// the tensors' device, calls the C API and turns its result codes into exceptions.
#include "flagos/comm.hpp"

#include "flagos/device.h"

namespace flagos {
namespace {

void throw_result(flagosResult_t r) {
  if (r == flagosSuccess) return;
  const std::string msg = flagosGetLastError(nullptr);
  if (r == flagosInvalidArgument) throw InvalidArgument(msg);
  if (r == flagosNotSupported) throw NotSupported(msg);
  throw CommFailure(r, msg);
}

struct Args {
  const char* call;
  const Communicator& c;
};

// A tensor the library can use: defined, contiguous, on the communicator's device.
void check(const Args& a, const Tensor& t, const char* name) {
  FLAGOS_CHECK(t.defined(), a.call, " (rank ", a.c.rank(), "): ", name, " is undefined");
  FLAGOS_CHECK(t.is_contiguous(), a.call, " (rank ", a.c.rank(), "): ", name, " must be contiguous, got ", t.describe());
  FLAGOS_CHECK(t.device() == a.c.device(), a.call, " (rank ", a.c.rank(), "): ", name, " is on ", to_string(t.device()),
               ", the communicator on ", to_string(a.c.device()));
  comm_dtype(t.dtype());
}

void same_dtype(const Args& a, const Tensor& x, const Tensor& y) {
  FLAGOS_CHECK(x.dtype() == y.dtype(), a.call, " (rank ", a.c.rank(), "): dtypes differ: ", x.describe(), " and ",
               y.describe());
}

void numel_is(const Args& a, const Tensor& t, const char* name, int64_t want, const char* rule) {
  FLAGOS_CHECK(t.numel() == want, a.call, " (rank ", a.c.rank(), "): ", name, " has ", t.numel(), " elements, ",
               rule, " needs ", want);
}

void* stream_of(const Tensor& t) { return current_stream(t.device()).handle(); }
flagosRedOp_t red(ReduceOp op) { return static_cast<flagosRedOp_t>(op); }
size_t count(const Tensor& t) { return static_cast<size_t>(t.numel()); }

}  // namespace

flagosDataType_t comm_dtype(DType t) {
  switch (t) {
    case DType::f32: return flagosFloat32;
    case DType::f64: return flagosFloat64;
    case DType::f16: return flagosFloat16;
    case DType::bf16: return flagosBfloat16;
    case DType::i8: return flagosInt8;
    case DType::u8: return flagosUint8;
    case DType::i32: return flagosInt32;
    case DType::i64: return flagosInt64;
    default: break;
  }
  fail("flagos::Communicator: dtype ", dtype_name(t),
       " has no communication type (supported: f32 f64 f16 bf16 i8 u8 i32 i64)");
}

flagosUniqueId Communicator::unique_id() {
  flagosUniqueId id;
  throw_result(flagosCommGetUniqueId(&id));
  return id;
}

Communicator::Communicator(int nranks, const flagosUniqueId& id, int rank, const std::string& device,
                           int64_t timeout_ms) {
  flagosConfig_t cfg = FLAGOS_CONFIG_INITIALIZER;
  if (!device.empty()) cfg.device = device.c_str();
  cfg.timeout_ms = timeout_ms;
  throw_result(flagosCommInitRankConfig(&comm_, nranks, id, rank, &cfg));
  char buf[64];
  try {
    throw_result(flagosCommDevice(comm_, buf, sizeof(buf)));
    device_ = parse_device(buf);  // the runtime must know the backend of the tensors
  } catch (...) {
    flagosCommAbort(comm_);
    comm_ = nullptr;
    throw;
  }
}

Communicator::~Communicator() {
  if (comm_) flagosCommDestroy(comm_);
}

int Communicator::rank() const {
  int r = 0;
  throw_result(flagosCommUserRank(comm_, &r));
  return r;
}

int Communicator::size() const {
  int n = 0;
  throw_result(flagosCommCount(comm_, &n));
  return n;
}

void Communicator::abort() {
  flagosComm_t c = comm_;
  comm_ = nullptr;
  throw_result(flagosCommAbort(c));
}

void Communicator::all_reduce(Tensor& t, ReduceOp op) { all_reduce(t, t, op); }

void Communicator::all_reduce(const Tensor& in, Tensor& out, ReduceOp op) {
  const Args a{"Communicator::all_reduce", *this};
  check(a, in, "in");
  check(a, out, "out");
  same_dtype(a, in, out);
  numel_is(a, out, "out", in.numel(), "all_reduce");
  throw_result(flagosAllReduce(in.data(), out.data(), count(in), comm_dtype(in.dtype()), red(op), comm_, stream_of(in)));
}

void Communicator::broadcast(Tensor& t, int root) {
  const Args a{"Communicator::broadcast", *this};
  check(a, t, "t");
  throw_result(flagosBroadcast(t.data(), t.data(), count(t), comm_dtype(t.dtype()), root, comm_, stream_of(t)));
}

void Communicator::reduce(const Tensor& in, Tensor& out, ReduceOp op, int root) {
  const Args a{"Communicator::reduce", *this};
  check(a, in, "in");
  const bool is_root = rank() == root;
  if (is_root) {
    check(a, out, "out");
    same_dtype(a, in, out);
    numel_is(a, out, "out", in.numel(), "reduce");
  }
  throw_result(flagosReduce(in.data(), is_root ? out.data() : nullptr, count(in), comm_dtype(in.dtype()), red(op), root,
                            comm_, stream_of(in)));
}

void Communicator::all_gather(const Tensor& in, Tensor& out) {
  const Args a{"Communicator::all_gather", *this};
  check(a, in, "in");
  check(a, out, "out");
  same_dtype(a, in, out);
  numel_is(a, out, "out", in.numel() * size(), "all_gather (size() x in.numel())");
  throw_result(flagosAllGather(in.data(), out.data(), count(in), comm_dtype(in.dtype()), comm_, stream_of(in)));
}

void Communicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  const Args a{"Communicator::reduce_scatter", *this};
  check(a, in, "in");
  check(a, out, "out");
  same_dtype(a, in, out);
  numel_is(a, in, "in", out.numel() * size(), "reduce_scatter (size() x out.numel())");
  throw_result(flagosReduceScatter(in.data(), out.data(), count(out), comm_dtype(in.dtype()), red(op), comm_,
                                   stream_of(in)));
}

void Communicator::all_to_all(const Tensor& in, Tensor& out) {
  const Args a{"Communicator::all_to_all", *this};
  check(a, in, "in");
  check(a, out, "out");
  same_dtype(a, in, out);
  numel_is(a, out, "out", in.numel(), "all_to_all");
  FLAGOS_CHECK(in.numel() % size() == 0, a.call, " (rank ", rank(), "): in has ", in.numel(),
               " elements, not a multiple of the ", size(), " ranks");
  throw_result(flagosAlltoAll(in.data(), out.data(), count(in) / static_cast<size_t>(size()), comm_dtype(in.dtype()),
                              comm_, stream_of(in)));
}

void Communicator::gather(const Tensor& in, Tensor& out, int root) {
  const Args a{"Communicator::gather", *this};
  check(a, in, "in");
  const bool is_root = rank() == root;
  if (is_root) {
    check(a, out, "out");
    same_dtype(a, in, out);
    numel_is(a, out, "out", in.numel() * size(), "gather (size() x in.numel())");
  }
  throw_result(flagosGather(in.data(), is_root ? out.data() : nullptr, count(in), comm_dtype(in.dtype()), root, comm_,
                            stream_of(in)));
}

void Communicator::scatter(const Tensor& in, Tensor& out, int root) {
  const Args a{"Communicator::scatter", *this};
  check(a, out, "out");
  const bool is_root = rank() == root;
  if (is_root) {
    check(a, in, "in");
    same_dtype(a, in, out);
    numel_is(a, in, "in", out.numel() * size(), "scatter (size() x out.numel())");
  }
  throw_result(flagosScatter(is_root ? in.data() : nullptr, out.data(), count(out), comm_dtype(out.dtype()), root,
                             comm_, stream_of(out)));
}

void Communicator::barrier() {
  throw_result(flagosBarrier(comm_, current_stream(device_).handle()));
}

void Communicator::send(const Tensor& t, int peer) {
  const Args a{"Communicator::send", *this};
  check(a, t, "t");
  throw_result(flagosSend(t.data(), count(t), comm_dtype(t.dtype()), peer, comm_, stream_of(t)));
}

void Communicator::recv(Tensor& t, int peer) {
  const Args a{"Communicator::recv", *this};
  check(a, t, "t");
  throw_result(flagosRecv(t.data(), count(t), comm_dtype(t.dtype()), peer, comm_, stream_of(t)));
}

void comm_group_start() { throw_result(flagosGroupStart()); }
void comm_group_end() { throw_result(flagosGroupEnd()); }

}  // namespace flagos
