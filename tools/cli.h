// Small argument helper shared by the `flagos` subcommands.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace flagos::cli {

class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) v_.emplace_back(argv[i]);
  }
  // --name VALUE or --name=VALUE; removes it from the list.
  std::optional<std::string> value(const std::string& name);
  bool flag(const std::string& name);
  // The first argument not starting with '-', removed from the list.
  std::optional<std::string> positional();
  // Throws if anything is left unparsed, naming it.
  void finish(const std::string& cmd) const;

 private:
  std::vector<std::string> v_;
};

int cmd_devices(Args& a);
int cmd_ops(Args& a);
int cmd_bench(Args& a);
int cmd_bench_model(Args& a);
int cmd_run(Args& a);
int cmd_tune(Args& a);
// Takes the raw arguments after `launch` (everything after `--` is the command).
int cmd_launch(int argc, char** argv);

}  // namespace flagos::cli
