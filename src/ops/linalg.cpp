// Linear algebra: matmul (torch.matmul semantics), linear (plain or block-quantized weights),
// embedding (row gather from plain or quantized tables).
#include <vector>

#include "ops/op_common.h"

namespace flagos::ops {
using namespace detail;

namespace {
bool is_gemm_float(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16; }
bool is_act_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }
}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  check_defined("matmul", a_in, "a");
  check_defined("matmul", b_in, "b");
  const Device dev = common_device("matmul", {&a_in, &b_in, &out});
  FLAGOS_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: both operands need at least 1 dim, got ", a_in.shape(),
               " and ", b_in.shape());
  FLAGOS_CHECK(is_gemm_float(a_in.dtype()) && is_gemm_float(b_in.dtype()), "matmul: operands must be f32/f64/f16/bf16, got ",
               a_in.dtype(), " and ", b_in.dtype());
  const DType dt = promote_types(a_in.dtype(), b_in.dtype());
  const bool a1 = a_in.dim() == 1, b1 = b_in.dim() == 1;
  Tensor a = to_dtype(a_in, dt), b = to_dtype(b_in, dt);
  if (a1) a = a.unsqueeze(0);
  if (b1) b = b.unsqueeze(1);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  FLAGOS_CHECK(b.size(-2) == K, "matmul: shapes ", a_in.shape(), " and ", b_in.shape(),
               " cannot be multiplied (inner dims ", K, " and ", b.size(-2), " differ)");
  const Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(ab, bb, "matmul");
  Shape rshape = batch;
  if (!a1) rshape.push_back(M);
  if (!b1) rshape.push_back(N);
  Tensor o = prepare_out("matmul", out, rshape, dt, dev);
  check_no_overlap("matmul", o, a_in);
  check_no_overlap("matmul", o, b_in);
  if (o.numel() == 0) return o;
  if (K == 0) {
    fill(o, 0.0);
    return o;
  }
  static const uint16_t id = op_id("matmul");
  Tensor o3 = o;
  if (b1) o3 = o3.unsqueeze(o3.dim());
  if (a1) o3 = o3.unsqueeze(o3.dim() - 1);
  MatmulParams p;
  // [B..., M, K] x [K, N]: fold the batch into M (one large GEMM) when a's rows and out's rows can be flattened.
  if (b.dim() == 2 && a.dim() > 2 && o3.is_contiguous()) {
    Tensor a2 = a.reshape({-1, K});
    Tensor o2 = o3.view({-1, N});
    launch(id, KernelKey{dt}, dev, {&a2, &b}, {&o2}, &p);
    return o;
  }
  Shape sa = batch, sb = batch;
  sa.push_back(M), sa.push_back(K);
  sb.push_back(K), sb.push_back(N);
  Tensor ae = a.expand(sa), be = b.expand(sb);
  p.trans_a = ae.stride(-2) == static_cast<int64_t>(ae.itemsize()) && M > 1;
  p.trans_b = be.stride(-2) == static_cast<int64_t>(be.itemsize()) && K > 1;
  launch(id, KernelKey{dt}, dev, {&ae, &be}, {&o3}, &p);
  return o;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  check_defined("linear", x, "x");
  check_defined("linear", weight, "weight");
  const Device dev = common_device("linear", {&x, &weight, &bias, &out});
  FLAGOS_CHECK(is_act_float(x.dtype()), "linear: x must be f32/f16/bf16, got ", x.dtype());
  FLAGOS_CHECK(is_act_float(weight.dtype()) || is_quant(weight.dtype()),
               "linear: weight must be f32/f16/bf16 or block-quantized, got ", weight.dtype());
  FLAGOS_CHECK(x.dim() >= 1, "linear: x must have at least 1 dim, got a 0-d tensor");
  FLAGOS_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got ", weight.shape());
  const int64_t K = x.size(-1), N = weight.size(0);
  FLAGOS_CHECK(weight.size(1) == K, "linear: x ", x.shape(), " has in_features ", K, " but weight is ",
               weight.shape());
  Tensor bf;
  if (bias.defined()) {
    FLAGOS_CHECK(is_act_float(bias.dtype()), "linear: bias must be f32/f16/bf16, got ", bias.dtype());
    FLAGOS_CHECK(bias.dim() == 1 && bias.size(0) == N, "linear: bias has shape ", bias.shape(), ", expected [", N,
                 "]");
    bf = to_dtype(bias, DType::f32).contiguous();
  }
  Shape rshape(x.shape().begin(), x.shape().end() - 1);
  rshape.push_back(N);
  Tensor o = prepare_out("linear", out, rshape, x.dtype(), dev);
  check_no_overlap("linear", o, x);
  check_no_overlap("linear", o, weight);
  if (bias.defined()) check_no_overlap("linear", o, bias);
  if (o.numel() == 0) return o;
  const int64_t M = o.numel() / N;
  Tensor x2 = x.reshape({M, K});
  if (x2.stride(1) != static_cast<int64_t>(x2.itemsize()) && K > 1) x2 = x2.contiguous();
  Tensor w = weight;
  if (!is_quant(w.dtype())) {
    const int64_t isz = static_cast<int64_t>(w.itemsize());
    const bool rows_ok = w.stride(1) == isz || K == 1;
    const bool cols_ok = w.dtype() == DType::f32 && (w.stride(0) == isz || N == 1);
    if (!rows_ok && !cols_ok) w = w.contiguous();
  }
  const bool direct = o.is_contiguous();
  Tensor o2 = direct ? o.view({M, N}) : Tensor::empty({M, N}, x.dtype(), dev);
  static const uint16_t id = op_id("linear");
  launch(id, KernelKey{x.dtype(), w.dtype()}, dev, {&x2, &w, &bf}, {&o2}, nullptr);
  if (!direct) copy(o, o2.view(rshape));
  return o;
}

