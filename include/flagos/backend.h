// The backend interface: what a chip vendor implements, in one folder, to bring up a device.
// Designed for discrete devices with their own memory and asynchronous streams; the CPU
// backend implements it with host memory and synchronous streams.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flagos/device.h"
#include "flagos/dtype.h"

namespace flagos {

class Tensor;
class KernelRegistry;

struct DeviceProps {
  std::string name;            // e.g. "AMD EPYC (2 threads, avx2+fma)", "NVIDIA H100 80GB HBM3"
  size_t total_memory = 0;     // bytes
  size_t free_memory = 0;      // bytes
  int compute_units = 0;       // CPU threads / SMs / CUs
  bool host_accessible = false;  // host pointers address device memory directly
  bool async_streams = false;  // work is queued (not run inline) on streams
  bool graphs = false;         // supports capture/replay of op sequences
  std::string capabilities;    // free text: ISA, compute capability, ...
};

// Opaque handles owned by the backend.
using StreamHandle = void*;
using EventHandle = void*;
using GraphHandle = void*;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // lowercase, used in device strings: "cpu", "cuda"
  virtual int device_count() = 0;
  virtual DeviceProps device_props(int index) = 0;
  // Called once after registration with the id assigned by the registry; registers kernels.
  virtual void register_kernels(KernelRegistry& reg, uint16_t backend_id) = 0;

  // True when host code can dereference this device's memory directly (CPU, unified memory).
  virtual bool host_accessible(int device) const { return false; }

  // ---- memory ----
  // Returns device memory (at least 64-byte aligned); throws OutOfMemory naming the request.
  virtual void* alloc(int device, size_t bytes) = 0;
  virtual void free(int device, void* ptr) = 0;
  // Copies; with a non-null stream they are queued on it (host memory must then stay alive
  // until the stream reaches them), otherwise they complete before returning.
  virtual void copy_to_device(int device, void* dst, const void* host_src, size_t bytes, StreamHandle s) = 0;
  virtual void copy_to_host(int device, void* host_dst, const void* src, size_t bytes, StreamHandle s) = 0;
  virtual void copy_on_device(int device, void* dst, const void* src, size_t bytes, StreamHandle s) = 0;
  // dst and src on this backend's device `dst.device().index`, same shape and dtype, any strides.
  virtual void copy_strided(const Tensor& dst, const Tensor& src, StreamHandle s) = 0;
  virtual void memset(int device, void* dst, int value, size_t bytes, StreamHandle s) = 0;

  // ---- streams and events ----
  virtual StreamHandle default_stream(int device) = 0;
  virtual StreamHandle create_stream(int device) = 0;
  virtual void destroy_stream(int device, StreamHandle s) = 0;
  virtual void synchronize_stream(int device, StreamHandle s) = 0;
  virtual void synchronize_device(int device) = 0;
  virtual EventHandle create_event(int device, bool timing) = 0;
  virtual void destroy_event(int device, EventHandle e) = 0;
  virtual void record_event(int device, EventHandle e, StreamHandle s) = 0;
  virtual void stream_wait_event(int device, StreamHandle s, EventHandle e) = 0;
  virtual void synchronize_event(int device, EventHandle e) = 0;
  virtual float elapsed_ms(int device, EventHandle start, EventHandle end) = 0;

  // ---- graphs (optional: the defaults throw NotSupported) ----
  virtual void begin_capture(int device, StreamHandle s);
  virtual GraphHandle end_capture(int device, StreamHandle s);
  virtual void replay(int device, GraphHandle g, StreamHandle s);
  virtual void destroy_graph(int device, GraphHandle g);

  // ---- memory pool reporting (optional) ----
  virtual size_t cached_bytes(int device) { return 0; }
  virtual void release_cached(int device) {}
};

// ---- registry ----
// Backends are registered at start: the CPU backend always (id 0), others compiled in
// (see register_builtin_backends) or added at run time, e.g. from a vendor's shared library.
uint16_t register_backend(std::unique_ptr<Backend> backend);
int backend_count();
Backend& backend(uint16_t id);
// Returns the id of a backend by name, or -1.
int find_backend(std::string_view name);
// Loads a shared library exporting `extern "C" flagos::Backend* flagos_create_backend()`.
uint16_t load_backend_library(const std::string& path);

}  // namespace flagos
