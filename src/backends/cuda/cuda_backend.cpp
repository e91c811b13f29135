// The CUDA backend: device discovery and properties, the caching allocator per device, copies,
// streams, events and graph capture/replay over the CUDA runtime API. Kernels live in
// kernels/*.cu and llm/*.cu.
#include "backends/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/allocator.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/device_error.h"
#include "backends/cuda/kernels/families.h"
#include "backends/cuda/llm/llm_kernels.h"
#include "backends/cuda/tuning.h"
#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/tensor.h"

namespace flagos::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  const std::string msg = detail::concat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
                                         ") in ", call, " at ", file, ":", line);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemory(msg);
  throw RuntimeError(msg);
}

void set_device(int device) {
  int cur = -1;
  CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != device) CUDA_CHECK(cudaSetDevice(device));
}

namespace {

// Devices seen by the runtime; 0 (never an error) without a driver or GPU.
int query_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int device_count_cached() {
  static const int n = query_device_count();
  return n;
}

// Lazily created per-device state: properties, the default stream, the allocator, the deferred
// error record (device_error.h).
struct DeviceState {
  explicit DeviceState(int index) : allocator(index) {}
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;  // the backend's default stream (non-blocking)
  DeviceAllocator allocator;
  DeviceErrorRecord* err_host = nullptr;  // mapped pinned memory
  DeviceErrorSlot err{};                  // its device pointer and the lock (device memory)
  std::mutex err_mutex;
};

// Throws the error a kernel recorded on this device since the last check, clearing it first.
void raise_deferred_error(DeviceState& d, int device) {
  volatile DeviceErrorRecord* r = d.err_host;
  if (!r || !r->set) return;
  long long a = 0, b = 0, c = 0;
  int kind = 0;
  {
    std::lock_guard<std::mutex> lk(d.err_mutex);
    if (!r->set) return;
    kind = r->kind, a = r->a, b = r->b, c = r->c;
    r->set = 0;
  }
  const std::string where = detail::concat("deferred device error (cuda:", device, ", checked on the device, raised at this synchronization): ");
  switch (static_cast<DeviceErrorKind>(kind)) {
    case DeviceErrorKind::embedding_id:
      fail(where, "embedding: id ", b, " at position ", a, " is out of range for a vocabulary of ", c,
           " rows (the output rows of bad ids are NaN)");
    default: fail<RuntimeError>(where, "unknown error kind ", kind, " (values ", a, ", ", b, ", ", c, ")");
  }
}

struct Graph {
  cudaGraphExec_t exec = nullptr;
  uint64_t pool = 0;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend()
      : devices_(static_cast<size_t>(device_count_cached())),
        init_(std::make_unique<std::once_flag[]>(devices_.size())) {}

  std::string_view name() const override { return "cuda"; }
  int device_count() override { return device_count_cached(); }

  DeviceProps device_props(int index) override {
    DeviceState& d = state(index);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    DeviceProps p;
    p.name = d.props.name;
    p.total_memory = total_b;
    p.free_memory = free_b;
    p.compute_units = d.props.multiProcessorCount;
    p.host_accessible = false;
    p.async_streams = true;
    p.graphs = true;
    int driver = 0, runtime = 0;
    CUDA_CHECK(cudaDriverGetVersion(&driver));
    CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    p.capabilities = detail::concat("sm_", d.props.major, d.props.minor, ", ", d.props.l2CacheSize >> 20,
                                    " MiB L2, ", d.props.sharedMemPerBlockOptin >> 10,
                                    " KiB smem/block, driver ", driver / 1000, ".", driver % 1000 / 10, ", runtime ",
                                    runtime / 1000, ".", runtime % 1000 / 10);
    return p;
  }

  void register_kernels(KernelRegistry& reg, uint16_t id) override {
    id_ = id;
#define FLAGOS_CALL_FAMILY(f) register_##f(reg, id);
    FLAGOS_CUDA_FAMILIES(FLAGOS_CALL_FAMILY)
#undef FLAGOS_CALL_FAMILY
    register_llm_kernels(reg, id);
    tuning::register_tunables(id);
  }

  // ---- memory ----
  void* alloc(int device, size_t bytes) override {
    DeviceState& d = state(device);
    const Stream s = current_stream(Device{id_, static_cast<int16_t>(device)});
    return d.allocator.alloc(bytes, stream_or_default(d, s.handle()));
  }
  void free(int device, void* ptr) override {
    if (!ptr || device < 0 || static_cast<size_t>(device) >= devices_.size()) return;
    if (auto& d = devices_[static_cast<size_t>(device)]) d->allocator.free(ptr);
  }
  size_t cached_bytes(int device) override { return state(device).allocator.cached_bytes(); }
  void release_cached(int device) override { state(device).allocator.release_cached(); }

