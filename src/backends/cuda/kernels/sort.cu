// sort and topk along the last dim of a (transposed) view, any strides. Each value maps to an
// unsigned 64-bit key whose descending order is the op's order (NaN largest as in torch, -0.0 ==
// +0.0, ascending = complemented keys); ties keep the lower index, so (key, index) is a total
// order and every result is the stable one. Rows of up to 4096 elements are bitonic-sorted in
// shared memory by one block; longer rows are cut into such sorted tiles that merge passes
// (each element finds its place in the partner run by binary search) join, then the first k
// (topk) or all (sort) items are written out.
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels/families.h"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

constexpr int kTile = 4096;        // elements sorted in shared memory by one block
constexpr int kSortThreads = 1024;
constexpr uint32_t kPadIdx = 0xffffffffu;  // padding sorts after every real item

// Row r's first element for a tensor whose last dim is the row.
struct RowAddr {
  int nd = 0;  // leading dims
  int64_t size[kMaxDims] = {}, stride[kMaxDims] = {};
  int64_t col_stride = 0;
  __device__ __forceinline__ int64_t row_offset(int64_t r) const {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      off += (r % size[d]) * stride[d];
      r /= size[d];
    }
    return off;
  }
};

RowAddr row_addr(const Tensor& t) {
  RowAddr a;
  a.nd = t.dim() - 1;
  for (int d = 0; d < a.nd; ++d) {
    a.size[d] = t.size(d);
    a.stride[d] = t.stride(d);
  }
  a.col_stride = t.stride(t.dim() - 1);
  return a;
}

template <typename T>
__device__ __forceinline__ uint64_t sort_key(const char* p) {
  if constexpr (is_float_v<T>) {
    double v = static_cast<double>(load(reinterpret_cast<const T*>(p)));
    if (v != v) return ~uint64_t{0};
    if (v == 0) v = 0.0;  // -0 == +0
    const uint64_t b = static_cast<uint64_t>(__double_as_longlong(v));
    return (b >> 63) ? ~b : (b | (uint64_t{1} << 63));
  } else {
    return static_cast<uint64_t>(static_cast<int64_t>(*reinterpret_cast<const T*>(p))) ^ (uint64_t{1} << 63);
  }
}

// "a comes before b": larger key first, lower index on ties.
__device__ __forceinline__ bool before(uint64_t ka, uint32_t ia, uint64_t kb, uint32_t ib) {
  return ka > kb || (ka == kb && ia < ib);
}

struct SortArgs {
  const char* x = nullptr;
  RowAddr xa, va, ia;  // x, values out, indices out
  char* vals = nullptr;
  char* idx = nullptr;
  int64_t rows = 0, n = 0, k = 0;  // k: items written per row
  int64_t row0 = 0;                // first row of this launch (blockIdx.y counts from it)
  uint64_t flip = 0;               // ~0 for ascending / smallest
  uint64_t* keys = nullptr;        // [rows, n] sorted runs (long rows only)
  uint32_t* pos = nullptr;
};

template <typename T>
__device__ __forceinline__ void write_item(const SortArgs& a, int64_t r, int64_t j, uint32_t i) {
  const char* src = a.x + a.xa.row_offset(r) + static_cast<int64_t>(i) * a.xa.col_stride;
  *reinterpret_cast<T*>(a.vals + a.va.row_offset(r) + j * a.va.col_stride) = *reinterpret_cast<const T*>(src);
  *reinterpret_cast<int64_t*>(a.idx + a.ia.row_offset(r) + j * a.ia.col_stride) = i;
}

// Block (row, tile): bitonic sort of up to kTile items in shared memory (p2: a power of two >= the
// tile's length). Short rows (one tile) are written out directly; tiles of long rows go to a.keys/a.pos.
template <typename T>
__global__ void __launch_bounds__(kSortThreads) tile_sort_kernel(SortArgs a, int p2) {
  extern __shared__ uint64_t smem[];
  uint64_t* key = smem;
  uint32_t* ix = reinterpret_cast<uint32_t*>(smem + p2);
  const int64_t r = a.row0 + blockIdx.y;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t len = a.n - t0 < kTile ? a.n - t0 : kTile;
  const char* xr = a.x + a.xa.row_offset(r);
  for (int i = threadIdx.x; i < p2; i += blockDim.x) {
    if (i < len) {
      key[i] = sort_key<T>(xr + (t0 + i) * a.xa.col_stride) ^ a.flip;
      ix[i] = static_cast<uint32_t>(t0 + i);
    } else {
      key[i] = 0;
      ix[i] = kPadIdx;
    }
  }
  __syncthreads();
  for (int k = 2; k <= p2; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = threadIdx.x; t < p2 / 2; t += blockDim.x) {
        const int i = 2 * j * (t / j) + (t % j), l = i + j;
        const bool forward = (i & k) == 0;  // this half of the bitonic sequence ends up in "before" order
        const bool out_of_order = forward ? before(key[l], ix[l], key[i], ix[i]) : before(key[i], ix[i], key[l], ix[l]);
        if (out_of_order) {
          const uint64_t tk = key[i];
          key[i] = key[l];
          key[l] = tk;
          const uint32_t ti = ix[i];
          ix[i] = ix[l];
          ix[l] = ti;
        }
      }
      __syncthreads();
    }
  }
  if (a.keys == nullptr) {
    for (int j = threadIdx.x; j < a.k; j += blockDim.x) write_item<T>(a, r, j, ix[j]);
    return;
  }
  for (int i = threadIdx.x; i < len; i += blockDim.x) {
    a.keys[r * a.n + t0 + i] = key[i];
    a.pos[r * a.n + t0 + i] = ix[i];
  }
}