static Tensor embedding_impl(const Tensor& table, const Tensor& ids, std::optional<DType> out_dtype, bool check_ids) {
  check_defined("embedding", table, "table");
  check_defined("embedding", ids, "ids");
  const Device dev = common_device("embedding", {&table, &ids});
  FLAGOS_CHECK(table.dim() == 2, "embedding: table must be 2-D [vocab, dim], got ", table.shape());
  FLAGOS_CHECK(is_act_float(table.dtype()) || is_quant(table.dtype()),
               "embedding: table must be f32/f16/bf16 or block-quantized, got ", table.dtype());
  FLAGOS_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64, "embedding: ids must be i32/i64, got ",
               ids.dtype());
  const DType odt = out_dtype ? *out_dtype : (is_quant(table.dtype()) ? DType::f32 : table.dtype());
  FLAGOS_CHECK(is_act_float(odt), "embedding: out_dtype must be f32/f16/bf16, got ", odt);
  const int64_t V = table.size(0), D = table.size(1);
  Shape rshape = ids.shape();
  rshape.push_back(D);
  Tensor o = Tensor::empty(rshape, odt, dev);
  if (ids.numel() == 0) return o;
  const Tensor idc = ids.contiguous();
  // Ids the host can read are checked here; ids in device memory are checked by the backend's
  // kernel on the device (no device->host round trip): a bad id gets a NaN row and the error is
  // raised at the device's next synchronization (see ops.h).
  if (check_ids && idc.is_host_accessible()) {
    const std::vector<int64_t> v = idc.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      FLAGOS_CHECK(v[i] >= 0 && v[i] < V, "embedding: id ", v[i], " at position ", i,
                   " is out of range for a vocabulary of ", V, " rows");
  }
  if (o.numel() == 0) return o;
  static const uint16_t id = op_id("embedding");
  launch(id, KernelKey{table.dtype(), ids.dtype()}, dev, {&table, &idc}, {&o}, nullptr);
  return o;
}

Tensor embedding(const Tensor& table, const Tensor& ids, std::optional<DType> out_dtype) {
  return embedding_impl(table, ids, out_dtype, true);
}

Tensor embedding_unchecked(const Tensor& table, const Tensor& ids, std::optional<DType> out_dtype) {
  return embedding_impl(table, ids, out_dtype, false);
}

}  // namespace flagos::ops
