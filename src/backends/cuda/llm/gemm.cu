// cuBLASLt GEMM (one handle per device; descriptors and the heuristic's algorithm cached per
// shape/layout/alignment), the matmul op on top of it, and linear's conversion / bias helpers.
// Precision: f32 GEMMs run with CUBLAS_COMPUTE_32F, i.e. without TF32 (bit patterns of f32 products
// are kept; ~8x slower than TF32 on the tensor cores, chosen for accuracy since the op contract and
// the conformance tests are f32); f16/bf16 accumulate in f32; f64 in f64.
// matmul: each operand is passed to cuBLAS as is when one of its two inner strides is 1 (a
// transposed view becomes op T); other layouts are made contiguous first. Batch dims that
// collapse to one stride per operand run as one strided-batched call, others (and broadcast
// batches) as one call per matrix. When cuBLASLt offers no algorithm for a layout (odd leading
// dimensions of 16-bit matrices, say), the classic cuBLAS strided-batched GEMM runs instead.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/cuda/llm/gemm.cuh"
#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/backend.h"

namespace flagos::cuda::llm {
namespace {

void check_cublas(cublasStatus_t st, const char* what, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS)
    fail<RuntimeError>("cuBLAS: ", what, " failed: ", cublasLtGetStatusString(st), " (", file, ":", line, ")");
}
#define LT_CHECK(call) check_cublas((call), #call, __FILE__, __LINE__)

constexpr size_t kWorkspace = size_t{32} << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default: fail<NotSupported>("cuBLASLt gemm: unsupported dtype ", t);
  }
}

// Largest power of two (<= 256) dividing the address and the batch stride in bytes.
int64_t alignment(const void* p, int64_t stride_bytes) {
  uint64_t v = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(stride_bytes) | 256u;
  return static_cast<int64_t>(v & (~v + 1));
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t ws = 0;
  ~Plan() {
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

using Key = std::array<int64_t, 17>;

struct DeviceLt {
  std::mutex mu;
  cublasLtHandle_t handle = nullptr;
  cublasHandle_t classic = nullptr;  // fallback; created on first use
  std::map<Key, std::unique_ptr<Plan>> plans;
};

DeviceLt& device_lt(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<DeviceLt>> all;
  std::lock_guard lk(mu);
  auto& p = all[device];
  if (!p) {
    p = std::make_unique<DeviceLt>();
    LT_CHECK(cublasLtCreate(&p->handle));
  }
  return *p;
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  LT_CHECK(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t b = static_cast<int32_t>(batch);
    LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof(b)));
    LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return l;
}

std::unique_ptr<Plan> make_plan(cublasLtHandle_t h, const GemmCall& g, int64_t al_a, int64_t al_b, int64_t al_c) {
  auto p = std::make_unique<Plan>();
  const cudaDataType_t t = cuda_type(g.dt);
  const bool f64 = g.dt == DType::f64;
  LT_CHECK(cublasLtMatmulDescCreate(&p->op, f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F, f64 ? CUDA_R_64F : CUDA_R_32F));
  const cublasOperation_t ta = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  p->la = make_layout(t, g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda, g.batch, g.sa);
  p->lb = make_layout(t, g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb, g.batch, g.sb);
  p->lc = make_layout(t, g.m, g.n, g.ldc, g.batch, g.sc);
  cublasLtMatmulPreference_t pref = nullptr;
  LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspace;
  const uint32_t a32 = static_cast<uint32_t>(al_a), b32 = static_cast<uint32_t>(al_b), c32 = static_cast<uint32_t>(al_c);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32, sizeof(a32));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &b32, sizeof(b32));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &c32, sizeof(c32));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &c32, sizeof(c32));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) return nullptr;
  p->algo = res.algo;
  p->ws = res.workspaceSize;
  return p;
}

