// `flagos tune ops`: regenerate the launch tables of a backend on the machine at hand (bench/tune.h).
#include "cli.h"
#include "flagos/error.h"
#include "tune.h"

namespace flagos::cli {

int cmd_tune(Args& a) {
  const auto what = a.positional();
  if (what != "ops")
    fail("flagos tune: expected 'ops' (usage: flagos tune ops [--device cuda] [--ops gemv,softmax] [--out FILE] "
         "[--json FILE] [--quick])");
  bench::TuneOptions o;
  o.device = parse_device(a.value("--device").value_or("cuda"));
  if (auto v = a.value("--ops")) {
    std::string s = *v;
    size_t p = 0;
    while (p <= s.size()) {
      const size_t c = s.find(',', p);
      std::string name = s.substr(p, c == std::string::npos ? std::string::npos : c - p);
      if (name.empty()) fail("flagos tune ops: empty name in --ops '", s, "'");
      o.families.push_back(name);
      if (c == std::string::npos) break;
      p = c + 1;
    }
  }
  o.out = a.value("--out").value_or("");
  o.json = a.value("--json").value_or("");
  o.quick = a.flag("--quick");
  a.finish("tune ops");
  return bench::run_tune(o);
}

}  // namespace flagos::cli
