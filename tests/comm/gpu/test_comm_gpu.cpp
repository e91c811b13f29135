// The communication suite (tests/comm/comm_suite.cpp) on CUDA buffers: the NCCL adaptor, and the
// heterogeneous mode when some ranks sit on the CPU. Run on a GPU machine under `flagos launch`:
//   flagos launch -n 2 -- flagos_comm_gpu_test                          (cuda:<local rank> each)
//   flagos launch -n 3 -- flagos_comm_gpu_test --devices cuda:0,cuda:1,cpu
//   flagos launch -n 2 -- flagos_comm_gpu_test --fault first|queued
//     rank 0 stays away from an all-reduce (sleeps, then leaves); rank 1 must get flagosTimeout within
//     4 s (timeout 1.5 s): `first` from the all-reduce itself (NCCL connects on first use: the
//     watchdog aborts the blocked call) or from flagosCommDestroy; `queued` after a warm-up call, so
//     the all-reduce is queued and flagosCommDestroy times out waiting for it.
// Prints one line per failure and "N passed, M failed".
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm_suite.h"
#include "flagos/comm.h"

using comm_test::g_fail;
using comm_test::g_n;
using comm_test::g_pass;
using comm_test::g_rank;

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "FATAL rank %d: %s: %s\n", g_rank, what, cudaGetErrorString(e));
    std::exit(3);
  }
}

class CudaMemory final : public comm_test::Memory {
 public:
  explicit CudaMemory(int device) {
    cuda_ok(cudaSetDevice(device), "cudaSetDevice");
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~CudaMemory() override { cudaStreamDestroy(stream_); }
  bool host() const override { return false; }
  void* alloc(size_t bytes) override {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  void release(void* p) override { cudaFree(p); }
  // Ordered on the stream: the suite's uploads precede its calls, downloads follow them.
  void upload(void* dst, const void* src, size_t bytes) override {
    cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void download(void* dst, const void* src, size_t bytes) override {
    cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void* stream() override { return stream_; }
  void synchronize() override { cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t stream_ = nullptr;
};

class HostMemory final : public comm_test::Memory {
 public:
  bool host() const override { return true; }
  void* alloc(size_t bytes) override { return std::malloc(bytes); }
  void release(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void* stream() override { return nullptr; }
  void synchronize() override {}
};

int env_int(const char* a, int dflt) {
  const char* e = std::getenv(a);
  return e && *e ? std::atoi(e) : dflt;
}

// A rank that never joins: the other gets flagosTimeout, never a hang (see the top of the file).
int fault(flagosComm_t comm, comm_test::Memory& mem, const std::string& kind) {
  void* buf = mem.alloc(1 << 20);
  void* st = mem.stream();
  if (kind == "queued") {
    if (flagosAllReduce(buf, buf, 1024, flagosFloat32, flagosSum, comm, st) != flagosSuccess) {
      std::printf("FAIL warm-up all-reduce: %s\n0 passed, 1 failed\n", flagosGetLastError(nullptr));
      std::fflush(stdout);
      ::_exit(1);
    }
    mem.synchronize();
  }
  if (g_rank == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::printf("rank 0 stayed away\n1 passed, 0 failed\n");
    std::fflush(stdout);
    ::_exit(0);
  }
  const auto t0 = std::chrono::steady_clock::now();
  flagosResult_t r = flagosAllReduce(buf, buf, 1024, flagosFloat32, flagosSum, comm, st);
  std::string msg = r == flagosSuccess ? "" : flagosGetLastError(nullptr);
  const char* where = "flagosAllReduce";
  if (r == flagosSuccess) {
    r = flagosCommDestroy(comm);
    msg = flagosGetLastError(nullptr);
    where = "flagosCommDestroy";
  }
  const long ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  const bool ok = r == flagosTimeout && ms < 4000;
  std::printf("%s: %s returned %s after %ld ms: %s\n%d passed, %d failed\n", ok ? "FAULT-OK" : "FAIL fault",
              where, flagosGetErrorString(r), ms, msg.c_str(), ok ? 1 : 0, ok ? 0 : 1);
  std::fflush(stdout);
  ::_exit(ok ? 0 : 1);
}

}  // namespace

int main(int argc, char** argv) {
  g_rank = env_int("FLAGOS_RANK", env_int("OMPI_COMM_WORLD_RANK", 0));
  g_n = env_int("FLAGOS_WORLD_SIZE", env_int("OMPI_COMM_WORLD_SIZE", 1));
  const int local = env_int("FLAGOS_LOCAL_RANK", g_rank);
  std::string device = "cuda:" + std::to_string(local);
  std::vector<std::string> devices;
  std::string fault_kind;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--fault")) fault_kind = argv[i + 1];
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--devices")) {
      std::string list = argv[i + 1];
      for (size_t p = 0; p <= list.size();) {
        const size_t e = std::min(list.find(',', p), list.size());
        devices.push_back(list.substr(p, e - p));
        p = e + 1;
      }
    }
  if (!devices.empty()) {
    if (static_cast<int>(devices.size()) != g_n) {
      std::fprintf(stderr, "FATAL --devices lists %zu devices for %d ranks\n", devices.size(), g_n);
      return 2;
    }
    device = devices[static_cast<size_t>(g_rank)];
  }
  const bool on_cuda = device.rfind("cuda", 0) == 0;
  std::unique_ptr<comm_test::Memory> mem;
  if (on_cuda) mem = std::make_unique<CudaMemory>(device == "cuda" ? 0 : std::atoi(device.c_str() + 5));
  else mem = std::make_unique<HostMemory>();

  const auto t0 = std::chrono::steady_clock::now();
  flagosUniqueId id;
  flagosConfig_t cfg = FLAGOS_CONFIG_INITIALIZER;
  cfg.device = device.c_str();
  if (!fault_kind.empty()) cfg.timeout_ms = 1500;
  flagosComm_t comm = nullptr;
  if (flagosCommGetUniqueId(&id) != flagosSuccess || flagosCommInitRankConfig(&comm, g_n, id, g_rank, &cfg) != flagosSuccess) {
    std::fprintf(stderr, "FATAL rank %d on %s: init: %s\n", g_rank, device.c_str(), flagosGetLastError(nullptr));
    return 3;
  }
  if (!fault_kind.empty()) return fault(comm, *mem, fault_kind);
  char info[512];
  flagosCommRankInfo(comm, g_rank, info, sizeof(info));
  std::printf("%s\n", info);
  bool mixed = false;
  for (const auto& d : devices) mixed = mixed || (d.rfind("cuda", 0) == 0) != on_cuda;
  if (mixed && !std::strstr(info, "mode hetero")) std::printf("FAIL mixed devices but not the heterogeneous mode\n"), ++g_fail;
  comm_test::run_suite(comm, *mem);
  comm_test::run_errors(comm, *mem, device.c_str());
  if (flagosCommDestroy(comm) != flagosSuccess) std::printf("FAIL destroy: %s\n", flagosGetLastError(nullptr)), ++g_fail;
  std::printf("%d passed, %d failed (%.1f s, %s)\n", g_pass, g_fail,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), device.c_str());
  return g_fail ? 1 : 0;
}
