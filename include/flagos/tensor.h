// Tensor: a typed, strided view of device memory. Views share storage; strides are in bytes.
// Quantized dtypes store their innermost dimension as packed blocks: that dimension must be
// contiguous, a multiple of the block size, and its stride is the size of one element in the
// sense of row_bytes(dtype, n) / n (it is not used for addressing); views may only reshape
// or slice the outer dimensions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "flagos/device.h"
#include "flagos/dtype.h"
#include "flagos/shape.h"

namespace flagos {

// A block of memory on one device. Frees itself through its deleter (backend free,
// munmap of a model file, or nothing for borrowed memory).
struct Storage {
  Device device;
  void* data = nullptr;
  size_t nbytes = 0;
  std::function<void(void*)> deleter;
  Storage(Device dev, void* d, size_t n, std::function<void(void*)> del)
      : device(dev), data(d), nbytes(n), deleter(std::move(del)) {}
  ~Storage() {
    if (deleter && data) deleter(data);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false); used for optional outputs

  // ---- creation (uninitialized memory) ----
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor empty_like(const Tensor& t);
  // Wraps memory the caller owns; `keep_alive` (may be null) is held as long as any view lives.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(),
                          std::shared_ptr<void> keep_alive = nullptr);
  static Tensor from_blob_strided(void* data, const Shape& shape, const Strides& byte_strides, DType dtype,
                                  Device device, std::shared_ptr<void> keep_alive = nullptr);
  // Host-only helpers: copies `n` values from a host array (for tests, tools, small constants).
  template <typename T>
  static Tensor from_vector(const std::vector<T>& v, const Shape& shape, DType dtype);

  // ---- properties ----
  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device{}; }
  int dim() const { return shape_.size(); }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }  // bytes
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;  // bytes
  int64_t numel() const { return numel_; }
  int64_t offset() const { return offset_; }  // bytes into storage
  size_t itemsize() const;                     // bytes of one element (plain dtypes)
  size_t nbytes() const;                       // bytes spanned by the elements if contiguous
  bool is_contiguous() const;
  bool is_host_accessible() const;
  void* data() const { return storage_ ? static_cast<char*>(storage_->data) + offset_ : nullptr; }
  template <typename T>
  T* data_as() const { return static_cast<T*>(data()); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  std::string describe() const;  // "f32[2, 3] (strides 12,4 bytes) on cpu:0"

  // ---- views (share storage, no copy) ----
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // python-like bounds
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const Dims& order) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // size-1 dims become stride 0; -1 keeps a size
  Tensor as_strided(const Shape& shape, const Strides& byte_strides, int64_t byte_offset) const;
  // A view when the strides allow it, else throws (use reshape() for copy-if-needed). One -1 is inferred.
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;  // view when possible, else a contiguous copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor view_as_dtype(DType dtype) const;  // reinterpret bytes of a contiguous tensor (same itemsize)

  // ---- copies ----
  Tensor contiguous() const;  // self when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;     // copy to another device (self if already there)
  void copy_from(const Tensor& src);  // same shape & dtype, any strides, any devices

  // ---- host access (synchronizes) ----
  template <typename T>
  std::vector<T> to_vector() const;  // values converted to T (from any plain dtype)
  double item() const;               // single element as double

 private:
  Tensor(std::shared_ptr<Storage> s, int64_t offset, const Shape& shape, const Strides& strides, DType dtype);
  void check_view_bounds(const char* what) const;
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  Strides strides_;
  DType dtype_ = DType::f32;
  int64_t numel_ = 0;
};

// Contiguous row-major byte strides for `shape` and `dtype`.
Strides contiguous_strides(const Shape& shape, DType dtype);

// Element access helpers for host code (any plain dtype <-> double).
double load_as_double(const void* p, DType t);
void store_from_double(void* p, DType t, double v);

}  // namespace flagos

#include "flagos/tensor_inl.h"
