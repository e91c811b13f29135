// Forms the clusters of the heterogeneous mode from the rank table and the environment.
#include "hetero/topology.h"

#include <cstdlib>
#include <cstring>
#include <map>

namespace flagos::comm::hetero {
namespace {

std::string env(const char* name) {
  const char* e = std::getenv(name);
  return e ? e : "";
}

long long parse_number(const std::string& s, const char* name, long long lo, long long hi, const char* call) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end || v < lo || v > hi)
    comm_fail(flagosInvalidArgument, call, ": ", name, "='", s, "' must be a number in ", lo, "..", hi);
  return v;
}

std::string field(const std::string& layout, const std::string& key) {
  const std::string k = key + "=";
  size_t p = 0;
  while (p < layout.size()) {
    const size_t e = std::min(layout.find(';', p), layout.size());
    if (layout.compare(p, k.size(), k) == 0) return layout.substr(p + k.size(), e - p - k.size());
    p = e + 1;
  }
  return "";
}

}  // namespace

std::string layout_from_env(const char* call) {
  pipeline_from_env(call);  // validates
  return "clusters=" + env("FLAGOS_COMM_CLUSTERS") + ";split=" + env("FLAGOS_COMM_SPLIT") +
         ";pipeline=" + env("FLAGOS_COMM_PIPELINE") + ";chunk=" + env("FLAGOS_COMM_CHUNK_BYTES") +
         ";depth=" + env("FLAGOS_COMM_PIPELINE_DEPTH");
}

PipelineSettings pipeline_from_env(const char* call) {
  PipelineSettings s;
  const std::string p = env("FLAGOS_COMM_PIPELINE");
  if (!p.empty()) s.pipelined = parse_number(p, "FLAGOS_COMM_PIPELINE", 0, 1, call) != 0;
  const std::string c = env("FLAGOS_COMM_CHUNK_BYTES");
  if (!c.empty()) s.chunk_bytes = static_cast<size_t>(parse_number(c, "FLAGOS_COMM_CHUNK_BYTES", 1, 1ll << 40, call));
  const std::string d = env("FLAGOS_COMM_PIPELINE_DEPTH");
  if (!d.empty()) s.depth = static_cast<int>(parse_number(d, "FLAGOS_COMM_PIPELINE_DEPTH", 2, 64, call));
  return s;
}

Topology make_topology(const std::vector<RankInfo>& table, int rank, const char* call) {
  const int n = static_cast<int>(table.size());
  for (int r = 1; r < n; ++r)
    if (table[static_cast<size_t>(r)].layout != table[0].layout)
      comm_fail(flagosInvalidUsage, call, ": ranks disagree on the heterogeneous-mode environment: rank 0 has '",
                table[0].layout, "', rank ", r, " has '", table[static_cast<size_t>(r)].layout,
                "' (FLAGOS_COMM_CLUSTERS, FLAGOS_COMM_SPLIT, FLAGOS_COMM_PIPELINE, FLAGOS_COMM_CHUNK_BYTES and "
                "FLAGOS_COMM_PIPELINE_DEPTH must be the same on every rank)");
  const std::string& layout = table[0].layout;
  const std::string clusters = field(layout, "clusters"), split = field(layout, "split");
  if (!clusters.empty() && !split.empty())
    comm_fail(flagosInvalidArgument, call, ": set FLAGOS_COMM_CLUSTERS or FLAGOS_COMM_SPLIT, not both");
  std::vector<std::string> label(static_cast<size_t>(n));
  if (!clusters.empty()) {
    size_t p = 0;
    for (int r = 0; r < n; ++r) {
      if (p > clusters.size())
        comm_fail(flagosInvalidArgument, call, ": FLAGOS_COMM_CLUSTERS='", clusters, "' has ", r,
                  " labels for ", n, " ranks (one label per rank, comma-separated, e.g. 0,0,1,1)");
      const size_t e = std::min(clusters.find(',', p), clusters.size());
      label[static_cast<size_t>(r)] = clusters.substr(p, e - p);
      if (label[static_cast<size_t>(r)].empty())
        comm_fail(flagosInvalidArgument, call, ": FLAGOS_COMM_CLUSTERS='", clusters, "' has an empty label for rank ", r);
      p = e + 1;
    }
    if (p <= clusters.size())
      comm_fail(flagosInvalidArgument, call, ": FLAGOS_COMM_CLUSTERS='", clusters, "' has more than ", n,
                " labels (one per rank)");
  } else if (!split.empty()) {
    const long long k = parse_number(split, "FLAGOS_COMM_SPLIT", 1, n, call);
    for (int r = 0; r < n; ++r) label[static_cast<size_t>(r)] = std::to_string(static_cast<long long>(r) * k / n);
  } else {
    for (int r = 0; r < n; ++r) label[static_cast<size_t>(r)] = table[static_cast<size_t>(r)].adaptor;
  }
  Topology t;
  t.rank = rank;
  t.nranks = n;
  std::map<std::string, int> index;
  for (int r = 0; r < n; ++r) {
    auto [it, fresh] = index.emplace(label[static_cast<size_t>(r)], static_cast<int>(t.members.size()));
    if (fresh) t.members.emplace_back();
    auto& m = t.members[static_cast<size_t>(it->second)];
    const RankInfo& lead = table[static_cast<size_t>(m.empty() ? r : m[0])];
    if (lead.adaptor != table[static_cast<size_t>(r)].adaptor)
      comm_fail(flagosInvalidArgument, call, ": cluster '", label[static_cast<size_t>(r)], "' mixes rank ", m[0], " (",
                lead.device, ", adaptor ", lead.adaptor, ") and rank ", r, " (", table[static_cast<size_t>(r)].device,
                ", adaptor ", table[static_cast<size_t>(r)].adaptor, "): a cluster needs one kind of device");
    t.cluster_of.push_back(it->second);
    t.local_of.push_back(static_cast<int>(m.size()));
    m.push_back(r);
  }
  size_t pos = 0;
  for (const auto& m : t.members) {
    t.first.push_back(pos);
    pos += m.size();
  }
  return t;
}

}  // namespace flagos::comm::hetero