// One merge pass: runs of `width` sorted items become runs of 2 * width. Each item's output slot is
// its rank in its own run plus the number of partner-run items that come before it.
__global__ void __launch_bounds__(kThreads) merge_kernel(const uint64_t* keys, const uint32_t* pos, uint64_t* okeys,
                                                         uint32_t* opos, int64_t rows, int64_t n, int64_t width) {
  const int64_t total = rows * n;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t r = e / n, p = e % n;
    const int64_t run = p / width, i = p % width;
    const int64_t pair0 = (run & ~int64_t{1}) * width;  // first element of the merged run
    const bool left = (run & 1) == 0;
    const int64_t partner = left ? pair0 + width : pair0;
    const int64_t plen = partner >= n ? 0 : (partner + width <= n ? width : n - partner);
    const uint64_t k = keys[e];
    const uint32_t x = pos[e];
    const uint64_t* pk = keys + r * n + partner;
    const uint32_t* pp = pos + r * n + partner;
    int64_t lo = 0, hi = plen;  // count partner items before (k, x)
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if (before(pk[mid], pp[mid], k, x)) lo = mid + 1;
      else hi = mid;
    }
    const int64_t out = r * n + pair0 + i + lo;
    okeys[out] = k;
    opos[out] = x;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) write_kernel(SortArgs a) {
  const int64_t total = a.rows * a.k;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t r = e / a.k, j = e % a.k;
    write_item<T>(a, r, j, a.pos[r * a.n + j]);
  }
}

template <typename T>
void run_sort(const KernelArgs& args, int64_t k, bool descending_order) {
  const Tensor& x = *args.in[0];
  const Tensor& vals = *args.out[0];
  const Tensor& idx = *args.out[1];
  SortArgs a;
  a.n = x.size(x.dim() - 1);
  a.rows = a.n ? x.numel() / a.n : 0;
  a.k = k;
  if (a.rows == 0 || a.k == 0) return;
  FLAGOS_CHECK(a.n < int64_t{kPadIdx}, "cuda sort: rows of ", a.n, " elements are too long (max 2^32 - 1)");
  a.x = static_cast<const char*>(x.data());
  a.xa = row_addr(x);
  a.va = row_addr(vals);
  a.ia = row_addr(idx);
  a.vals = static_cast<char*>(vals.data());
  a.idx = static_cast<char*>(idx.data());
  a.flip = descending_order ? 0 : ~uint64_t{0};
  cudaStream_t s = kernel_stream(args);
  const int dev = x.device().index;
  const int64_t tiles = (a.n + kTile - 1) / kTile;
  int p2 = 2;
  while (p2 < (tiles == 1 ? a.n : kTile)) p2 <<= 1;
  const unsigned threads = static_cast<unsigned>(std::min(kSortThreads, std::max(32, p2 / 2)));
  const size_t smem = static_cast<size_t>(p2) * (sizeof(uint64_t) + sizeof(uint32_t));
  // The grid's y dimension (rows) is limited to 65535: launch in row chunks.
  auto sort_tiles = [&](SortArgs c) {
    for (int64_t r0 = 0; r0 < a.rows; r0 += 65535) {
      c.row0 = r0;
      const auto nrows = static_cast<unsigned>(std::min<int64_t>(65535, a.rows - r0));
      tile_sort_kernel<T><<<dim3(static_cast<unsigned>(tiles), nrows), threads, smem, s>>>(c, p2);
      CUDA_CHECK_LAUNCH();
    }
  };
  if (tiles == 1) {
    sort_tiles(a);
    return;
  }
  Tensor kbuf = Tensor::empty({2 * a.rows * a.n}, DType::i64, x.device());
  Tensor pbuf = Tensor::empty({2 * a.rows * a.n}, DType::i32, x.device());
  uint64_t* k0 = static_cast<uint64_t*>(kbuf.data());
  uint64_t* k1 = k0 + a.rows * a.n;
  uint32_t* q0 = static_cast<uint32_t*>(pbuf.data());
  uint32_t* q1 = q0 + a.rows * a.n;
  a.keys = k0;
  a.pos = q0;
  sort_tiles(a);
  for (int64_t w = kTile; w < a.n; w *= 2) {
    merge_kernel<<<grid_for(a.rows * a.n, dev), kThreads, 0, s>>>(k0, q0, k1, q1, a.rows, a.n, w);
    CUDA_CHECK_LAUNCH();
    std::swap(k0, k1);
    std::swap(q0, q1);
  }
  a.keys = k0;
  a.pos = q0;
  write_kernel<T><<<grid_for(a.rows * a.k, dev), kThreads, 0, s>>>(a);
  CUDA_CHECK_LAUNCH();
}

template <DType D>
void sort_k(const KernelArgs& a) {
  run_sort<type_of<D>>(a, a.in[0]->size(a.in[0]->dim() - 1), a.p<SortParams>().descending);
}

template <DType D>
void topk_k(const KernelArgs& a) {
  const auto& p = a.p<TopkParams>();
  run_sort<type_of<D>>(a, p.k, p.largest);
}

}  // namespace

void register_sort(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG(t)                                               \
  reg.add("sort", b, KernelKey{DType::t}, &sort_k<DType::t>);       \
  reg.add("topk", b, KernelKey{DType::t}, &topk_k<DType::t>);
  FLAGOS_REG(f32) FLAGOS_REG(f64) FLAGOS_REG(f16) FLAGOS_REG(bf16) FLAGOS_REG(i8) FLAGOS_REG(u8) FLAGOS_REG(i16)
  FLAGOS_REG(i32) FLAGOS_REG(i64)
#undef FLAGOS_REG
}

}  // namespace flagos::cuda
