// The caching device allocator (see allocator.h).
#include "backends/cuda/allocator.h"

#include <algorithm>

#include "backends/cuda/cuda_check.h"
#include "flagos/error.h"

namespace flagos::cuda {

DeviceAllocator::~DeviceAllocator() {
  // Blocks are left to process teardown: the CUDA runtime may already be unloading here.
}

size_t DeviceAllocator::size_class(size_t bytes) {
  constexpr size_t kMin = 512, kLarge = size_t{64} << 20, kLargeStep = size_t{2} << 20;
  if (bytes <= kMin) return kMin;
  if (bytes >= kLarge) return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  const int lg = 63 - __builtin_clzll(bytes);
  const int steps_log2 = bytes < (size_t{1} << 20) ? 2 : 3;  // 4 or 8 classes per power of two
  const size_t step = size_t{1} << (lg - steps_log2);
  return (bytes + step - 1) / step * step;
}

void DeviceAllocator::stream_wait(cudaStream_t waiter, cudaStream_t owner) {
  if (!wait_event_) CUDA_CHECK(cudaEventCreateWithFlags(&wait_event_, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(wait_event_, owner));
  CUDA_CHECK(cudaStreamWaitEvent(waiter, wait_event_, 0));
}

void* DeviceAllocator::take_cached(size_t cls, cudaStream_t stream, uint64_t pool) {
  auto pop = [&](std::vector<void*>& v) {
    void* p = v.back();
    v.pop_back();
    cached_ -= cls;
    return p;
  };
  if (auto it = free_.find(FreeKey{stream, cls, pool}); it != free_.end() && !it->second.empty())
    return pop(it->second);
  if (pool != 0) return nullptr;  // a capture never waits on other streams
  for (auto& [key, v] : free_) {
    if (key.bytes != cls || key.pool != 0 || v.empty() || capturing_.count(key.stream)) continue;
    stream_wait(stream, key.stream);
    return pop(v);
  }
  return nullptr;
}

void* DeviceAllocator::device_malloc(size_t cls, size_t requested) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, cls);
  if (err == cudaErrorMemoryAllocation && capturing_.empty()) {
    (void)cudaGetLastError();  // clear the (non-sticky) error, free the cache and retry once
    CUDA_CHECK(cudaDeviceSynchronize());
    release_free_blocks();
    err = cudaMalloc(&p, cls);
  }
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    constexpr double MiB = 1024.0 * 1024.0;
    fail<OutOfMemory>("cuda:", device_, ": out of memory allocating ", requested, " bytes (", requested / MiB,
                      " MiB, size class ", cls, "): device has ", free_b / MiB, " MiB free of ", total_b / MiB,
                      " MiB; this process holds ", live_bytes_ / MiB, " MiB in tensors and ", cached_ / MiB,
                      " MiB cached");
  }
  check(err, "cudaMalloc", __FILE__, __LINE__);
  return p;
}

void* DeviceAllocator::alloc(size_t bytes, cudaStream_t stream) {
  const size_t cls = size_class(bytes);
  std::lock_guard lk(mu_);
  const auto cap = capturing_.find(stream);
  const uint64_t pool = cap == capturing_.end() ? 0 : cap->second;
  void* p = take_cached(cls, stream, pool);
  if (!p) p = device_malloc(cls, bytes);
  live_.emplace(p, Block{cls, stream, pool});
  live_bytes_ += cls;
  return p;
}

