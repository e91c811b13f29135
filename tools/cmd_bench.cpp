#include "bench.h"
#include "cli.h"
#include "flagos/error.h"

namespace flagos::cli {

int cmd_bench(Args& a) {
  const auto what = a.positional();
  if (what != "ops") fail("flagos bench: expected 'ops' (usage: flagos bench ops [--filter REGEX] [--json FILE])");
  const bool quick = a.flag("--quick");
  const auto filter = a.value("--filter");
  const auto json = a.value("--json");
  const auto dev = a.value("--device");
  a.finish("bench ops");
  bench::Options o;
  o.device = parse_device(dev.value_or("cpu"));
  o.quick = quick;
  return bench::run_ops_benchmark(o, filter.value_or(""), json.value_or(""));
}

}  // namespace flagos::cli
