#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "backends/cpu/thread_pool.h"

using namespace flagos::cpu;

TEST(ThreadPool, CoversRangeExactlyOnce) {
  for (int64_t n : {1, 7, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_for(n, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPool, NestedRegionsRunInline) {
  std::atomic<int64_t> total{0};
  parallel_for(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(100, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 6400);
}

TEST(ThreadPool, ManyRegionsInARow) {
  int64_t sum = 0;
  for (int r = 0; r < 2000; ++r) {
    std::atomic<int64_t> s{0};
    parallel_for(1000, 10, [&](int64_t b, int64_t e) { s += e - b; });
    sum += s.load();
  }
  EXPECT_EQ(sum, 2000 * 1000);
}
