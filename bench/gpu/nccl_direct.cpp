// The reference for `flagos bench comm` on GPUs: the same size sweep, timing rule and table, calling
// NCCL directly (no flagos). One process per GPU, started by `flagos launch -n N` (FLAGOS_RANK,
// FLAGOS_WORLD_SIZE, FLAGOS_LOCAL_RANK); rank 0 passes the NCCL id to the others through a file.
//   flagos_nccl_direct -o allreduce -b 8 -e 1G -f 2 [-d f32] [--iters 20] [-w 5] --id-file PATH
// Timing as in src/comm/bench/comm_bench.cpp: warm-up calls, a barrier, one timed call that sets the
// iteration count (at most --iters, about 0.3 s), a barrier, the timed calls, a stream sync; the
// slowest rank's time counts. Bus bandwidth factors as nccl-tests.
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "sweep_args.h"

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "nccl_direct: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}
void nccl_ok(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) {
    std::fprintf(stderr, "nccl_direct: %s: %s\n", what, ncclGetErrorString(r));
    std::exit(2);
  }
}

int env_int(const char* name, int dflt) {
  const char* e = std::getenv(name);
  return e && *e ? std::atoi(e) : dflt;
}

struct Type { const char* name; const char* nccl_name; ncclDataType_t t; size_t size; };
const Type kTypes[] = {{"f32", "float", ncclFloat32, 4}, {"bf16", "bfloat16", ncclBfloat16, 2},
                       {"f16", "half", ncclFloat16, 2},  {"f64", "double", ncclFloat64, 8},
                       {"i32", "int32", ncclInt32, 4},   {"i8", "int8", ncclInt8, 1}};

}  // namespace