// The classic cuBLAS GEMM (any leading dimensions); same compute types as the cuBLASLt path.
void classic_gemm(DeviceLt& lt, const GemmCall& g, cudaStream_t s) {
  std::lock_guard lk(lt.mu);  // the handle's stream is per call
  if (!lt.classic) LT_CHECK(cublasCreate(&lt.classic));
  LT_CHECK(cublasSetStream(lt.classic, s));
  const cudaDataType_t t = cuda_type(g.dt);
  const cublasOperation_t ta = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  if (g.dt == DType::f64) {
    const double alpha = 1.0, beta = g.beta;
    LT_CHECK(cublasGemmStridedBatchedEx(lt.classic, ta, tb, m, n, k, &alpha, g.A, t, static_cast<int>(g.lda), g.sa, g.B, t,
                                        static_cast<int>(g.ldb), g.sb, &beta, g.C, t, static_cast<int>(g.ldc), g.sc,
                                        static_cast<int>(g.batch), CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
  } else {
    const float alpha = 1.f, beta = g.beta;
    LT_CHECK(cublasGemmStridedBatchedEx(lt.classic, ta, tb, m, n, k, &alpha, g.A, t, static_cast<int>(g.lda), g.sa, g.B, t,
                                        static_cast<int>(g.ldb), g.sb, &beta, g.C, t, static_cast<int>(g.ldc), g.sc,
                                        static_cast<int>(g.batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace

void gemm(const KernelArgs& a, const GemmCall& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  const int device = a.stream.device().index;
  const cudaStream_t s = kernel_stream(a);
  DeviceLt& lt = device_lt(device);
  const int64_t es = static_cast<int64_t>(element_size(g.dt));
  const int64_t al_a = alignment(g.A, g.sa * es), al_b = alignment(g.B, g.sb * es), al_c = alignment(g.C, g.sc * es);
  const Key key{static_cast<int64_t>(g.dt), g.ta, g.tb, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch, g.sa, g.sb,
                g.sc, al_a, al_b, al_c, g.beta != 0.f};
  Plan* plan = nullptr;
  {
    std::lock_guard lk(lt.mu);
    auto it = lt.plans.find(key);
    if (it == lt.plans.end()) {
      if (lt.plans.size() >= 4096) lt.plans.clear();  // bound the cache (many distinct shapes)
      it = lt.plans.emplace(key, make_plan(lt.handle, g, al_a, al_b, al_c)).first;
    }
    plan = it->second.get();
  }
  if (!plan) {
    classic_gemm(lt, g, s);
    return;
  }
  Tensor ws;
  void* wsp = nullptr;
  if (plan->ws > 0) {
    ws = workspace(a, static_cast<int64_t>(plan->ws));
    wsp = ws.data();
  }
  if (g.dt == DType::f64) {
    const double alpha = 1.0, beta = g.beta;
    LT_CHECK(cublasLtMatmul(lt.handle, plan->op, &alpha, g.A, plan->la, g.B, plan->lb, &beta, g.C, plan->lc, g.C,
                            plan->lc, &plan->algo, wsp, plan->ws, s));
  } else {
    const float alpha = 1.f, beta = g.beta;
    LT_CHECK(cublasLtMatmul(lt.handle, plan->op, &alpha, g.A, plan->la, g.B, plan->lb, &beta, g.C, plan->lc, g.C,
                            plan->lc, &plan->algo, wsp, plan->ws, s));
  }
}

// ---------------------------------------------------------------- conversion / bias

namespace {

template <typename S, typename D>
__global__ void convert_kernel(const S* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, D* dst) {
  const int64_t total = rows * cols;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[i] = from_f<D>(to_f(src[r * rs + c * cs]));
  }
}

template <typename Y>
__global__ void bias_kernel(Y* y, int64_t M, int64_t N, const float* bias, bool overwrite) {
  const int64_t total = M * N;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const float b = bias ? bias[i % N] : 0.f;
    y[i] = from_f<Y>(overwrite ? b : to_f(y[i]) + b);
  }
}

template <typename F>
void with_float_type(DType t, F&& f) {
  if (t == DType::f32) f(static_cast<float*>(nullptr));
  else if (t == DType::f16) f(static_cast<__half*>(nullptr));
  else if (t == DType::bf16) f(static_cast<__nv_bfloat16*>(nullptr));
  else fail<NotSupported>("cuda linear helper: unsupported dtype ", t);
}

}  // namespace

void convert_matrix(const void* src, DType src_dt, int64_t rows, int64_t cols, int64_t rs, int64_t cs, void* dst,
                    DType dst_dt, int device, cudaStream_t s) {
  const int64_t total = rows * cols;
  if (total == 0) return;
  with_float_type(src_dt, [&](auto* sp) {
    using S = std::remove_pointer_t<decltype(sp)>;
    with_float_type(dst_dt, [&](auto* dp) {
      using D = std::remove_pointer_t<decltype(dp)>;
      convert_kernel<S, D><<<grid_for(total, device), kThreads, 0, s>>>(static_cast<const S*>(src), rows, cols, rs, cs,
                                                                         static_cast<D*>(dst));
    });
  });
  CUDA_CHECK_LAUNCH();
}

void bias_rows(void* y, DType y_dt, int64_t M, int64_t N, const float* bias, bool overwrite, int device,
               cudaStream_t s) {
  const int64_t total = M * N;
  if (total == 0) return;
  with_float_type(y_dt, [&](auto* yp) {
    using Y = std::remove_pointer_t<decltype(yp)>;
    bias_kernel<Y><<<grid_for(total, device), kThreads, 0, s>>>(static_cast<Y*>(y), M, N, bias, overwrite);
  });
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- matmul

namespace {

// A row-major [rows, cols] view (element strides rs, cs) as a column-major BLAS operand of the
// transposed product: `normal` = the view is col-major cols x rows with leading dim ld (op N),
// otherwise rows x cols with ld (op T). False when neither works.
bool blas_operand(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool& normal, int64_t& ld) {
  if ((cols == 1 || cs == 1) && (rows == 1 || rs >= std::max<int64_t>(1, cols))) {
    normal = true;
    ld = rows == 1 ? std::max<int64_t>(1, cols) : rs;
    return true;
  }
  if ((rows == 1 || rs == 1) && (cols == 1 || cs >= std::max<int64_t>(1, rows))) {
    normal = false;
    ld = cols == 1 ? std::max<int64_t>(1, rows) : cs;
    return true;
  }
  return false;
}

// One stride (elements) for the flattened batch dims [0, nb) of t, or false.
bool batch_stride(const Tensor& t, int nb, int64_t& stride) {
  stride = 0;
  int64_t expect = -1;
  for (int d = nb - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    const int64_t s = est(t, d);
    if (expect < 0) {
      stride = s;
    } else if (s != expect) {
      return false;
    }
    expect = s * t.size(d);
  }
  return true;
}

template <DType D>
void matmul_launch(const KernelArgs& a) {
  Tensor A = *a.in[0];
  Tensor B = *a.in[1];
  Tensor& Cout = *a.out[0];
  const int nd = Cout.dim();
  const int64_t M = Cout.size(nd - 2), N = Cout.size(nd - 1), K = A.size(nd - 1);
  const int nb = nd - 2;
  int64_t nbatch = 1;
  for (int i = 0; i < nb; ++i) nbatch *= Cout.size(i);
  if (Cout.numel() == 0) return;
  const int device = a.stream.device().index;
  const cudaStream_t s = kernel_stream(a);
  if (K == 0) {  // the op layer fills zeros; kept for direct kernel calls
    CUDA_CHECK(cudaMemsetAsync(Cout.data(), 0, Cout.nbytes(), s));
    return;
  }
  // C^T (N x M, col-major) = B^T (N x K) * A^T (K x M)
  bool bn, an, cn;
  int64_t ldb, lda, ldc;
  if (!blas_operand(K, N, est(B, nd - 2), est(B, nd - 1), bn, ldb)) {
    B = B.contiguous();
    blas_operand(K, N, est(B, nd - 2), est(B, nd - 1), bn, ldb);
  }
  if (!blas_operand(M, K, est(A, nd - 2), est(A, nd - 1), an, lda)) {
    A = A.contiguous();
    blas_operand(M, K, est(A, nd - 2), est(A, nd - 1), an, lda);
  }
  Tensor C = Cout;
  if (!blas_operand(M, N, est(C, nd - 2), est(C, nd - 1), cn, ldc) || !cn) {
    C = Tensor::empty(Cout.shape(), Cout.dtype(), Cout.device());
    blas_operand(M, N, est(C, nd - 2), est(C, nd - 1), cn, ldc);
  }
  GemmCall g;
  g.dt = D;
  g.ta = !bn;
  g.tb = !an;
  g.m = N, g.n = M, g.k = K;
  g.lda = ldb, g.ldb = lda, g.ldc = ldc;
  int64_t sa = 0, sb = 0, sc = 0;
  const bool strided = nbatch == 1 || (batch_stride(B, nb, sa) && batch_stride(A, nb, sb) && batch_stride(C, nb, sc) &&
                                       sa != 0 && sb != 0 && sc != 0);
  if (strided) {
    g.A = B.data(), g.B = A.data(), g.C = C.data();
    g.sa = sa, g.sb = sb, g.sc = sc;
    g.batch = nbatch;
    gemm(a, g);
  } else {
    for (int64_t bi = 0; bi < nbatch; ++bi) {
      int64_t r = bi, oa = 0, ob = 0, oc = 0;
      for (int d = nb - 1; d >= 0; --d) {
        const int64_t i = r % Cout.size(d);
        r /= Cout.size(d);
        oa += i * A.stride(d);
        ob += i * B.stride(d);
        oc += i * C.stride(d);
      }
      g.A = static_cast<const char*>(B.data()) + ob;
      g.B = static_cast<const char*>(A.data()) + oa;
      g.C = static_cast<char*>(C.data()) + oc;
      g.batch = 1;
      gemm(a, g);
    }
  }
  if (C.data() != Cout.data()) backend_of(Cout.device()).copy_strided(Cout, C, a.stream.handle());
  (void)device;
}

}  // namespace

void register_gemm(KernelRegistry& reg, uint16_t b) {
  reg.add("matmul", b, KernelKey{DType::f32}, &matmul_launch<DType::f32>);
  reg.add("matmul", b, KernelKey{DType::f64}, &matmul_launch<DType::f64>);
  reg.add("matmul", b, KernelKey{DType::f16}, &matmul_launch<DType::f16>);
  reg.add("matmul", b, KernelKey{DType::bf16}, &matmul_launch<DType::bf16>);
}

}  // namespace flagos::cuda::llm