  void copy_to_device(int device, void* dst, const void* src, size_t n, StreamHandle s) override {
    memcpy(device, dst, src, n, cudaMemcpyHostToDevice, s);
  }
  void copy_to_host(int device, void* dst, const void* src, size_t n, StreamHandle s) override {
    memcpy(device, dst, src, n, cudaMemcpyDeviceToHost, s);
  }
  void copy_on_device(int device, void* dst, const void* src, size_t n, StreamHandle s) override {
    memcpy(device, dst, src, n, cudaMemcpyDeviceToDevice, s);
  }
  void copy_strided(const Tensor& dst, const Tensor& src, StreamHandle s) override {
    if (dst.numel() == 0) return;
    DeviceState& d = state(dst.device().index);
    cudaStream_t st = stream_or_default(d, s);
    if (dst.is_contiguous() && src.is_contiguous())
      CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), dst.nbytes(), cudaMemcpyDeviceToDevice, st));
    else
      copy_strided_async(dst, src, st);
    if (!s) {
      CUDA_CHECK(cudaStreamSynchronize(st));
      raise_deferred_error(d, dst.device().index);
    }
  }
  void memset(int device, void* dst, int value, size_t n, StreamHandle s) override {
    DeviceState& d = state(device);
    cudaStream_t st = stream_or_default(d, s);
    CUDA_CHECK(cudaMemsetAsync(dst, value, n, st));
    if (!s) {
      CUDA_CHECK(cudaStreamSynchronize(st));
      raise_deferred_error(d, device);
    }
  }

  // ---- streams and events ----
  StreamHandle default_stream(int device) override { return state(device).stream; }
  StreamHandle create_stream(int device) override {
    state(device);
    cudaStream_t s = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
  }
  void destroy_stream(int device, StreamHandle s) override {
    DeviceState& d = state(device);
    if (!s || s == d.stream) return;
    auto* cs = static_cast<cudaStream_t>(s);
    d.allocator.forget_stream(cs, d.stream);
    CUDA_CHECK(cudaStreamDestroy(cs));
  }
  void synchronize_stream(int device, StreamHandle s) override {
    DeviceState& d = state(device);
    CUDA_CHECK(cudaStreamSynchronize(stream_or_default(d, s)));
    raise_deferred_error(d, device);
  }
  void synchronize_device(int device) override {
    DeviceState& d = state(device);
    CUDA_CHECK(cudaDeviceSynchronize());
    raise_deferred_error(d, device);
  }
  EventHandle create_event(int device, bool timing) override {
    state(device);
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
    return e;
  }
  void destroy_event(int device, EventHandle e) override {
    if (!e) return;
    state(device);
    CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(e)));
  }
  void record_event(int device, EventHandle e, StreamHandle s) override {
    DeviceState& d = state(device);
    CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), stream_or_default(d, s)));
  }
  void stream_wait_event(int device, StreamHandle s, EventHandle e) override {
    DeviceState& d = state(device);
    CUDA_CHECK(cudaStreamWaitEvent(stream_or_default(d, s), static_cast<cudaEvent_t>(e), 0));
  }
  void synchronize_event(int device, EventHandle e) override {
    DeviceState& d = state(device);
    CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e)));
    raise_deferred_error(d, device);
  }
  float elapsed_ms(int device, EventHandle start, EventHandle end) override {
    state(device);
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
    return ms;
  }

  // ---- graphs ----
  // Relaxed capture mode: the allocator may call cudaMalloc while a capture is in progress.
  void begin_capture(int device, StreamHandle s) override {
    DeviceState& d = state(device);
    cudaStream_t st = stream_or_default(d, s);
    d.allocator.begin_pool(st);
    const cudaError_t err = cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed);
    if (err != cudaSuccess) {
      d.allocator.end_pool(st);
      check(err, "cudaStreamBeginCapture", __FILE__, __LINE__);
    }
  }
  GraphHandle end_capture(int device, StreamHandle s) override {
    DeviceState& d = state(device);
    cudaStream_t st = stream_or_default(d, s);
    const uint64_t pool = d.allocator.end_pool(st);
    cudaGraph_t graph = nullptr;
    const cudaError_t end_err = cudaStreamEndCapture(st, &graph);
    if (end_err != cudaSuccess) {
      d.allocator.release_pool(pool);  // no graph uses these blocks
      check(end_err, "cudaStreamEndCapture", __FILE__, __LINE__);
    }
    auto g = std::make_unique<Graph>();
    g->pool = pool;
    const cudaError_t err = cudaGraphInstantiate(&g->exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    check(err, "cudaGraphInstantiate", __FILE__, __LINE__);
    return g.release();
  }
  void replay(int device, GraphHandle g, StreamHandle s) override {
    DeviceState& d = state(device);
    FLAGOS_CHECK(g != nullptr, "cuda replay: null graph");
    CUDA_CHECK(cudaGraphLaunch(static_cast<Graph*>(g)->exec, stream_or_default(d, s)));
  }
  void destroy_graph(int device, GraphHandle g) override {
    if (!g) return;
    DeviceState& d = state(device);
    std::unique_ptr<Graph> graph(static_cast<Graph*>(g));
    CUDA_CHECK(cudaDeviceSynchronize());  // no replay may still use the graph's memory
    CUDA_CHECK(cudaGraphExecDestroy(graph->exec));
    d.allocator.release_pool(graph->pool);
  }

  PinnedHostPool& pinned() { return pinned_; }
  DeviceErrorSlot error_slot(int device) { return state(device).err; }

 private:
  // The state of `index`, created on first use; makes the device current on this thread.
  DeviceState& state(int index) {
    FLAGOS_CHECK(index >= 0 && static_cast<size_t>(index) < devices_.size(), "cuda: device index ", index,
                 " out of range (", devices_.size(), " CUDA device(s))");
    auto& slot = devices_[static_cast<size_t>(index)];
    set_device(index);
    std::call_once(init_[static_cast<size_t>(index)], [&] {
      auto d = std::make_unique<DeviceState>(index);
      CUDA_CHECK(cudaGetDeviceProperties(&d->props, index));
      CUDA_CHECK(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking));
      void* host = nullptr;
      CUDA_CHECK(cudaHostAlloc(&host, sizeof(DeviceErrorRecord), cudaHostAllocMapped | cudaHostAllocPortable));
      d->err_host = static_cast<DeviceErrorRecord*>(host);
      *d->err_host = DeviceErrorRecord{};
      void* dev_rec = nullptr;
      CUDA_CHECK(cudaHostGetDevicePointer(&dev_rec, host, 0));
      d->err.rec = static_cast<DeviceErrorRecord*>(dev_rec);
      void* lock = nullptr;
      CUDA_CHECK(cudaMalloc(&lock, 256));
      CUDA_CHECK(cudaMemset(lock, 0, 256));
      d->err.lock = static_cast<unsigned*>(lock);
      slot = std::move(d);
    });
    return *slot;
  }
  static cudaStream_t stream_or_default(DeviceState& d, StreamHandle s) {
    return s ? static_cast<cudaStream_t>(s) : d.stream;
  }
  void memcpy(int device, void* dst, const void* src, size_t n, cudaMemcpyKind kind, StreamHandle s) {
    if (n == 0) return;
    DeviceState& d = state(device);
    cudaStream_t st = stream_or_default(d, s);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, st));
    if (!s) {
      CUDA_CHECK(cudaStreamSynchronize(st));
      raise_deferred_error(d, device);
    }
  }

  uint16_t id_ = 0;
  std::vector<std::unique_ptr<DeviceState>> devices_;
  std::unique_ptr<std::once_flag[]> init_;  // one per device: creates its DeviceState
  PinnedHostPool pinned_;
};

