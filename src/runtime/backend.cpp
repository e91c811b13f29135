#include "flagos/backend.h"

#include <dlfcn.h>

#include <mutex>

#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/tensor.h"

namespace flagos {

// Defined by the backends layer (src/backends/builtin_backends.cpp): registers the CPU
// backend first, then every backend compiled in.
namespace detail {
void register_builtin_backends();
void declare_all_ops(KernelRegistry& reg);
}  // namespace detail

void Backend::begin_capture(int, StreamHandle) { fail<NotSupported>("backend '", name(), "' has no graph capture"); }
GraphHandle Backend::end_capture(int, StreamHandle) { fail<NotSupported>("backend '", name(), "' has no graph capture"); }
void Backend::replay(int, GraphHandle, StreamHandle) { fail<NotSupported>("backend '", name(), "' has no graph replay"); }
void Backend::destroy_graph(int, GraphHandle) {}

namespace {
struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<Backend>> backends;
  KernelRegistry kernels;
};
Registry& raw_registry() {
  static Registry r;
  return r;
}
Registry& registry() {
  static std::once_flag once;
  std::call_once(once, [] {
    detail::declare_all_ops(raw_registry().kernels);
    detail::register_builtin_backends();
  });
  return raw_registry();
}
}  // namespace

uint16_t register_backend(std::unique_ptr<Backend> b) {
  Registry& r = raw_registry();
  std::lock_guard lock(r.mu);
  for (auto& e : r.backends)
    FLAGOS_CHECK(e->name() != b->name(), "register_backend: a backend named '", b->name(), "' already exists");
  FLAGOS_CHECK(r.backends.size() < 0xffff, "register_backend: too many backends");
  const auto id = static_cast<uint16_t>(r.backends.size());
  r.backends.push_back(std::move(b));
  r.backends.back()->register_kernels(r.kernels, id);
  return id;
}

int backend_count() { return static_cast<int>(registry().backends.size()); }

Backend& backend(uint16_t id) {
  Registry& r = registry();
  FLAGOS_CHECK(id < r.backends.size(), "no backend with id ", id);
  return *r.backends[id];
}

int find_backend(std::string_view name) {
  Registry& r = registry();
  for (size_t i = 0; i < r.backends.size(); ++i)
    if (r.backends[i]->name() == name) return static_cast<int>(i);
  return -1;
}

uint16_t load_backend_library(const std::string& path) {
  registry();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) fail<RuntimeError>("load_backend_library: cannot load '", path, "': ", dlerror());
  using Factory = Backend* (*)();
  auto f = reinterpret_cast<Factory>(dlsym(h, "flagos_create_backend"));
  if (!f) fail<RuntimeError>("load_backend_library: '", path, "' does not export flagos_create_backend");
  return register_backend(std::unique_ptr<Backend>(f()));
}

KernelRegistry& kernels() { return registry().kernels; }

Backend& backend_of(Device d) { return backend(d.backend); }

// ---- KernelRegistry ----
uint16_t KernelRegistry::declare_op(std::string_view name, std::string_view category) {
  const int i = find_op(name);
  if (i >= 0) return static_cast<uint16_t>(i);
  ops_.push_back(OpInfo{std::string(name), std::string(category)});
  return static_cast<uint16_t>(ops_.size() - 1);
}

int KernelRegistry::find_op(std::string_view name) const {
  for (size_t i = 0; i < ops_.size(); ++i)
    if (ops_[i].name == name) return static_cast<int>(i);
  return -1;
}

void KernelRegistry::add(std::string_view op, uint16_t backend_id, KernelKey key, KernelFn fn) {
  const int i = find_op(op);
  FLAGOS_CHECK(i >= 0, "kernel registration: op '", op, "' is not declared (see src/ops/op_list.cpp)");
  kernels_[pack(static_cast<uint16_t>(i), backend_id, key)] = fn;
}

std::vector<KernelKey> KernelRegistry::keys(uint16_t op, uint16_t backend_id) const {
  std::vector<KernelKey> out;
  for (const auto& [k, fn] : kernels_) {
    if ((k >> 32) != op || ((k >> 16) & 0xffff) != backend_id) continue;
    out.push_back(KernelKey{static_cast<DType>((k >> 8) & 0xff), static_cast<DType>(k & 0xff)});
  }
  std::sort(out.begin(), out.end(), [](KernelKey a, KernelKey b) {
    return std::pair(a.d0, a.d1) < std::pair(b.d0, b.d1);
  });
  return out;
}

std::string key_to_string(KernelKey k) {
  std::string s(dtype_name(k.d0));
  if (k.d1 != DType::count_) s += "," + std::string(dtype_name(k.d1));
  return s;
}

void KernelRegistry::not_supported(uint16_t op, uint16_t backend_id, KernelKey key) const {
  std::string have;
  for (KernelKey k : keys(op, backend_id)) have += (have.empty() ? "" : " ") + key_to_string(k);
  fail<NotSupported>("op '", ops_.at(op).name, "' has no kernel for dtype ", key_to_string(key), " on backend '",
                     raw_registry().backends.at(backend_id)->name(), "'",
                     have.empty() ? std::string(" (the backend implements no variant of it)")
                                  : " (supported: " + have + ")");
}

void launch(uint16_t op, KernelKey key, Device device, std::initializer_list<const Tensor*> in,
            std::initializer_list<Tensor*> out, const void* params) {
  KernelFn fn = kernels().get(op, device.backend, key);
  KernelArgs a{std::span<const Tensor* const>(in.begin(), in.size()), std::span<Tensor* const>(out.begin(), out.size()),
               params, current_stream(device)};
  fn(a);
}

}  // namespace flagos
