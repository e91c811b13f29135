// Multi-process tests of the communication library on host buffers, run by ctest under
// `flagos launch -n N`. Modes:
//   (none)                      the suite (comm_suite.cpp) on host memory, then the error checks
//   --mode kill|timeout         fault scenarios, run by the driver below
//   --mode big                  counts above INT_MAX (2 GiB per rank)
//   --driver kill|timeout FLAGOS N   runs `FLAGOS launch -n N -- SELF --mode ...` and checks how it ends
// Prints one line per failure and "N passed, M failed".
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

#define CHECK_OK(call)                                                                                    \
  do {                                                                                                    \
    const flagosResult_t r_ = (call);                                                                     \
    if (r_ != flagosSuccess) {                                                                            \
      std::fprintf(stderr, "FATAL %s:%d %s: %s: %s\n", __FILE__, __LINE__, #call, flagosGetErrorString(r_), \
                   flagosGetLastError(nullptr));                                                          \
      std::exit(3);                                                                                       \
    }                                                                                                     \
  } while (0)

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

int env_int(const char* a, const char* b, int dflt) {
  const char* e = std::getenv(a);
  if (!e || !*e) e = std::getenv(b);
  return e && *e ? std::atoi(e) : dflt;
}

flagosComm_t init_world(int64_t timeout_ms = 0) {
  flagosUniqueId id;
  CHECK_OK(flagosCommGetUniqueId(&id));
  flagosConfig_t cfg = FLAGOS_CONFIG_INITIALIZER;
  cfg.timeout_ms = timeout_ms;
  flagosComm_t comm = nullptr;
  CHECK_OK(flagosCommInitRankConfig(&comm, g_n, id, g_rank, &cfg));
  return comm;
}

// A rank dies in the middle of a large all-reduce.
int mode_kill() {
  flagosComm_t comm = init_world();
  std::vector<float> buf(8 << 20, 1.0f);
  CHECK_OK(flagosAllReduce(buf.data(), buf.data(), 1024, flagosFloat32, flagosSum, comm, nullptr));
  if (g_rank == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::printf("rank 1 kills itself\n");
    std::fflush(stdout);
    ::raise(SIGKILL);
  }
  const flagosResult_t r = flagosAllReduce(buf.data(), buf.data(), buf.size(), flagosFloat32, flagosSum, comm, nullptr);
  std::printf("all-reduce returned %s: %s\n", flagosGetErrorString(r), flagosGetLastError(nullptr));
  return r == flagosSuccess ? 0 : 4;
}

// Rank 0 never joins a collective: the others time out with a clear error.
int mode_timeout() {
  flagosComm_t comm = init_world(800);
  if (g_rank == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    std::printf("rank 0 skipped the all-reduce\n");
    std::fflush(stdout);
    ::_exit(0);
  }
  float x = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const flagosResult_t r = flagosAllReduce(&x, &x, 1, flagosFloat32, flagosSum, comm, nullptr);
  const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t0).count());
  flagosResult_t async = flagosSuccess;
  flagosCommGetAsyncError(comm, &async);
  const bool ok = r == flagosTimeout && async == flagosTimeout && ms < 3000 &&
                  std::strstr(flagosGetLastError(nullptr), "not complete after 800 ms");
  std::printf("%s after %ld ms: %s\n", ok ? "TIMEOUT-OK" : "TIMEOUT-WRONG", ms, flagosGetLastError(nullptr));
  std::fflush(stdout);
  flagosCommAbort(comm);
  ::_exit(ok ? 0 : 5);  // MPI cannot finalize with the abandoned request
}

