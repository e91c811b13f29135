// DeviceOps for CUDA buffers (the heterogeneous mode's staging on GPU ranks, the bench and tests):
// cudaMalloc scratch, pinned host staging (cudaMallocHost), copies on two non-blocking copy streams
// (device->host and host->device, so both directions overlap), ordered after the caller's stream at
// begin() and joined back into it at end(); each copy's completion is an event the host can poll.
#include <cuda_runtime.h>

#include <vector>

#include "adaptors/nccl/nccl_adaptor.h"

namespace flagos::comm::nccl {
namespace {

class EventWork final : public Work {
 public:
  EventWork(int device, cudaStream_t s) : device_(device) {
    DeviceGuard g(device_);
    check_cuda(cudaEventCreateWithFlags(&ev_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check_cuda(cudaEventRecord(ev_, s), "cudaEventRecord");
  }
  ~EventWork() override {
    DeviceGuard g(device_);
    cudaEventDestroy(ev_);  // released once reached
  }
  bool done() override {
    if (done_) return true;
    const cudaError_t e = cudaEventQuery(ev_);
    if (e == cudaErrorNotReady) return false;
    check_cuda(e, "a copy between host staging and the device (cudaEventQuery)");
    return done_ = true;
  }
  void* device_event() const override { return ev_; }

 private:
  int device_;
  cudaEvent_t ev_ = nullptr;
  bool done_ = false;
};

class CudaOps final : public DeviceOps {
 public:
  explicit CudaOps(int device) : device_(device) {
    DeviceGuard g(device_);
    check_cuda(cudaStreamCreateWithFlags(&d2h_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check_cuda(cudaStreamCreateWithFlags(&h2d_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check_cuda(cudaEventCreateWithFlags(&start_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check_cuda(cudaEventCreateWithFlags(&joined_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check_cuda(cudaEventCreateWithFlags(&finished_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }
  ~CudaOps() override {
    DeviceGuard g(device_);
    cudaStreamSynchronize(d2h_);
    cudaStreamSynchronize(h2d_);
    cudaStreamDestroy(d2h_);
    cudaStreamDestroy(h2d_);
    cudaEventDestroy(start_);
    cudaEventDestroy(joined_);
    cudaEventDestroy(finished_);
  }
  bool is_host() const override { return false; }
  void* alloc(size_t bytes) override {
    DeviceGuard g(device_);
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, bytes), "cudaMalloc (staging scratch)");
    return p;
  }
  void release(void* p) noexcept override {
    DeviceGuard g(device_);
    cudaFree(p);
  }
  void* alloc_host(size_t bytes) override {
    DeviceGuard g(device_);
    void* p = nullptr;
    check_cuda(cudaMallocHost(&p, bytes), "cudaMallocHost (pinned staging)");
    return p;
  }
  void release_host(void* p) noexcept override {
    DeviceGuard g(device_);
    cudaFreeHost(p);
  }
  void begin(void* stream) override {
    DeviceGuard g(device_);
    const auto s = static_cast<cudaStream_t>(stream);
    if (ended_) check_cuda(cudaStreamWaitEvent(s, finished_, 0), "cudaStreamWaitEvent");  // scratch of the last call
    check_cuda(cudaEventRecord(start_, s), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(d2h_, start_, 0), "cudaStreamWaitEvent");
    check_cuda(cudaStreamWaitEvent(h2d_, start_, 0), "cudaStreamWaitEvent");
  }
  std::unique_ptr<Work> copy(void* dst, const void* src, std::span<const Segment> segments, bool to_host,
                             std::span<Work* const> after) override {
    DeviceGuard g(device_);
    cudaStream_t s = to_host ? d2h_ : h2d_;
    for (Work* w : after)
      if (w && w->device_event())
        check_cuda(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(w->device_event()), 0), "cudaStreamWaitEvent");
    const cudaMemcpyKind kind = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    for (const Segment& seg : segments)
      if (seg.bytes)
        check_cuda(cudaMemcpyAsync(static_cast<char*>(dst) + seg.dst, static_cast<const char*>(src) + seg.src, seg.bytes,
                                   kind, s),
                   to_host ? "cudaMemcpyAsync (device to host staging)" : "cudaMemcpyAsync (host staging to device)");
    return std::make_unique<EventWork>(device_, s);
  }
  void end(void* stream) override {
    DeviceGuard g(device_);
    const auto s = static_cast<cudaStream_t>(stream);
    for (cudaStream_t c : {d2h_, h2d_}) {
      check_cuda(cudaEventRecord(joined_, c), "cudaEventRecord");
      check_cuda(cudaStreamWaitEvent(s, joined_, 0), "cudaStreamWaitEvent");
    }
    check_cuda(cudaEventRecord(finished_, s), "cudaEventRecord");
    ended_ = true;
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    DeviceGuard g(device_);
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (host to device)");
  }
  void download(void* dst, const void* src, size_t bytes) override {
    DeviceGuard g(device_);
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy (device to host)");
  }
  void synchronize(void* stream) override {
    DeviceGuard g(device_);
    if (stream) check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
    else check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

 private:
  int device_;
  cudaStream_t d2h_ = nullptr, h2d_ = nullptr;
  cudaEvent_t start_ = nullptr, joined_ = nullptr, finished_ = nullptr;
  bool ended_ = false;
};

}  // namespace

std::unique_ptr<DeviceOps> device_ops(int device) { return std::make_unique<CudaOps>(device); }

}  // namespace flagos::comm::nccl
