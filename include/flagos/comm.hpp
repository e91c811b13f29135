// The C++ layer of the communication library: a Communicator taking flagos tensors. Every call is
// the C API's (include/flagos/comm.h) on the tensors' memory, stream-ordered on the current stream
// of the tensors' device (flagos::current_stream). Tensors must be contiguous, on the communicator's
// device, with a dtype the library has (f32 f64 f16 bf16 i8 u8 i32 i64). Counts are numel():
// gathering calls take any shapes whose element counts relate as in NCCL (e.g. all_gather: out has
// size() x in.numel() elements, rank r's at offset r x in.numel()).
// Errors: flagos::InvalidArgument (bad tensors or arguments), flagos::NotSupported, otherwise
// flagos::CommFailure carrying the flagosResult_t; messages name the call, rank and values.
#pragma once
#include <string>

#include "flagos/comm.h"
#include "flagos/error.h"
#include "flagos/tensor.h"

namespace flagos {

enum class ReduceOp { sum = flagosSum, prod = flagosProd, max = flagosMax, min = flagosMin, avg = flagosAvg };

class CommFailure : public RuntimeError {
 public:
  CommFailure(flagosResult_t r, const std::string& msg) : RuntimeError(msg), result_(r) {}
  flagosResult_t result() const { return result_; }

 private:
  flagosResult_t result_;
};

// flagos dtype -> flagosDataType_t; throws InvalidArgument for dtypes without one (i16, bool, quantized).
flagosDataType_t comm_dtype(DType t);

class Communicator {
 public:
  // On rank 0 (or on every rank under `flagos launch`); share it with the others as with NCCL.
  static flagosUniqueId unique_id();
  // `device`: "cpu", "cuda:1", ... (empty: FLAGOS_COMM_DEVICE, else "cpu"); timeout_ms <= 0: the default.
  Communicator(int nranks, const flagosUniqueId& id, int rank, const std::string& device = "", int64_t timeout_ms = 0);
  ~Communicator();  // waits for outstanding work (flagosCommDestroy); never throws
  Communicator(Communicator&& o) noexcept : comm_(o.comm_), device_(o.device_) { o.comm_ = nullptr; }
  Communicator& operator=(Communicator&&) = delete;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  Device device() const { return device_; }
  flagosComm_t handle() const { return comm_; }
  // Frees now without waiting for other ranks (flagosCommAbort); the object is then empty.
  void abort();

  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum);  // in place
  void all_reduce(const Tensor& in, Tensor& out, ReduceOp op = ReduceOp::sum);
  void broadcast(Tensor& t, int root);  // in place
  // `out` is used on the root only (may be undefined elsewhere); out = in is in place.
  void reduce(const Tensor& in, Tensor& out, ReduceOp op, int root);
  void all_gather(const Tensor& in, Tensor& out);
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op = ReduceOp::sum);
  void all_to_all(const Tensor& in, Tensor& out);
  // `out` (size() x in.numel() elements) is used on the root only.
  void gather(const Tensor& in, Tensor& out, int root);
  // `in` (size() x out.numel() elements) is used on the root only.
  void scatter(const Tensor& in, Tensor& out, int root);
  void barrier();
  void send(const Tensor& t, int peer);
  void recv(Tensor& t, int peer);

 private:
  flagosComm_t comm_ = nullptr;
  Device device_{};
};

// Calls between group_start and group_end are issued together (flagosGroupStart/End).
void comm_group_start();
void comm_group_end();

}  // namespace flagos
