#include "bench.h"
#include "cli.h"
#include "flagos/error.h"
#ifdef FLAGOS_HAVE_COMM
#include "comm_bench.h"
#endif

namespace flagos::cli {

// `flagos bench comm`: the communication library's bench (src/comm/bench), when built with MPI.
static int cmd_bench_comm(Args& a) {
#ifdef FLAGOS_HAVE_COMM
  comm::bench::Options o;
  auto take = [&](const char* name, const char* alt) {
    auto v = a.value(name);
    if (!v && alt) v = a.value(alt);
    if (v) o.argv.insert(o.argv.end(), {name, *v});
    return v;
  };
  if (auto v = take("-o", "--op")) o.op = *v;
  if (auto v = take("-b", "--minbytes")) o.min_bytes = comm::bench::parse_size(*v);
  if (auto v = take("-e", "--maxbytes")) o.max_bytes = comm::bench::parse_size(*v);
  if (auto v = take("-f", "--stepfactor")) o.factor = std::stod(*v);
  if (auto v = take("-d", "--datatype")) o.dtype = *v;
  if (auto v = take("-r", "--redop")) o.redop = *v;
  if (auto v = take("--root", nullptr)) o.root = std::stoi(*v);
  if (auto v = take("--iters", nullptr)) o.iters = std::stoi(*v);
  if (auto v = take("-w", "--warmup")) o.warmup = std::stoi(*v);
  if (auto v = take("--json", nullptr)) o.json = *v;
  if (auto v = take("-D", "--device")) o.device = *v;
  if (auto v = take("--pipeline", nullptr)) o.pipeline = *v == "off" || *v == "0" ? 0 : 1;
  if (auto v = take("--split", nullptr)) o.split = std::stoi(*v);
  if (auto v = a.value("-n")) o.nranks = std::stoi(*v);
  a.finish("bench comm");
  return comm::bench::run(o);
#else
  fail<NotSupported>("flagos bench comm: this build has no communication library (MPI was not found at configure time)");
#endif
}

int cmd_bench(Args& a) {
  const auto what = a.positional();
  if (what == "comm") return cmd_bench_comm(a);
  if (what == "model") return cmd_bench_model(a);
  if (what != "ops")
    fail("flagos bench: expected 'ops', 'model' or 'comm' (usage: flagos bench ops [--filter REGEX] [--json FILE]; "
         "flagos bench model [-m PATH] -p 512 -n 128 [-b 1,8] [--json FILE]; "
         "flagos bench comm -o allreduce -b 8 -e 1G -f 2 [-d bf16] [--json FILE])");
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
