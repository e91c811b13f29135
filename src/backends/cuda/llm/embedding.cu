// embedding: rows of a [V, D] table (f32/f16/bf16 with any strides, or block-quantized rows with
// any row stride) gathered by validated i32/i64 ids into a new contiguous [n, D] tensor of
// f32/f16/bf16. One block per id; quantized rows dequantize 8 elements per thread (bit-identical
// to dequantize), same-dtype contiguous rows copy with 16-byte accesses when aligned.
// Every id is checked here (the op layer checks only ids the host can read): a bad one gets a row
// of NaN and is reported through the device's deferred error record (device_error.h), which the
// backend raises at the next synchronization, naming the id, its position and the vocabulary size.
#include "backends/cuda/device_error.h"
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/quant_blocks.cuh"

namespace flagos::cuda::llm {
namespace {

template <typename OT>
__device__ __forceinline__ void store8(OT* o, const float (&y)[8]) {
#pragma unroll
  for (int k = 0; k < 8; ++k) o[k] = from_f<OT>(y[k]);
}

// Checks ids[i] against the vocabulary V: false (and the error reported by thread 0) when bad.
template <typename I>
__device__ __forceinline__ bool emb_id_ok(const I* ids, int64_t i, int64_t V, DeviceErrorSlot err, int64_t& id) {
  id = static_cast<int64_t>(ids[i]);
  if (id >= 0 && id < V) return true;
  if (threadIdx.x == 0) report_device_error(err, DeviceErrorKind::embedding_id, i, id, V);
  return false;
}

template <typename OT>
__device__ void emb_nan_row(OT* o, int64_t D) {
  for (int64_t e = threadIdx.x; e < D; e += blockDim.x) o[e] = from_f<OT>(__int_as_float(0x7fc00000));
}

template <DType Q, typename I, typename OT>
__global__ void emb_quant_kernel(const uint8_t* table, int64_t trs, const I* ids, int64_t D, OT* out, int64_t V,
                                 DeviceErrorSlot err) {
  constexpr int BN = QTraits<Q>::n, BB = QTraits<Q>::bytes;
  const int64_t i = blockIdx.x;
  OT* o = out + i * D;
  int64_t id = 0;
  if (!emb_id_ok(ids, i, V, err, id)) return emb_nan_row(o, D);
  const uint8_t* row = table + id * trs;
  for (int64_t e = static_cast<int64_t>(threadIdx.x) * 8; e < D; e += static_cast<int64_t>(blockDim.x) * 8) {
    float y[8];
    deq8<Q>(row + (e / BN) * BB, static_cast<int>(e % BN), y);
    store8(o + e, y);
  }
}

template <typename TT, typename I, typename OT>
__global__ void emb_plain_kernel(const TT* table, int64_t trs, int64_t tcs, const I* ids, int64_t D, OT* out,
                                 int64_t V, DeviceErrorSlot err) {
  const int64_t i = blockIdx.x;
  OT* o = out + i * D;
  int64_t id = 0;
  if (!emb_id_ok(ids, i, V, err, id)) return emb_nan_row(o, D);
  const TT* row = table + id * trs;
  for (int64_t e = threadIdx.x; e < D; e += blockDim.x) o[e] = from_f<OT>(to_f(row[e * tcs]));
}

// nan: 16 bytes of NaN in the row's dtype, written for a bad id.
template <typename I>
__global__ void emb_copy16_kernel(const char* table, int64_t trs_bytes, const I* ids, int64_t row_vecs, char* out,
                                  int64_t V, DeviceErrorSlot err, uint4 nan) {
  const int64_t i = blockIdx.x;
  uint4* o = reinterpret_cast<uint4*>(out) + i * row_vecs;
  int64_t id = 0;
  if (!emb_id_ok(ids, i, V, err, id)) {
    for (int64_t e = threadIdx.x; e < row_vecs; e += blockDim.x) o[e] = nan;
    return;
  }
  const uint4* row = reinterpret_cast<const uint4*>(table + id * trs_bytes);
  for (int64_t e = threadIdx.x; e < row_vecs; e += blockDim.x) o[e] = row[e];
}

template <typename OT, typename I>
void emb_dispatch(const KernelArgs& a, DType td) {
  const Tensor& table = *a.in[0];
  const Tensor& ids = *a.in[1];  // contiguous, checked here
  Tensor& out = *a.out[0];
  const int64_t n = ids.numel(), D = table.size(1), V = table.size(0);
  if (n == 0 || D == 0) return;
  const cudaStream_t s = kernel_stream(a);
  const DeviceErrorSlot err = device_error_slot(a.stream.device().index);
  const unsigned grid = static_cast<unsigned>(n);
  const I* ip = ids.data_as<I>();
  if (is_quant(td)) {
    visit_quant(td, [&]<DType Q>() {
      emb_quant_kernel<Q, I, OT><<<grid, 128, 0, s>>>(static_cast<const uint8_t*>(table.data()), table.stride(0), ip,
                                                      D, out.data_as<OT>(), V, err);
    });
  } else {
    const int64_t es = static_cast<int64_t>(table.itemsize());
    const int64_t row_bytes = D * es;
    if (td == out.dtype() && table.stride(1) == es && row_bytes % 16 == 0 && table.stride(0) % 16 == 0 &&
        aligned16(table.data())) {
      uint4 nan{};
      if (es == 4) nan.x = nan.y = nan.z = nan.w = 0x7fc00000u;
      else nan.x = nan.y = nan.z = nan.w = td == DType::f16 ? 0x7e007e00u : 0x7fc07fc0u;
      emb_copy16_kernel<I><<<grid, 128, 0, s>>>(static_cast<const char*>(table.data()), table.stride(0), ip,
                                                row_bytes / 16, static_cast<char*>(out.data()), V, err, nan);
    } else {
      const int64_t trs = est(table, 0), tcs = est(table, 1);
      auto run = [&](auto* tp) {
        emb_plain_kernel<<<grid, 128, 0, s>>>(tp, trs, tcs, ip, D, out.data_as<OT>(), V, err);
      };
      if (td == DType::f32) run(table.data_as<float>());
      else if (td == DType::f16) run(table.data_as<__half>());
      else run(table.data_as<__nv_bfloat16>());
    }
  }
  CUDA_CHECK_LAUNCH();
}

template <DType TD, typename I>
void embedding_launch(const KernelArgs& a) {
  const DType od = a.out[0]->dtype();
  if (od == DType::f32) emb_dispatch<float, I>(a, TD);
  else if (od == DType::f16) emb_dispatch<__half, I>(a, TD);
  else emb_dispatch<__nv_bfloat16, I>(a, TD);
}

template <DType TD>
void add_table(KernelRegistry& reg, uint16_t b) {
  reg.add("embedding", b, KernelKey{TD, DType::i32}, &embedding_launch<TD, int32_t>);
  reg.add("embedding", b, KernelKey{TD, DType::i64}, &embedding_launch<TD, int64_t>);
}

}  // namespace

void register_embedding(KernelRegistry& reg, uint16_t b) {
  add_table<DType::f32>(reg, b);
  add_table<DType::f16>(reg, b);
  add_table<DType::bf16>(reg, b);
  add_table<DType::q8_0>(reg, b);
  add_table<DType::q4_0>(reg, b);
  add_table<DType::q4_1>(reg, b);
  add_table<DType::q5_0>(reg, b);
  add_table<DType::q5_1>(reg, b);
  add_table<DType::q4_k>(reg, b);
  add_table<DType::q5_k>(reg, b);
  add_table<DType::q6_k>(reg, b);
}

}  // namespace flagos::cuda::llm
