// quantize (f32 -> GGUF block types) and dequantize (block types -> f32/f16/bf16).
// The per-block math lives in quant_blocks.h; these kernels walk rows and split blocks over
// the thread pool.
#include <cstring>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/quant_blocks.h"
#include "backends/cpu/loops.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

using namespace flagos::quant;

// Address of row r of a [..., K] tensor whose outer dims may have any strides.
struct Rows {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  char* base = nullptr;
  explicit Rows(const Tensor& t) : base(static_cast<char*>(t.data())) {
    for (int i = 0; i + 1 < t.dim(); ++i) {
      shape[nd] = t.size(i);
      strides[nd] = t.stride(i);
      ++nd;
    }
  }
  char* row(int64_t r) const {
    char* p = base;
    for (int i = nd - 1; i >= 0; --i) {
      p += (r % shape[i]) * strides[i];
      r /= shape[i];
    }
    return p;
  }
};

constexpr int64_t kBlockGrain = 2048;  // blocks per task (~64K-512K elements)

template <typename B>
void quantize_kernel(const KernelArgs& a) {
  // The op layer passes a contiguous f32 input and a new contiguous block tensor.
  const float* x = a.in[0]->data_as<float>();
  char* q = static_cast<char*>(a.out[0]->data());
  const int64_t nblocks = a.in[0]->numel() / BlockTraits<B>::n;
  const int64_t grain = BlockTraits<B>::n == 256 ? kBlockGrain / 32 : kBlockGrain;
  parallel_for(nblocks, grain, [&](int64_t b, int64_t e) {
    quant_row<B>(x + b * BlockTraits<B>::n, q + b * static_cast<int64_t>(sizeof(B)), (e - b) * BlockTraits<B>::n);
  });
}

template <typename B, DType OD>
void dequantize_kernel(const KernelArgs& a) {
  const Tensor& in = *a.in[0];
  Tensor& out = *a.out[0];
  if (in.numel() == 0) return;
  constexpr int BN = BlockTraits<B>::n;
  const int64_t K = in.shape().back();
  const int64_t per_row = K / BN;
  const int64_t nblocks = in.numel() / BN;
  const Rows src(in), dst(out);
  const int64_t ost = out.stride(-1);
  parallel_for(nblocks, kBlockGrain, [&](int64_t b, int64_t e) {
    alignas(32) float buf[BN];
    for (int64_t i = b; i < e;) {
      const int64_t r = i / per_row, j0 = i % per_row;
      const int64_t j1 = std::min(per_row, j0 + (e - i));
      const char* s = src.row(r) + j0 * static_cast<int64_t>(sizeof(B));
      char* d = dst.row(r) + j0 * BN * ost;
      if (OD == DType::f32 && ost == 4) {
        dequant_row<B>(s, reinterpret_cast<float*>(d), (j1 - j0) * BN);
      } else {
        for (int64_t j = j0; j < j1; ++j, s += sizeof(B), d += BN * ost) {
          dequant_row<B>(s, buf, BN);
          using T = typename StorageOf<OD>::type;
          for (int k = 0; k < BN; ++k) Io<T>::store(d + k * ost, buf[k]);
        }
      }
      i += j1 - j0;
    }
  });
}

}  // namespace

void register_quant(KernelRegistry& reg, uint16_t backend) {
  for (DType qt : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q4_k, DType::q5_k,
                   DType::q6_k}) {
    visit_block_type(qt, [&]<typename B>() {
      reg.add("quantize", backend, KernelKey{qt, DType::f32}, &quantize_kernel<B>);
      reg.add("dequantize", backend, KernelKey{DType::f32, qt}, &dequantize_kernel<B, DType::f32>);
      reg.add("dequantize", backend, KernelKey{DType::f16, qt}, &dequantize_kernel<B, DType::f16>);
      reg.add("dequantize", backend, KernelKey{DType::bf16, qt}, &dequantize_kernel<B, DType::bf16>);
    });
  }
}

}  // namespace flagos::cpu::FLAGOS_ISA
