// Multi-process test of the C++ layer (include/flagos/comm.hpp) on CPU tensors, run under
// `flagos launch -n N`. Inputs are random (seed chosen by rank 0, broadcast, printed); results are
// checked against float64 references; bad tensors must give flagos::InvalidArgument naming the problem.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "flagos/comm.hpp"
#include "flagos/tensor.h"

using flagos::DType;
using flagos::ReduceOp;
using flagos::Tensor;

namespace {

int g_pass = 0, g_fail = 0, g_rank = 0, g_n = 1;
uint64_t g_seed = 0;

// Value of element i on rank r for case k: small integers (exact in every dtype and sum over 5 ranks).
double value(int k, int r, int64_t i) {
  uint64_t x = g_seed ^ (static_cast<uint64_t>(k) << 40) ^ (static_cast<uint64_t>(r) << 32) ^ static_cast<uint64_t>(i);
  x += 0x9e3779b97f4a7c15ull;  // splitmix64
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<double>(static_cast<int>(x % 41) - 20);
}

Tensor filled(const flagos::Shape& shape, DType t, int k, int r, int64_t offset = 0) {
  Tensor x = Tensor::empty(shape, t);
  for (int64_t i = 0; i < x.numel(); ++i)
    flagos::store_from_double(static_cast<char*>(x.data()) + i * x.itemsize(), t, value(k, r, offset + i));
  return x;
}

Tensor poisoned(const flagos::Shape& shape, DType t) {
  Tensor x = Tensor::empty(shape, t);
  for (int64_t i = 0; i < x.numel(); ++i)
    flagos::store_from_double(static_cast<char*>(x.data()) + i * x.itemsize(), t,
                              flagos::dtype_info(t).is_float ? std::nan("") : 123.0);  // never a result
  return x;
}

void expect(const std::string& what, const Tensor& got, const std::function<double(int64_t)>& want) {
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = flagos::load_as_double(static_cast<const char*>(got.data()) + i * got.itemsize(), got.dtype());
    const double w = want(i);
    if (!(g == w)) {
      std::printf("FAIL %s (rank %d of %d, seed %llu): element %lld is %g, expected %g\n", what.c_str(), g_rank, g_n,
                  static_cast<unsigned long long>(g_seed), static_cast<long long>(i), g, w);
      ++g_fail;
      return;
    }
  }
  ++g_pass;
}

template <typename E>
void expect_throw(const std::string& what, const std::function<void()>& f, const char* needle) {
  try {
    f();
    std::printf("FAIL %s (rank %d): no exception\n", what.c_str(), g_rank);
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) {
      ++g_pass;
      return;
    }
    std::printf("FAIL %s (rank %d): message '%s' lacks '%s'\n", what.c_str(), g_rank, e.what(), needle);
  } catch (const std::exception& e) {
    std::printf("FAIL %s (rank %d): wrong exception: %s\n", what.c_str(), g_rank, e.what());
  }
  ++g_fail;
}

double sum_over_ranks(int k, int64_t i) {
  double s = 0;
  for (int r = 0; r < g_n; ++r) s += value(k, r, i);
  return s;
}

}  // namespace

