#include "backends/cpu/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace flagos::cpu {
namespace {

thread_local bool tl_in_pool = false;

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    stop();
    nthreads_ = n < 1 ? 1 : n;
    quit_ = false;
    for (int i = 1; i < nthreads_; ++i) workers_.emplace_back([this, i] { worker(i); });
  }

  void run(int64_t n, int64_t grain, RangeFn fn) {
    std::lock_guard run_lock(run_mu_);  // one parallel region at a time (others wait)
    const int64_t max_chunks = (n + grain - 1) / grain;
    const int64_t chunks = std::min<int64_t>(nthreads_, max_chunks);
    {
      std::lock_guard lk(mu_);
      fn_ = &fn;
      n_ = n;
      chunks_ = chunks;
      done_.store(0, std::memory_order_relaxed);
      next_.store(0, std::memory_order_release);
      ++generation_;
    }
    cv_.notify_all();
    tl_in_pool = true;
    work();
    tl_in_pool = false;
    // Wait for the others: spin briefly, they finish at about the same time.
    while (done_.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
    std::lock_guard lk(mu_);
    fn_ = nullptr;
  }

 private:
  void work() {
    for (;;) {
      const int64_t c = next_.fetch_add(1, std::memory_order_acq_rel);
      if (c >= chunks_) return;
      const int64_t b = n_ * c / chunks_, e = n_ * (c + 1) / chunks_;
      (*fn_)(b, e);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
  void worker(int) {
    tl_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return quit_ || (generation_ != seen && fn_ != nullptr); });
        if (quit_) return;
        seen = generation_;
      }
      work();
    }
  }
  void stop() {
    {
      std::lock_guard lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mu_, mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  uint64_t generation_ = 0;
  RangeFn* fn_ = nullptr;
  int64_t n_ = 0, chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
};

int default_threads() {
  if (const char* e = std::getenv("FLAGOS_NUM_THREADS")) {
    const int n = std::atoi(e);
    if (n > 0) return n;
  }
  const unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn) {
  if (tl_in_pool) {  // nested: run inline
    fn(0, n);
    return;
  }
  pool().run(n, grain, fn);
}

}  // namespace flagos::cpu
