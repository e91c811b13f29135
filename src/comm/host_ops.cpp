// DeviceOps for host memory (the CPU backend and anything host-accessible): scratch and staging are
// plain aligned host blocks, copies are memcpy done when issued, streams do not exist.
#include <cstdlib>
#include <cstring>
#include <new>

#include "comm_internal.h"

namespace flagos::comm {
namespace {

class DoneWork final : public Work {
 public:
  bool done() override { return true; }
};

class HostOps final : public DeviceOps {
 public:
  bool is_host() const override { return true; }
  void* alloc(size_t bytes) override { return alloc_host(bytes); }
  void release(void* p) noexcept override { release_host(p); }
  void* alloc_host(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!p) comm_fail(flagosSystemError, "out of host memory allocating ", bytes, " bytes of staging");
    return p;
  }
  void release_host(void* p) noexcept override { std::free(p); }
  void begin(void*) override {}
  std::unique_ptr<Work> copy(void* dst, const void* src, std::span<const Segment> segments, bool,
                             std::span<Work* const>) override {
    for (const Segment& s : segments)
      if (s.bytes) std::memcpy(static_cast<char*>(dst) + s.dst, static_cast<const char*>(src) + s.src, s.bytes);
    return std::make_unique<DoneWork>();
  }
  void end(void*) override {}
  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void synchronize(void*) override {}
};

}  // namespace

std::unique_ptr<DeviceOps> make_host_ops() { return std::make_unique<HostOps>(); }

}  // namespace flagos::comm