int main() {
  const char* r = std::getenv("FLAGOS_RANK");
  const char* n = std::getenv("FLAGOS_WORLD_SIZE");
  g_rank = r ? std::atoi(r) : 0;
  g_n = n ? std::atoi(n) : 1;
  try {
    flagos::Communicator comm(g_n, flagos::Communicator::unique_id(), g_rank);
    // The seed: rank 0's clock, broadcast.
    Tensor seed = Tensor::empty({1}, DType::i64);
    seed.data_as<int64_t>()[0] = std::chrono::steady_clock::now().time_since_epoch().count();
    comm.broadcast(seed, 0);
    g_seed = static_cast<uint64_t>(seed.data_as<int64_t>()[0]);
    if (g_rank == 0) std::printf("seed %llu\n", static_cast<unsigned long long>(g_seed));
    const int64_t N = g_n;
    int k = 0;
    for (DType t : {DType::f32, DType::bf16, DType::i64, DType::i8, DType::f64}) {
      const std::string tn(flagos::dtype_name(t));
      for (int64_t len : {int64_t{0}, int64_t{1}, int64_t{13}, int64_t{4099}}) {
        const std::string sz = " " + tn + " len " + std::to_string(len);
        {  // in-place all-reduce of a 2-D tensor
          Tensor x = filled({len, 3}, t, ++k, g_rank);
          comm.all_reduce(x);
          expect("all_reduce" + sz, x, [&](int64_t i) { return sum_over_ranks(k, i); });
        }
        {  // out of place, max
          Tensor x = filled({len}, t, ++k, g_rank), y = poisoned({len}, t);
          comm.all_reduce(x, y, ReduceOp::max);
          expect("all_reduce max" + sz, y, [&](int64_t i) {
            double m = value(k, 0, i);
            for (int q = 1; q < g_n; ++q) m = std::max(m, value(k, q, i));
            return m;
          });
        }
        {  // broadcast from the last rank
          Tensor x = filled({len}, t, ++k, g_rank);
          comm.broadcast(x, g_n - 1);
          expect("broadcast" + sz, x, [&](int64_t i) { return value(k, g_n - 1, i); });
        }
        {  // reduce to rank 1 % n; other ranks pass an undefined output
          const int root = 1 % g_n;
          Tensor x = filled({len}, t, ++k, g_rank);
          Tensor y = g_rank == root ? poisoned({len}, t) : Tensor();
          comm.reduce(x, y, ReduceOp::sum, root);
          if (g_rank == root) expect("reduce" + sz, y, [&](int64_t i) { return sum_over_ranks(k, i); });
        }
        {  // all-gather into [n, len]
          Tensor x = filled({len}, t, ++k, g_rank), y = poisoned({N, len}, t);
          comm.all_gather(x, y);
          expect("all_gather" + sz, y, [&](int64_t i) { return value(k, static_cast<int>(i / std::max<int64_t>(len, 1)), i % std::max<int64_t>(len, 1)); });
        }
        {  // reduce-scatter [n * len] -> [len]
          Tensor x = filled({N * len}, t, ++k, g_rank), y = poisoned({len}, t);
          comm.reduce_scatter(x, y);
          expect("reduce_scatter" + sz, y, [&](int64_t i) { return sum_over_ranks(k, g_rank * len + i); });
        }
        {  // all-to-all
          Tensor x = filled({N, len}, t, ++k, g_rank), y = poisoned({N, len}, t);
          comm.all_to_all(x, y);
          expect("all_to_all" + sz, y, [&](int64_t i) {
            const int64_t l = std::max<int64_t>(len, 1);
            return value(k, static_cast<int>(i / l), g_rank * len + i % l);
          });
        }
        {  // gather to rank 0, scatter from rank 0
          Tensor x = filled({len}, t, ++k, g_rank);
          Tensor y = g_rank == 0 ? poisoned({N * len}, t) : Tensor();
          comm.gather(x, y, 0);
          if (g_rank == 0)
            expect("gather" + sz, y, [&](int64_t i) { const int64_t l = std::max<int64_t>(len, 1); return value(k, static_cast<int>(i / l), i % l); });
          Tensor s = g_rank == 0 ? filled({N * len}, t, ++k, 0) : Tensor();
          if (g_rank != 0) ++k;
          Tensor o = poisoned({len}, t);
          comm.scatter(s, o, 0);
          expect("scatter" + sz, o, [&](int64_t i) { return value(k, 0, g_rank * len + i); });
        }
      }
    }
    {  // send/recv ring in a group
      Tensor x = filled({777}, DType::f32, ++k, g_rank), y = poisoned({777}, DType::f32);
      flagos::comm_group_start();
      comm.send(x, (g_rank + 1) % g_n);
      comm.recv(y, (g_rank + g_n - 1) % g_n);
      flagos::comm_group_end();
      expect("send/recv ring", y, [&](int64_t i) { return value(k, (g_rank + g_n - 1) % g_n, i); });
      comm.barrier();
    }
    // Bad tensors: caught before any communication, so every rank may test them alone.
    Tensor m = filled({4, 6}, DType::f32, ++k, g_rank);
    Tensor mt = m.transpose(0, 1);
    expect_throw<flagos::InvalidArgument>("non-contiguous", [&] { comm.all_reduce(mt); }, "must be contiguous");
    Tensor i16 = Tensor::empty({4}, DType::i16);
    expect_throw<flagos::InvalidArgument>("i16", [&] { comm.all_reduce(i16); }, "dtype i16 has no communication type");
    Tensor small = Tensor::empty({3}, DType::f32);
    expect_throw<flagos::InvalidArgument>("all_gather size", [&] { comm.all_gather(m, small); }, "elements");
    Tensor other = Tensor::empty({24}, DType::i32);
    expect_throw<flagos::InvalidArgument>("dtype mismatch", [&] { comm.all_reduce(m, other); }, "dtypes differ");
    expect_throw<flagos::InvalidArgument>("bad root", [&] { comm.broadcast(m, g_n + 3); }, "root");
    expect_throw<flagos::InvalidArgument>("undefined", [&] { Tensor u; comm.all_reduce(u); }, "undefined");
  } catch (const std::exception& e) {
    std::printf("FATAL rank %d: %s\n", g_rank, e.what());
    return 3;
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
