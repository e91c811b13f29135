// `flagos bench comm`: nccl-tests-style bandwidth of one collective over a size sweep.
#pragma once
#include <string>
#include <vector>

namespace flagos::comm::bench {

struct Options {
  std::string op = "allreduce";  // allreduce allgather reducescatter alltoall broadcast reduce
  size_t min_bytes = 8, max_bytes = 64u << 20;
  double factor = 2;
  std::string dtype = "f32";
  std::string redop = "sum";
  int root = 0;
  int iters = 20, warmup = 5;
  int nranks = 0;                 // > 0 and not already a rank: re-run under `flagos launch -n N`
  std::string device = "cpu";     // "cuda": cuda:<local rank> on each rank; "cuda:1": that device
  int pipeline = -1;              // 0/1: sets FLAGOS_COMM_PIPELINE (heterogeneous mode) on every rank
  int split = 0;                  // > 0: sets FLAGOS_COMM_SPLIT (forces the heterogeneous mode)
  std::string json;
  std::vector<std::string> argv;  // the bench arguments, for re-running under the launcher
};

// Parses "8", "4K", "64M", "1G" (powers of 1024).
size_t parse_size(const std::string& s);
int run(const Options& o);

}  // namespace flagos::comm::bench