int main(int argc, char** argv) {
  flagos::comm::bench::Sweep sw;
  std::string id_file;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i], v = i + 1 < argc ? argv[i + 1] : "";
    const auto r = flagos::comm::bench::sweep_option(sw, k, v);
    if (r == flagos::comm::bench::SweepArg::not_sweep && k == "--id-file" && !v.empty()) {
      id_file = v;
    } else if (r != flagos::comm::bench::SweepArg::used) {
      std::fprintf(stderr, "nccl_direct: bad option %s %s\n", k.c_str(), v.c_str());
      return 2;
    }
  }
  const std::string &op = sw.op, &dtype = sw.dtype;
  const size_t min_bytes = sw.min_bytes, max_bytes = sw.max_bytes;
  const double factor = sw.factor;
  const int iters = sw.iters, warmup = sw.warmup;
  const Type* td = nullptr;
  for (const auto& t : kTypes)
    if (dtype == t.name) td = &t;
  if (!td || id_file.empty() || factor <= 1) {
    std::fprintf(stderr, "usage: nccl_direct -o OP -b MIN -e MAX -f F [-d f32|bf16|f16|f64|i32|i8] --id-file PATH\n");
    return 2;
  }
  const int rank = env_int("FLAGOS_RANK", 0), nranks = env_int("FLAGOS_WORLD_SIZE", 1);
  cuda_ok(cudaSetDevice(env_int("FLAGOS_LOCAL_RANK", rank)), "cudaSetDevice");

  ncclUniqueId id;
  if (rank == 0) {
    nccl_ok(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string tmp = id_file + ".tmp";
    std::ofstream(tmp, std::ios::binary).write(id.internal, sizeof(id.internal));
    std::rename(tmp.c_str(), id_file.c_str());
  } else {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      std::ifstream f(id_file, std::ios::binary);
      if (f && f.read(id.internal, sizeof(id.internal))) break;
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr, "nccl_direct: no id in %s after 60 s\n", id_file.c_str());
        return 2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ncclComm_t comm;
  nccl_ok(ncclCommInitRank(&comm, nranks, id, rank), "ncclCommInitRank");
  if (rank == 0) std::remove(id_file.c_str());
  cudaStream_t s = nullptr;  // the legacy default stream, as `flagos bench comm -D cuda` uses

  const double n = nranks;
  const bool gathers = op == "allgather" || op == "reducescatter";
  double busf;
  if (op == "allreduce") busf = 2 * (n - 1) / n;
  else if (gathers) busf = (n - 1) / n;
  else if (op == "broadcast" || op == "reduce") busf = 1;
  else {
    std::fprintf(stderr, "nccl_direct: op %s (allreduce allgather reducescatter broadcast reduce)\n", op.c_str());
    return 2;
  }
  double* ctl = nullptr;
  cuda_ok(cudaMalloc(&ctl, sizeof(double)), "cudaMalloc");
  auto slowest = [&](double v) {  // max over ranks
    cuda_ok(cudaMemcpy(ctl, &v, sizeof(v), cudaMemcpyHostToDevice), "cudaMemcpy");
    nccl_ok(ncclAllReduce(ctl, ctl, 1, ncclFloat64, ncclMax, comm, s), "ncclAllReduce");
    cuda_ok(cudaMemcpy(&v, ctl, sizeof(v), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return v;
  };
  auto barrier = [&] { slowest(0); };
  if (rank == 0) {
    std::printf("# nccl_direct: %s, %d ranks, %s, NCCL called directly\n", op.c_str(), nranks, td->name);
    std::printf("#%11s %13s %9s %7s %6s %10s %8s %8s %6s %10s %8s %8s %6s\n", "size", "count", "type", "redop", "root",
                "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
  }
  for (double sz = static_cast<double>(min_bytes); sz <= static_cast<double>(max_bytes) + 0.5;
       sz = std::max(sz * factor, sz + 1)) {
    size_t count = static_cast<size_t>(sz) / td->size;
    const size_t per = gathers ? count / static_cast<size_t>(nranks) : count;
    count = gathers ? per * static_cast<size_t>(nranks) : count;
    const size_t bytes = count * td->size;
    void *send = nullptr, *recv = nullptr;
    cuda_ok(cudaMalloc(&send, bytes + 64), "cudaMalloc");
    cuda_ok(cudaMalloc(&recv, bytes + 64), "cudaMalloc");
    cuda_ok(cudaMemset(send, 0, bytes + 64), "cudaMemset");
    cuda_ok(cudaMemset(recv, 0, bytes + 64), "cudaMemset");
    auto issue = [&](bool in_place) {
      char* r = static_cast<char*>(recv);
      const void* sb = in_place ? r : send;
      if (op == "allreduce") return ncclAllReduce(sb, r, count, td->t, ncclSum, comm, s);
      if (op == "allgather") return ncclAllGather(in_place ? r + rank * per * td->size : sb, r, per, td->t, comm, s);
      if (op == "reducescatter")
        return ncclReduceScatter(sb, in_place ? r + rank * per * td->size : r, per, td->t, ncclSum, comm, s);
      if (op == "broadcast") return ncclBroadcast(sb, r, count, td->t, 0, comm, s);
      return ncclReduce(sb, r, count, td->t, ncclSum, 0, comm, s);
    };
    char line[256];
    std::snprintf(line, sizeof(line), " %11zu %13zu %9s %7s %6d", bytes, count, td->nccl_name,
                  op == "allgather" || op == "broadcast" ? "none" : "sum",
                  op == "broadcast" || op == "reduce" ? 0 : -1);
    std::string out = line;
    for (bool in_place : {false, true}) {
      const int warm = bytes >= (64u << 20) ? 1 : warmup;
      for (int i = 0; i < warm; ++i) nccl_ok(issue(in_place), op.c_str());
      cuda_ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      barrier();
      auto t0 = std::chrono::steady_clock::now();
      nccl_ok(issue(in_place), op.c_str());
      cuda_ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      const double one = slowest(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      const int n_iter = std::max(1, std::min(iters, static_cast<int>(0.3 / std::max(one, 1e-9))));
      barrier();
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n_iter; ++i) nccl_ok(issue(in_place), op.c_str());
      cuda_ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      const double us = slowest(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n_iter);
      const double algbw = us > 0 ? static_cast<double>(bytes) / us / 1e3 : 0;
      std::snprintf(line, sizeof(line), " %10.2f %8.2f %8.2f %6s", us, algbw, algbw * busf, "N/A");
      out += line;
    }
    if (rank == 0) std::printf("%s\n", out.c_str()), std::fflush(stdout);
    cudaFree(send);
    cudaFree(recv);
    if (sz >= static_cast<double>(max_bytes)) break;
  }
  cudaFree(ctl);
  ncclCommDestroy(comm);
  return 0;
}
