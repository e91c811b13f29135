// The reference for `flagos bench comm` on the CPU: the same size sweep, timing rule and table,
// calling Open MPI's blocking collectives directly (no flagos). Start with `flagos launch -n N` or
// mpirun:  flagos_mpi_direct -o allreduce -b 8 -e 64M -f 2 [-d f32|f64|i32] [--iters 20] [-w 5]
// Timing as in src/comm/bench/comm_bench.cpp: warm-up calls, a barrier, one timed call that sets the
// iteration count (at most --iters, about 0.3 s), a barrier, the timed calls; the slowest rank's time
// counts. Bus bandwidth factors as nccl-tests.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sweep_args.h"


int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  flagos::comm::bench::Sweep sw;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i], v = i + 1 < argc ? argv[i + 1] : "";
    if (flagos::comm::bench::sweep_option(sw, k, v) != flagos::comm::bench::SweepArg::used) {
      if (rank == 0) std::fprintf(stderr, "mpi_direct: bad option %s %s\n", k.c_str(), v.c_str());
      MPI_Finalize();
      return 2;
    }
  }
  const std::string &op = sw.op, &dtype = sw.dtype;
  const size_t min_bytes = sw.min_bytes, max_bytes = sw.max_bytes;
  const double factor = sw.factor;
  const int iters = sw.iters, warmup = sw.warmup;
  MPI_Datatype dt = MPI_FLOAT;
  size_t es = 4;
  const char* tname = "float";
  if (dtype == "f64") dt = MPI_DOUBLE, es = 8, tname = "double";
  else if (dtype == "i32") dt = MPI_INT32_T, tname = "int32";
  const double n = nranks;
  const bool gathers = op == "allgather" || op == "reducescatter" || op == "alltoall";
  double busf = op == "allreduce" ? 2 * (n - 1) / n : gathers ? (n - 1) / n : 1;
  if (rank == 0) {
    std::printf("# mpi_direct: %s, %d ranks, %s, Open MPI blocking collectives called directly\n", op.c_str(), nranks,
                dtype.c_str());
    std::printf("#%11s %13s %9s %7s %6s %10s %8s %8s %6s %10s %8s %8s %6s\n", "size", "count", "type", "redop", "root",
                "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
  }
  for (double sz = static_cast<double>(min_bytes); sz <= static_cast<double>(max_bytes) + 0.5;
       sz = std::max(sz * factor, sz + 1)) {
    size_t count = static_cast<size_t>(sz) / es;
    const size_t per = gathers ? count / static_cast<size_t>(nranks) : count;
    count = gathers ? per * static_cast<size_t>(nranks) : count;
    const size_t bytes = count * es;
    std::vector<char> send(bytes + 64, 1), recv(bytes + 64, 1);
    auto issue = [&](bool in_place) {
      void* s = in_place ? MPI_IN_PLACE : send.data();
      char* r = recv.data();
      const int c = static_cast<int>(count), p = static_cast<int>(per);
      if (op == "allreduce") return MPI_Allreduce(s, r, c, dt, MPI_SUM, MPI_COMM_WORLD);
      if (op == "allgather")
        return MPI_Allgather(in_place ? MPI_IN_PLACE : send.data(), p, dt, r, p, dt, MPI_COMM_WORLD);
      if (op == "reducescatter")
        return in_place ? MPI_Reduce_scatter_block(MPI_IN_PLACE, r, p, dt, MPI_SUM, MPI_COMM_WORLD)
                        : MPI_Reduce_scatter_block(send.data(), r, p, dt, MPI_SUM, MPI_COMM_WORLD);
      if (op == "alltoall") return MPI_Alltoall(s, p, dt, r, p, dt, MPI_COMM_WORLD);
      if (op == "broadcast") return MPI_Bcast(r, c, dt, 0, MPI_COMM_WORLD);
      return MPI_Reduce(rank == 0 ? s : send.data(), r, c, dt, MPI_SUM, 0, MPI_COMM_WORLD);
    };
    char line[256];
    std::snprintf(line, sizeof(line), " %11zu %13zu %9s %7s %6d", bytes, count, tname,
                  op == "allgather" || op == "broadcast" || op == "alltoall" ? "none" : "sum",
                  op == "broadcast" || op == "reduce" ? 0 : -1);
    std::string out = line;
    for (bool in_place : {false, true}) {
      const int warm = bytes >= (64u << 20) ? 1 : warmup;
      for (int i = 0; i < warm; ++i) issue(in_place);
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = std::chrono::steady_clock::now();
      issue(in_place);
      double one = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      MPI_Allreduce(MPI_IN_PLACE, &one, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      const int n_iter = std::max(1, std::min(iters, static_cast<int>(0.3 / std::max(one, 1e-9))));
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n_iter; ++i) issue(in_place);
      double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n_iter;
      MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      const double algbw = us > 0 ? static_cast<double>(bytes) / us / 1e3 : 0;
      std::snprintf(line, sizeof(line), " %10.2f %8.2f %8.2f %6s", us, algbw, algbw * busf, "N/A");
      out += line;
    }
    if (rank == 0) std::printf("%s\n", out.c_str()), std::fflush(stdout);
    if (sz >= static_cast<double>(max_bytes)) break;
  }
  MPI_Finalize();
  return 0;
}
