// topk and sort along the last dim of a (transposed) view, any strides. Values map to an
// unsigned key whose order is the op's order: NaN is the largest value (as torch), -0.0 equals
// +0.0, and ascending order is descending order of the complemented key, so every case becomes
// "larger key first, lower index on ties" (stable).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/loops.h"
#include "backends/cpu/portable_families.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::cpu {
namespace {

template <typename T>
inline uint64_t sort_key(const char* p) {
  if constexpr (std::is_floating_point_v<typename Io<T>::compute>) {
    double v = static_cast<double>(Io<T>::load(p));
    if (std::isnan(v)) return ~uint64_t{0};
    if (v == 0) v = 0.0;  // -0 == +0
    const uint64_t b = std::bit_cast<uint64_t>(v);
    return (b >> 63) ? ~b : (b | (uint64_t{1} << 63));
  } else {
    return static_cast<uint64_t>(static_cast<int64_t>(Io<T>::load(p))) ^ (uint64_t{1} << 63);
  }
}

struct Item {
  uint64_t key;
  int64_t idx;
};
// "a comes before b": larger key first, lower index on ties.
inline bool before(const Item& a, const Item& b) { return a.key > b.key || (a.key == b.key && a.idx < b.idx); }

// Byte offset of row r's first element for a tensor whose last dim is the row.
inline int64_t row_offset(const Tensor& t, int64_t r) {
  int64_t off = 0;
  for (int d = t.dim() - 2; d >= 0; --d) {
    const int64_t i = r % t.size(d);
    r /= t.size(d);
    off += i * t.stride(d);
  }
  return off;
}

// Writes the first `k` items (already ordered) as values + indices.
template <typename T>
void write_row(const Item* items, int64_t k, const char* xr, int64_t xs, char* vr, int64_t vs, char* ir,
               int64_t is) {
  for (int64_t j = 0; j < k; ++j) {
    std::memcpy(vr + j * vs, xr + items[j].idx * xs, sizeof(T));
    std::memcpy(ir + j * is, &items[j].idx, sizeof(int64_t));
  }
}

template <typename T>
void topk_kernel(const KernelArgs& a) {
  const TopkParams& p = a.p<TopkParams>();
  const Tensor& x = *a.in[0];
  Tensor& vals = *a.out[0];
  Tensor& idx = *a.out[1];
  const int last = x.dim() - 1;
  const int64_t n = x.size(last), k = p.k;
  const int64_t rows = x.numel() / n;
  const int64_t xs = x.stride(last), vs = vals.stride(last), is = idx.stride(last);
  const uint64_t flip = p.largest ? 0 : ~uint64_t{0};
  const char* xb = static_cast<const char*>(x.data());
  char* vb = static_cast<char*>(vals.data());
  char* ib = static_cast<char*>(idx.data());
  parallel_for(rows, std::max<int64_t>(1, 32768 / n), [&](int64_t rb, int64_t re) {
    std::vector<Item> items;
    for (int64_t r = rb; r < re; ++r) {
      const char* xr = xb + row_offset(x, r);
      if (k * 8 >= n) {  // large k: partial sort of the whole row
        items.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) items[static_cast<size_t>(i)] = {sort_key<T>(xr + i * xs) ^ flip, i};
        std::partial_sort(items.begin(), items.begin() + k, items.end(), before);
      } else {  // small k: a heap of the k best so far, its worst on top; later equal keys never enter
        items.resize(static_cast<size_t>(k));
        for (int64_t i = 0; i < k; ++i) items[static_cast<size_t>(i)] = {sort_key<T>(xr + i * xs) ^ flip, i};
        std::make_heap(items.begin(), items.end(), before);
        uint64_t worst = items.front().key;
        for (int64_t i = k; i < n; ++i) {
          const uint64_t key = sort_key<T>(xr + i * xs) ^ flip;
          if (key <= worst) continue;
          std::pop_heap(items.begin(), items.end(), before);
          items.back() = {key, i};
          std::push_heap(items.begin(), items.end(), before);
          worst = items.front().key;
        }
        std::sort(items.begin(), items.end(), before);
      }
      write_row<T>(items.data(), k, xr, xs, vb + row_offset(vals, r), vs, ib + row_offset(idx, r), is);
    }
  });
}

template <typename T>
void sort_kernel(const KernelArgs& a) {
  const SortParams& p = a.p<SortParams>();
  const Tensor& x = *a.in[0];
  Tensor& vals = *a.out[0];
  Tensor& idx = *a.out[1];
  const int last = x.dim() - 1;
  const int64_t n = x.size(last);
  const int64_t rows = x.numel() / n;
  const int64_t xs = x.stride(last), vs = vals.stride(last), is = idx.stride(last);
  const uint64_t flip = p.descending ? 0 : ~uint64_t{0};
  const char* xb = static_cast<const char*>(x.data());
  char* vb = static_cast<char*>(vals.data());
  char* ib = static_cast<char*>(idx.data());
  parallel_for(rows, std::max<int64_t>(1, 32768 / n), [&](int64_t rb, int64_t re) {
    std::vector<Item> items(static_cast<size_t>(n));
    for (int64_t r = rb; r < re; ++r) {
      const char* xr = xb + row_offset(x, r);
      for (int64_t i = 0; i < n; ++i) items[static_cast<size_t>(i)] = {sort_key<T>(xr + i * xs) ^ flip, i};
      std::sort(items.begin(), items.end(), before);  // indices are unique: a total order, i.e. stable
      write_row<T>(items.data(), n, xr, xs, vb + row_offset(vals, r), vs, ib + row_offset(idx, r), is);
    }
  });
}

template <DType D>
void add_both(KernelRegistry& reg, uint16_t backend_id) {
  using T = typename StorageOf<D>::type;
  reg.add("topk", backend_id, KernelKey{D}, &topk_kernel<T>);
  reg.add("sort", backend_id, KernelKey{D}, &sort_kernel<T>);
}

}  // namespace

void register_sort(KernelRegistry& reg, uint16_t backend_id) {
  add_both<DType::f32>(reg, backend_id);
  add_both<DType::f64>(reg, backend_id);
  add_both<DType::f16>(reg, backend_id);
  add_both<DType::bf16>(reg, backend_id);
  add_both<DType::i8>(reg, backend_id);
  add_both<DType::u8>(reg, backend_id);
  add_both<DType::i16>(reg, backend_id);
  add_both<DType::i32>(reg, backend_id);
  add_both<DType::i64>(reg, backend_id);
}

}  // namespace flagos::cpu
