// The CPU backend's thread pool. One pool per process, sized to the machine (or
// FLAGOS_NUM_THREADS); the calling thread works too, and nested calls run inline, so
// there is no oversubscription. Small ranges run on the calling thread only.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace flagos::cpu {

int num_threads();
void set_num_threads(int n);  // for benchmarks/tests; must not be called while work runs

// A non-owning reference to a callable taking (begin, end).
class RangeFn {
 public:
  template <typename F>
  RangeFn(F& f) : obj_(&f), call_([](void* o, int64_t b, int64_t e) { (*static_cast<F*>(o))(b, e); }) {}
  void operator()(int64_t b, int64_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn);

// Splits [0, n) into contiguous chunks of at least `grain` items and runs fn(begin, end) on them.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  if (n <= grain || num_threads() == 1) {
    fn(int64_t{0}, n);
    return;
  }
  auto& f = fn;
  parallel_for_impl(n, grain, RangeFn(f));
}

}  // namespace flagos::cpu