// Counts above INT_MAX for real (about 2 GiB per rank; opt-in: FLAGOS_COMM_BIG_TESTS): an in-place
// u8 all-reduce and a broadcast of INT_MAX + 9 elements, checked at the piece boundaries and on a
// sparse grid.
int mode_big() {
  flagosComm_t comm = init_world();
  const size_t count = static_cast<size_t>(INT_MAX) + 9;
  std::vector<uint8_t> buf(count, static_cast<uint8_t>(g_rank + 1));
  const size_t marks[] = {0, 1, static_cast<size_t>(INT_MAX) - 1, static_cast<size_t>(INT_MAX),
                          static_cast<size_t>(INT_MAX) + 1, count - 1};
  for (size_t k = 0; k < 6; ++k) buf[marks[k]] = static_cast<uint8_t>(g_rank * 3 + k);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_OK(flagosAllReduce(buf.data(), buf.data(), count, flagosUint8, flagosSum, comm, nullptr));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto expect_at = [&](const char* what, size_t i, unsigned want) {
    if (buf[i] == want) return ++g_pass, true;
    std::printf("FAIL %s: element %zu is %u, expected %u\n", what, i, buf[i], want);
    return ++g_fail, false;
  };
  unsigned base = 0;
  for (int r = 0; r < g_n; ++r) base += static_cast<unsigned>(r + 1);
  for (size_t k = 0; k < 6; ++k) {
    unsigned want = 0;
    for (int r = 0; r < g_n; ++r) want += static_cast<unsigned>(r * 3) + static_cast<unsigned>(k);
    expect_at("all-reduce mark", marks[k], want & 255);
  }
  for (size_t i = 7; i < count - 7; i += (1u << 20) + 7)
    if (!expect_at("all-reduce grid", i, base & 255)) break;
  const int root = g_n - 1;
  std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(g_rank == root ? 77 : 0));
  buf[count - 1] = static_cast<uint8_t>(g_rank == root ? 99 : 0);
  CHECK_OK(flagosBroadcast(buf.data(), buf.data(), count, flagosUint8, root, comm, nullptr));
  expect_at("broadcast last", count - 1, 99);
  for (size_t i = 0; i < count - 1; i += (1u << 20) + 3)
    if (!expect_at("broadcast grid", i, 77)) break;
  CHECK_OK(flagosCommDestroy(comm));
  std::printf("big counts (%zu elements, all-reduce %.1f s): %d passed, %d failed\n", count, secs, g_pass, g_fail);
  return g_fail ? 1 : 0;
}

int driver(const std::string& mode, const std::string& flagos, int n, const char* self) {
  const std::string cmd = flagos + " launch -n " + std::to_string(n) + " -- " + self + " --mode " + mode + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return std::printf("FAIL cannot run %s\n", cmd.c_str()), 1;
  std::string out;
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, k);
  const int status = ::pclose(p);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("---- %s (%.1f s, exit %d) ----\n%s----\n", cmd.c_str(), secs, WEXITSTATUS(status), out.c_str());
  auto expect = [&](bool cond, const char* what) { cond ? ++g_pass : (std::printf("FAIL %s\n", what), ++g_fail); };
  expect(secs < 30, "the launch ends within 30 s");
  if (mode == "kill") {
    expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the launcher exits non-zero");
    expect(out.find("flagos launch: rank 1 was killed by signal 9") != std::string::npos,
           "the launcher names rank 1 and SIGKILL");
  } else {
    int ok_lines = 0;
    for (size_t pos = 0; (pos = out.find("TIMEOUT-OK", pos)) != std::string::npos; ++pos) ++ok_lines;
    expect(ok_lines == n - 1, "every rank but 0 reports TIMEOUT-OK");
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--driver") && i + 3 < argc) return driver(argv[i + 1], argv[i + 2], std::atoi(argv[i + 3]), argv[0]);
    if (!std::strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
  }
  g_rank = env_int("FLAGOS_RANK", "OMPI_COMM_WORLD_RANK", 0);
  g_n = env_int("FLAGOS_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", 1);
  if (mode == "kill") return mode_kill();
  if (mode == "timeout") return mode_timeout();
  if (mode == "big") return mode_big();
  const auto t0 = std::chrono::steady_clock::now();
  flagosComm_t world = init_world();
  HostMemory mem;
  comm_test::run_suite(world, mem);
  comm_test::run_errors(world, mem, "cpu");
  CHECK_OK(flagosCommDestroy(world));
  std::printf("%d passed, %d failed (%.1f s)\n", g_pass, g_fail,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return g_fail ? 1 : 0;
}