CudaBackend* g_backend = nullptr;

}  // namespace

namespace {

// Attributes the kernels' launch choices read, queried once for every device.
struct DeviceAttrs {
  int sm_count = 0, compute_major = 0;
};

const std::vector<DeviceAttrs>& device_attrs() {
  static const std::vector<DeviceAttrs> attrs = [] {
    std::vector<DeviceAttrs> v(static_cast<size_t>(device_count_cached()));
    for (size_t i = 0; i < v.size(); ++i) {
      const int d = static_cast<int>(i);
      CUDA_CHECK(cudaDeviceGetAttribute(&v[i].sm_count, cudaDevAttrMultiProcessorCount, d));
      CUDA_CHECK(cudaDeviceGetAttribute(&v[i].compute_major, cudaDevAttrComputeCapabilityMajor, d));
    }
    return v;
  }();
  return attrs;
}

}  // namespace

int sm_count(int device) { return device_attrs().at(static_cast<size_t>(device)).sm_count; }

int compute_major(int device) {
  const auto& a = device_attrs();
  return device >= 0 && static_cast<size_t>(device) < a.size() ? a[static_cast<size_t>(device)].compute_major : 0;
}

std::unique_ptr<Backend> make_cuda_backend() {
  auto b = std::make_unique<CudaBackend>();
  g_backend = b.get();
  return b;
}

DeviceErrorSlot device_error_slot(int device) {
  FLAGOS_CHECK(g_backend != nullptr, "device_error_slot: the CUDA backend is not registered");
  return g_backend->error_slot(device);
}

void* alloc_pinned(size_t bytes) {
  FLAGOS_CHECK(g_backend != nullptr, "alloc_pinned: the CUDA backend is not registered");
  return g_backend->pinned().alloc(bytes);
}
void free_pinned(void* p) noexcept {
  if (g_backend) g_backend->pinned().free(p);
}

}  // namespace flagos::cuda
