// nccl-tests' report for one collective: per size, out-of-place and in-place time, algorithm
// bandwidth (bytes / time) and bus bandwidth (algbw x the op's factor), and #wrong elements.
// Every rank fills its input with rank + 1, so the expected results are exact in every dtype.
// Buffers live on the chosen device (host, or CUDA through the NCCL adaptor's memory operations);
// every timed section ends with a stream sync, and the slowest rank's time counts.
#include "comm_bench.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "comm_internal.h"
#include "flagos/comm.h"
#include "flagos/dtype.h"
#include "flagos/error.h"
#include "setup.h"
#include "sweep_args.h"
#include "comm_values.h"

namespace flagos::comm::bench {
namespace {

#define BENCH_CHECK(call)                                                                           \
  do {                                                                                              \
    const flagosResult_t r_ = (call);                                                               \
    if (r_ != flagosSuccess)                                                                        \
      fail<RuntimeError>("flagos bench comm: ", #call, ": ", flagosGetErrorString(r_), ": ",        \
                         flagosGetLastError(nullptr));                                              \
  } while (0)

struct TypeDesc { const char* name; const char* nccl_name; flagosDataType_t t; size_t size; };
const TypeDesc kTypes[] = {{"i8", "int8", flagosInt8, 1},       {"u8", "uint8", flagosUint8, 1},
                           {"i32", "int32", flagosInt32, 4},    {"u32", "uint32", flagosUint32, 4},
                           {"i64", "int64", flagosInt64, 8},    {"u64", "uint64", flagosUint64, 8},
                           {"f16", "half", flagosFloat16, 2},   {"bf16", "bfloat16", flagosBfloat16, 2},
                           {"f32", "float", flagosFloat32, 4},  {"f64", "double", flagosFloat64, 8}};
const char* kOps[] = {"sum", "prod", "max", "min", "avg"};

int env_int(const char* a, const char* b) {
  const char* e = std::getenv(a);
  if (!e || !*e) e = std::getenv(b);
  return e && *e ? std::atoi(e) : -1;
}

// A device buffer with a host mirror for filling and checking.
class Buffer {
 public:
  Buffer(DeviceOps& mem, size_t bytes) : mem_(mem), host_(bytes + 64), dev_(nullptr) {
    dev_ = mem.is_host() ? host_.data() : static_cast<char*>(mem.alloc(bytes + 64));
  }
  ~Buffer() {
    if (!mem_.is_host()) mem_.release(dev_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  char* h() { return host_.data(); }
  char* d() { return dev_; }
  void up() {
    if (!mem_.is_host()) mem_.upload(dev_, host_.data(), host_.size());
  }
  void down() {
    if (!mem_.is_host()) mem_.download(host_.data(), dev_, host_.size());
  }

 private:
  DeviceOps& mem_;
  std::vector<char> host_;
  char* dev_;
};

}  // namespace

size_t parse_size(const std::string& s) {
  size_t v = 0;
  if (!parse_size(s, &v)) fail("flagos bench comm: bad size '", s, "' (e.g. 8, 4K, 64M, 1G)");
  return v;
}

int run(const Options& o) {
  int rank = env_int("FLAGOS_RANK", "OMPI_COMM_WORLD_RANK");
  int nranks = env_int("FLAGOS_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE");
  if (nranks < 0 && o.nranks > 0) {  // not a rank yet: start N of them
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> a = {self, "launch", "-n", std::to_string(o.nranks), "--", self, "bench", "comm"};
    a.insert(a.end(), o.argv.begin(), o.argv.end());
    std::vector<char*> av;
    for (auto& s : a) av.push_back(s.data());
    av.push_back(nullptr);
    ::execv(av[0], av.data());
    fail<RuntimeError>("flagos bench comm: cannot run ", self, ": ", std::strerror(errno));
  }
  if (nranks < 0) nranks = 1, rank = 0;
  if (o.pipeline >= 0) ::setenv("FLAGOS_COMM_PIPELINE", o.pipeline ? "1" : "0", 1);
  if (o.split > 0) ::setenv("FLAGOS_COMM_SPLIT", std::to_string(o.split).c_str(), 1);
  std::string device = o.device;
  if (device == "cuda") {
    const char* local = std::getenv("FLAGOS_LOCAL_RANK");
    device += ":" + std::string(local && *local ? local : std::to_string(rank));
  }
  const TypeDesc* td = nullptr;
  for (const auto& t : kTypes)
    if (o.dtype == t.name || o.dtype == t.nccl_name) td = &t;
  if (!td) fail("flagos bench comm: unknown datatype '", o.dtype, "' (i8 u8 i32 u32 i64 u64 f16 bf16 f32 f64)");
  int redop = -1;
  for (int i = 0; i < 5; ++i)
    if (o.redop == kOps[i]) redop = i;
  if (redop < 0) fail("flagos bench comm: unknown redop '", o.redop, "' (sum prod max min avg)");
  const flagosRedOp_t rop = static_cast<flagosRedOp_t>(redop);
  const std::string& op = o.op;
  const bool gathers = op == "allgather" || op == "reducescatter" || op == "alltoall";
  const bool rooted = op == "broadcast" || op == "reduce";
  const bool reduces = op == "allreduce" || op == "reduce" || op == "reducescatter";
  const double n = nranks;
  double factor;
  if (op == "allreduce") factor = 2 * (n - 1) / n;
  else if (gathers) factor = (n - 1) / n;
  else if (rooted) factor = 1;
  else fail("flagos bench comm: unknown op '", op, "' (allreduce allgather reducescatter alltoall broadcast reduce)");

  flagosUniqueId id;
  BENCH_CHECK(flagosCommGetUniqueId(&id));
  flagosComm_t comm = nullptr;
  flagosConfig_t cfg = FLAGOS_CONFIG_INITIALIZER;
  cfg.device = device.c_str();
  BENCH_CHECK(flagosCommInitRankConfig(&comm, nranks, id, rank, &cfg));
  const flagosDataType_t t = td->t;
  const size_t es = td->size;
  std::unique_ptr<DeviceOps> mem = device_ops_for(device);
  void* stream = nullptr;  // the device's default stream (the legacy default stream on CUDA)
  Buffer control(*mem, 16);
  // Max / sum of a control value over ranks (through device memory where the buffers live).
  auto agree = [&](auto v, flagosDataType_t ct, flagosRedOp_t op) {
    std::memcpy(control.h(), &v, sizeof(v));
    control.up();
    BENCH_CHECK(flagosAllReduce(control.d(), control.d(), 1, ct, op, comm, stream));
    mem->synchronize(stream);
    control.down();
    std::memcpy(&v, control.h(), sizeof(v));
    return v;
  };
  auto barrier = [&] {
    BENCH_CHECK(flagosBarrier(comm, stream));
    mem->synchronize(stream);
  };
  char info[512];
  BENCH_CHECK(flagosCommRankInfo(comm, rank, info, sizeof(info)));
  const char* mode = std::strstr(info, "communicator mode ");

  if (rank == 0) {
    std::printf("# flagos bench comm: %s, %d ranks, %s, redop %s, device %s, %s", op.c_str(), nranks, td->name,
                kOps[redop], device.c_str(), mode ? mode : "");
    if (mode && std::strstr(mode, "hetero")) {
      const char* p = std::getenv("FLAGOS_COMM_PIPELINE");
      const char* c = std::getenv("FLAGOS_COMM_CHUNK_BYTES");
      const char* d = std::getenv("FLAGOS_COMM_PIPELINE_DEPTH");
      std::printf(" (%s, chunk %s bytes, depth %s)", p && !std::strcmp(p, "0") ? "unpipelined" : "pipelined",
                  c && *c ? c : "1048576", d && *d ? d : "4");
    }
    std::printf("\n");
    std::printf("#%80s%38s\n", "out-of-place", "in-place");
    std::printf("#%11s %13s %9s %7s %6s %10s %8s %8s %6s %10s %8s %8s %6s\n", "size", "count", "type", "redop",
                "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
    std::printf("#%11s %13s %9s %7s %6s %10s %8s %8s %6s %10s %8s %8s %6s\n", "(B)", "(elements)", "", "", "", "(us)",
                "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
  }
  nlohmann::json rows = nlohmann::json::array();
  double busbw_sum = 0;
  int rows_n = 0;
  for (double sz = static_cast<double>(o.min_bytes); sz <= static_cast<double>(o.max_bytes) + 0.5;
       sz = std::max(sz * o.factor, sz + 1)) {
    // nccl-tests: size is the total buffer; gathering ops move size/nranks per rank block.
    size_t count = static_cast<size_t>(sz) / es;
    const size_t per = gathers ? count / static_cast<size_t>(nranks) : count;
    count = gathers ? per * static_cast<size_t>(nranks) : count;
    const size_t bytes = count * es;
    const size_t send_n = op == "allgather" ? per : count;
    const size_t recv_n = op == "reducescatter" ? per : count;
    Buffer bs(*mem, send_n * es), br(*mem, std::max(count, recv_n) * es);
    auto fill = [&](char* p, size_t m) {
      for (size_t i = 0; i < m; ++i) store(p, i, t, rank + 1);
    };
    auto issue = [&](bool in_place) {
      const char* s = in_place ? br.d() : bs.d();
      char* r = br.d();
      if (in_place && op == "allgather") s = r + static_cast<size_t>(rank) * per * es;
      if (op == "allreduce") return flagosAllReduce(s, r, count, t, rop, comm, stream);
      if (op == "allgather") return flagosAllGather(s, r, per, t, comm, stream);
      if (op == "reducescatter") {
        if (in_place) r = br.d() + static_cast<size_t>(rank) * per * es;
        return flagosReduceScatter(s, r, per, t, rop, comm, stream);
      }
      if (op == "alltoall") return flagosAlltoAll(s, r, per, t, comm, stream);
      if (op == "broadcast") return flagosBroadcast(s, r, count, t, o.root, comm, stream);
      return flagosReduce(s, r, count, t, rop, o.root, comm, stream);
    };
    double expect_red = 0;
    switch (rop) {
      case flagosSum: expect_red = n * (n + 1) / 2; break;
      case flagosProd: expect_red = std::tgamma(n + 1); break;
      case flagosMax: expect_red = n; break;
      case flagosMin: expect_red = 1; break;
      case flagosAvg: expect_red = td->t == flagosFloat16 || td->t == flagosBfloat16 || td->t == flagosFloat32 ||
                                           td->t == flagosFloat64
                                       ? (n + 1) / 2
                                       : std::trunc((n + 1) / 2); break;
      default: break;
    }
    auto count_wrong = [&](bool in_place) -> uint64_t {
      if (in_place) {
        fill(op == "allgather" ? br.h() + static_cast<size_t>(rank) * per * es : br.h(), op == "allgather" ? per : count);
        br.up();
      } else {
        fill(bs.h(), send_n);
        bs.up();
      }
      BENCH_CHECK(issue(in_place));
      mem->synchronize(stream);
      br.down();
      uint64_t wrong = 0;
      const char* r = br.h();
      if (op == "reducescatter" && in_place) r += static_cast<size_t>(rank) * per * es;
      if (op == "reduce" && rank != o.root) return 0;
      for (size_t i = 0; i < recv_n; ++i) {
        double e;
        if (reduces) e = expect_red;
        else if (op == "broadcast") e = o.root + 1;
        else e = static_cast<double>(i / std::max<size_t>(per, 1) + 1);  // block p came from rank p
        if (load(r, i, t) != e) ++wrong;
      }
      return wrong;
    };
    auto time_us = [&](bool in_place) {
      fill(bs.h(), send_n);
      fill(br.h(), std::max(count, recv_n));
      bs.up();
      br.up();
      const int warm = bytes >= (64u << 20) ? 1 : o.warmup;
      for (int i = 0; i < warm; ++i) BENCH_CHECK(issue(in_place));
      mem->synchronize(stream);
      barrier();
      auto t0 = std::chrono::steady_clock::now();
      BENCH_CHECK(issue(in_place));
      mem->synchronize(stream);
      const double one = agree(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                               flagosFloat64, flagosMax);
      // Fewer iterations for big sizes (same on every rank: `one` was agreed on).
      const int iters = std::max(1, std::min(o.iters, static_cast<int>(0.3 / std::max(one, 1e-9))));
      barrier();
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) BENCH_CHECK(issue(in_place));
      mem->synchronize(stream);
      return agree(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters,
                   flagosFloat64, flagosMax);
    };
    nlohmann::json row = {{"size", bytes}, {"count", count}, {"type", td->nccl_name},
                          {"redop", reduces ? kOps[redop] : "none"}, {"root", rooted ? o.root : -1}};
    std::string line;
    char buf[256];
    std::snprintf(buf, sizeof(buf), " %11zu %13zu %9s %7s %6d", bytes, count, td->nccl_name,
                  reduces ? kOps[redop] : "none", rooted ? o.root : -1);
    line += buf;
    for (bool in_place : {false, true}) {
      const double us = time_us(in_place);
      const uint64_t wrong = agree(count_wrong(in_place), flagosUint64, flagosSum);
      const double algbw = us > 0 ? static_cast<double>(bytes) / us / 1e3 : 0;
      const double busbw = algbw * factor;
      if (in_place) busbw_sum += busbw, ++rows_n;
      std::snprintf(buf, sizeof(buf), " %10.2f %8.2f %8.2f %6llu", us, algbw, busbw,
                    static_cast<unsigned long long>(wrong));
      line += buf;
      row[in_place ? "in_place" : "out_of_place"] = {{"time_us", us}, {"algbw_GBps", algbw}, {"busbw_GBps", busbw},
                                                     {"wrong", wrong}};
    }
    if (rank == 0) std::printf("%s\n", line.c_str()), std::fflush(stdout);
    rows.push_back(row);
    if (sz >= static_cast<double>(o.max_bytes)) break;
  }
  if (rank == 0) {
    std::printf("# Avg bus bandwidth    : %g GB/s (in-place)\n", rows_n ? busbw_sum / rows_n : 0.0);
    if (!o.json.empty()) {
      nlohmann::json doc = {{"op", op},           {"nranks", nranks},     {"dtype", td->name},
                            {"redop", kOps[redop]}, {"device", device},    {"mode", mode ? mode + 18 : ""},
                            {"busbw_factor", factor}, {"rows", rows}};
      std::ofstream(o.json) << doc.dump(2) << "\n";
    }
  }
  BENCH_CHECK(flagosCommDestroy(comm));
  return 0;
}

}  // namespace flagos::comm::bench
