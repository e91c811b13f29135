// `flagos ops --coverage`: every declared op and the dtype keys each backend registered.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "flagos/error.h"
#include "flagos/backend.h"
#include "flagos/kernel.h"

namespace flagos::ops {
const std::vector<std::pair<const char*, const char*>>& composite_ops();
}

namespace flagos::cli {

int cmd_ops(Args& a) {
  const bool coverage = a.flag("--coverage");
  const auto json_path = a.value("--json");
  a.finish("ops");
  if (!coverage) fail("flagos ops: pass --coverage");
  KernelRegistry& reg = kernels();
  nlohmann::json j;
  for (int b = 0; b < backend_count(); ++b) {
    const auto bid = static_cast<uint16_t>(b);
    const std::string bname(backend(bid).name());
    std::printf("backend %s\n%-14s %-14s %s\n", bname.c_str(), "category", "op", "dtypes");
    int with = 0, total = 0, variants = 0;
    nlohmann::json jb = nlohmann::json::object();
    for (size_t op = 0; op < reg.ops().size(); ++op) {
      const auto keys = reg.keys(static_cast<uint16_t>(op), bid);
      std::string ks;
      nlohmann::json jk = nlohmann::json::array();
      for (const auto& k : keys) {
        ks += (ks.empty() ? "" : " ") + key_to_string(k);
        jk.push_back(key_to_string(k));
      }
      ++total;
      if (!keys.empty()) ++with;
      variants += static_cast<int>(keys.size());
      std::printf("%-14s %-14s %s\n", reg.ops()[op].category.c_str(), reg.ops()[op].name.c_str(),
                  keys.empty() ? "-- MISSING --" : ks.c_str());
      jb[reg.ops()[op].name] = {{"category", reg.ops()[op].category}, {"dtypes", jk}};
    }
    std::printf("total: %d/%d ops implemented, %d (op, dtype) kernels\n\n", with, total, variants);
    j["backends"][bname] = {{"ops", jb}, {"implemented", with}, {"declared", total}, {"kernels", variants}};
  }
  std::printf("composite ops (built from others, no kernel of their own):");
  for (const auto& [name, via] : ops::composite_ops()) {
    std::printf(" %s(%s)", name, via);
    j["composite"][name] = via;
  }
  std::printf("\n");
  if (json_path) {
    std::ofstream f(*json_path);
    if (!f) fail("cannot write ", *json_path);
    f << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace flagos::cli