void DeviceAllocator::free(void* p) noexcept {
  if (!p) return;
  std::lock_guard lk(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;
  const Block b = it->second;
  live_.erase(it);
  live_bytes_ -= b.bytes;
  free_[FreeKey{b.stream, b.bytes, b.pool}].push_back(p);
  cached_ += b.bytes;
}

size_t DeviceAllocator::cached_bytes() {
  std::lock_guard lk(mu_);
  return cached_;
}

size_t DeviceAllocator::live_bytes() {
  std::lock_guard lk(mu_);
  return live_bytes_;
}

void DeviceAllocator::release_free_blocks() {
  for (auto it = free_.begin(); it != free_.end();) {
    if (it->first.pool != 0) {  // private pools stay with their graphs
      ++it;
      continue;
    }
    for (void* p : it->second) {
      CUDA_CHECK(cudaFree(p));
      cached_ -= it->first.bytes;
    }
    it = free_.erase(it);
  }
}

void DeviceAllocator::release_cached() {
  std::lock_guard lk(mu_);
  if (!capturing_.empty()) return;  // synchronizing would invalidate the capture
  CUDA_CHECK(cudaDeviceSynchronize());
  release_free_blocks();
}

void DeviceAllocator::forget_stream(cudaStream_t stream, cudaStream_t heir) {
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::lock_guard lk(mu_);
  for (auto& [p, b] : live_)
    if (b.stream == stream) b.stream = heir;
  std::vector<std::pair<FreeKey, std::vector<void*>>> moved;
  for (auto it = free_.begin(); it != free_.end();) {
    if (it->first.stream != stream) {
      ++it;
      continue;
    }
    moved.emplace_back(it->first, std::move(it->second));
    it = free_.erase(it);
  }
  for (auto& [key, v] : moved) {
    auto& dst = free_[FreeKey{heir, key.bytes, key.pool}];
    dst.insert(dst.end(), v.begin(), v.end());
  }
  capturing_.erase(stream);
}

uint64_t DeviceAllocator::begin_pool(cudaStream_t stream) {
  std::lock_guard lk(mu_);
  const uint64_t id = next_pool_++;
  capturing_[stream] = id;
  return id;
}

uint64_t DeviceAllocator::end_pool(cudaStream_t stream) {
  std::lock_guard lk(mu_);
  auto it = capturing_.find(stream);
  if (it == capturing_.end()) return 0;
  const uint64_t id = it->second;
  capturing_.erase(it);
  return id;
}

void DeviceAllocator::release_pool(uint64_t id) {
  std::lock_guard lk(mu_);
  for (auto& [p, b] : live_)
    if (b.pool == id) b.pool = 0;
  std::vector<std::pair<FreeKey, std::vector<void*>>> moved;
  for (auto it = free_.begin(); it != free_.end();) {
    if (it->first.pool != id) {
      ++it;
      continue;
    }
    moved.emplace_back(it->first, std::move(it->second));
    it = free_.erase(it);
  }
  for (auto& [key, v] : moved) {
    auto& dst = free_[FreeKey{key.stream, key.bytes, 0}];
    dst.insert(dst.end(), v.begin(), v.end());
  }
}

}  // namespace flagos::cuda

namespace flagos::cuda {

PinnedHostPool::~PinnedHostPool() {
  // Left to process teardown, as device blocks are.
}

void* PinnedHostPool::alloc(size_t bytes) {
  const size_t cls = DeviceAllocator::size_class(bytes);
  std::lock_guard lk(mu_);
  void* p = nullptr;
  if (auto it = free_.find(cls); it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    cached_ -= cls;
  } else {
    const cudaError_t err = cudaHostAlloc(&p, cls, cudaHostAllocPortable);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      fail<OutOfMemory>("cuda: cannot allocate ", bytes, " bytes of pinned host memory (", cached_,
                        " bytes cached in the pinned pool)");
    }
    check(err, "cudaHostAlloc", __FILE__, __LINE__);
  }
  live_.emplace(p, cls);
  return p;
}

void PinnedHostPool::free(void* p) noexcept {
  if (!p) return;
  std::lock_guard lk(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;
  free_[it->second].push_back(p);
  cached_ += it->second;
  live_.erase(it);
}

size_t PinnedHostPool::cached_bytes() {
  std::lock_guard lk(mu_);
  return cached_;
}

void PinnedHostPool::release_cached() {
  std::lock_guard lk(mu_);
  for (auto& [cls, v] : free_)
    for (void* p : v) CUDA_CHECK(cudaFreeHost(p));
  free_.clear();
  cached_ = 0;
}

}  // namespace flagos::cuda
