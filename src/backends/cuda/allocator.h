// The caching device allocator of the CUDA backend (one per device). Blocks are rounded to
// size classes (4 per power of two below 1 MiB, 8 above, at least 512 bytes) and kept after
// free for reuse, so cudaMalloc is off the hot path. Reuse is stream-ordered: a freed block goes
// back to the stream it was allocated on and is handed out again on that stream without a wait;
// another stream takes it only after waiting on an event recorded on the owner (cudaStreamWaitEvent,
// no host sync). As with any stream-ordered allocator, a block used on a stream other than the one
// it was allocated on must be synchronized by the user before it is freed. Blocks allocated while a stream is being captured into a graph belong to that
// graph's private pool until the graph is destroyed, so replays never write memory that was handed
// to someone else. When cudaMalloc fails the cache is released and the call retried once; then
// OutOfMemory names the request, the device's free/total memory and the cached bytes.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace flagos::cuda {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // A block of at least `bytes` (256-byte aligned) usable in order on `stream`.
  void* alloc(size_t bytes, cudaStream_t stream);
  // Returns a block to the cache; never throws (called from tensor destructors). Unknown
  // pointers are ignored.
  void free(void* p) noexcept;

  size_t cached_bytes();
  size_t live_bytes();
  // Synchronizes the device and returns every cached block to the driver.
  void release_cached();

  // `stream` is about to be destroyed: waits for it, then its blocks (cached and live) belong to `heir`.
  void forget_stream(cudaStream_t stream, cudaStream_t heir);

  // Graph capture on `stream` begins: its allocations go to a new private pool whose id is returned.
  uint64_t begin_pool(cudaStream_t stream);
  // Capture ended: allocations on the stream come from the shared cache again. Returns the pool id
  // (0 when the stream had none).
  uint64_t end_pool(cudaStream_t stream);
  // The graph using pool `id` is gone (the device is synchronized by the caller): its free blocks
  // rejoin the shared cache; its live blocks do when freed.
  void release_pool(uint64_t id);

  static size_t size_class(size_t bytes);

 private:
  struct Block {
    size_t bytes;          // the size class
    cudaStream_t stream;   // owner: reuse on it needs no synchronization
    uint64_t pool;         // 0 = shared cache
  };
  struct FreeKey {
    cudaStream_t stream;
    size_t bytes;
    uint64_t pool;
    bool operator==(const FreeKey& o) const { return stream == o.stream && bytes == o.bytes && pool == o.pool; }
  };
  struct FreeKeyHash {
    size_t operator()(const FreeKey& k) const {
      return std::hash<const void*>()(k.stream) ^ (k.bytes * 0x9e3779b97f4a7c15ull) ^ (k.pool << 17);
    }
  };

  void* take_cached(size_t cls, cudaStream_t stream, uint64_t pool);
  void* device_malloc(size_t cls, size_t requested);
  void release_free_blocks();  // caller holds mu_ and has synchronized the device
  void stream_wait(cudaStream_t waiter, cudaStream_t owner);

  int device_;
  std::mutex mu_;
  std::unordered_map<void*, Block> live_;
  std::unordered_map<FreeKey, std::vector<void*>, FreeKeyHash> free_;
  std::unordered_map<cudaStream_t, uint64_t> capturing_;  // stream -> private pool
  size_t cached_ = 0, live_bytes_ = 0;
  uint64_t next_pool_ = 1;
  cudaEvent_t wait_event_ = nullptr;  // for cross-stream reuse
};

}  // namespace flagos::cuda

namespace flagos::cuda {

// Page-locked host buffers (cudaHostAlloc), cached by size class: staging memory for truly
// asynchronous host<->device copies. A buffer may be freed only after the copies that use it
// have completed (synchronize their stream first).
class PinnedHostPool {
 public:
  ~PinnedHostPool();
  void* alloc(size_t bytes);
  void free(void* p) noexcept;
  size_t cached_bytes();
  void release_cached();

 private:
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

}  // namespace flagos::cuda
