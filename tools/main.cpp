// The `flagos` command line.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.h"
#include "flagos/error.h"

namespace flagos::cli {

std::optional<std::string> Args::value(const std::string& name) {
  for (size_t i = 0; i < v_.size(); ++i) {
    if (v_[i] == name) {
      if (i + 1 >= v_.size()) fail(name, " needs a value");
      std::string r = v_[i + 1];
      v_.erase(v_.begin() + static_cast<long>(i), v_.begin() + static_cast<long>(i) + 2);
      return r;
    }
    if (v_[i].rfind(name + "=", 0) == 0) {
      std::string r = v_[i].substr(name.size() + 1);
      v_.erase(v_.begin() + static_cast<long>(i));
      return r;
    }
  }
  return std::nullopt;
}

bool Args::flag(const std::string& name) {
  for (size_t i = 0; i < v_.size(); ++i)
    if (v_[i] == name) {
      v_.erase(v_.begin() + static_cast<long>(i));
      return true;
    }
  return false;
}

std::optional<std::string> Args::positional() {
  for (size_t i = 0; i < v_.size(); ++i)
    if (v_[i].empty() || v_[i][0] != '-') {
      std::string r = v_[i];
      v_.erase(v_.begin() + static_cast<long>(i));
      return r;
    }
  return std::nullopt;
}

void Args::finish(const std::string& cmd) const {
  if (!v_.empty()) fail("flagos ", cmd, ": unknown argument '", v_.front(), "' (see flagos --help)");
}

}  // namespace flagos::cli

static void usage() {
  std::puts(
      "usage: flagos <command> [options]\n"
      "\n"
      "commands:\n"
      "  run [-m PATH] (-p PROMPT | -f FILE | --chat) [-n N] [--temp T] [--top-k K] [--top-p P]\n"
      "      [--min-p P] [--repeat-penalty R] [--seed S] [--device DEV] [-c CTX] [-t THREADS] [--no-graph]\n"
      "                                  generate text (streams it; prints tok/s at the end);\n"
      "                                  without -m: the default model (scripts/fetch_default_model.sh)\n"
      "  bench model [-m PATH] [-p 512] [-n 128] [-b 1,8] [-r 3] [--json FILE] [--no-graph] [--no-warmup]\n"
      "                                  prompt (ppN) and generation (tgN) tokens/s, llama-bench style\n"
      "  devices                         list backends and their devices\n"
      "  ops --coverage [--json FILE]    every op and the dtypes each backend supports\n"
      "  bench ops [--filter REGEX] [--json FILE] [--device DEV] [--quick]\n"
      "                                  time ops on LLM shapes against the memory/compute floor\n"
      "  tune ops [--device cuda] [--ops gemv,softmax] [--out FILE] [--json FILE] [--quick]\n"
      "                                  time each kernel family's launch configs on LLM shapes and\n"
      "                                  write this machine's launch table (never done at run time)\n"
      "  bench comm -o OP [-b 8] [-e 1G] [-f 2] [-d f32] [-n N] [-D cpu|cuda] [--split K]\n"
      "             [--pipeline on|off] [--json FILE]\n"
      "                                  collective bandwidth, nccl-tests columns; --split K forces\n"
      "                                  the heterogeneous mode with K clusters\n"
      "  launch -n N [--no-mpi] -- CMD   start N ranks of CMD (FLAGOS_RANK, FLAGOS_WORLD_SIZE,\n"
      "                                  FLAGOS_COMM_ADDR), output prefixed \"[rank k] \"; stops all\n"
      "                                  when one fails and exits with its code\n");
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "launch") return flagos::cli::cmd_launch(argc - 2, argv + 2);
    flagos::cli::Args args(argc, argv, 2);
    if (cmd == "devices") return flagos::cli::cmd_devices(args);
    if (cmd == "ops") return flagos::cli::cmd_ops(args);
    if (cmd == "bench") return flagos::cli::cmd_bench(args);
    if (cmd == "run") return flagos::cli::cmd_run(args);
    if (cmd == "tune") return flagos::cli::cmd_tune(args);
    std::fprintf(stderr, "flagos: unknown command '%s'\n", cmd.c_str());
    usage();
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flagos %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
