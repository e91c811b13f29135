// Helpers shared by op declarations: op ids, output preparation, device and overlap checks.
#pragma once
#include <initializer_list>
#include <string_view>

#include "flagos/error.h"
#include "flagos/kernel.h"
#include "flagos/ops.h"

namespace flagos::ops::detail {

// Id of a declared op (cache it: `static const uint16_t id = op_id("add");`).
uint16_t op_id(std::string_view name);

void check_defined(const char* op, const Tensor& t, const char* arg);
// All defined tensors on one device; returns it.
Device common_device(const char* op, std::initializer_list<const Tensor*> ts);
// Returns `out` after validating shape/dtype/device, or a new tensor when `out` is undefined.
Tensor prepare_out(const char* op, const Tensor& out, const Shape& shape, DType dtype, Device dev);
// `out` may be `in` exactly (same data, strides and shape) but may not partially overlap it.
void check_inplace_ok(const char* op, const Tensor& out, const Tensor& in);
// `out` may not share any byte with `in`.
void check_no_overlap(const char* op, const Tensor& out, const Tensor& in);
bool overlaps(const Tensor& a, const Tensor& b);
// Casts x to dtype when it differs (a new tensor), else returns x.
Tensor to_dtype(const Tensor& x, DType dtype);
// Normalizes and deduplicates reduction dims; empty = all dims. Returns a bitmask.
uint32_t reduce_mask(const char* op, const Dims& dims, int ndim);
Shape reduced_shape(const Shape& s, uint32_t mask, bool keepdim);

}  // namespace flagos::ops::detail
