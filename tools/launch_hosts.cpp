// Host lists of `flagos launch --hosts`.
#include "launch_hosts.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>

#include "flagos/error.h"

namespace flagos::cli {
namespace {

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

std::vector<std::string> local_ipv4s() {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof(buf));
    out.emplace_back(buf);
  }
  ::freeifaddrs(ifs);
  return out;
}

}  // namespace

std::vector<HostSlots> parse_hosts(const std::string& spec) {
  const char* usage = " (expected host[:slots],host[:slots],... e.g. --hosts node1:4,node2:4)";
  if (spec.empty()) fail("flagos launch: --hosts is empty", usage);
  std::vector<HostSlots> out;
  size_t p = 0;
  while (p <= spec.size()) {
    const size_t e = std::min(spec.find(',', p), spec.size());
    const std::string entry = spec.substr(p, e - p);
    if (entry.empty()) fail("flagos launch: --hosts '", spec, "' has an empty entry", usage);
    HostSlots h;
    const size_t colon = entry.find(':');
    h.host = entry.substr(0, colon);
    if (h.host.empty()) fail("flagos launch: --hosts entry '", entry, "' has no host name", usage);
    for (char c : h.host)
      if (!valid_host_char(c))
        fail("flagos launch: --hosts entry '", entry, "': '", h.host, "' is not a host name or IPv4 address", usage);
    if (colon != std::string::npos) {
      const std::string n = entry.substr(colon + 1);
      char* end = nullptr;
      const long v = std::strtol(n.c_str(), &end, 10);
      if (n.empty() || *end || v < 1 || v > 1024)
        fail("flagos launch: --hosts entry '", entry, "': slots '", n, "' must be a number in 1..1024", usage);
      h.slots = static_cast<int>(v);
    }
    for (const auto& o : out)
      if (o.host == h.host) fail("flagos launch: --hosts names '", h.host, "' twice (give it one entry with all its slots)");
    h.local = is_local_host(h.host);
    out.push_back(h);
    p = e + 1;
  }
  return out;
}

std::string hosts_spec(const std::vector<HostSlots>& hosts) {
  std::string s;
  for (const auto& h : hosts) s += (s.empty() ? "" : ",") + h.host + ":" + std::to_string(h.slots);
  return s;
}

bool is_local_host(const std::string& host) {
  if (host == "localhost" || host.rfind("127.", 0) == 0) return true;
  char name[256] = {0};
  ::gethostname(name, sizeof(name) - 1);
  const std::string me = name;
  if (host == me || host == me.substr(0, me.find('.'))) return true;
  for (const auto& a : local_ipv4s())
    if (a == host) return true;
  return false;
}

std::string local_address() {
  for (const auto& a : local_ipv4s())
    if (a.rfind("127.", 0) != 0) return a;
  return "127.0.0.1";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace flagos::cli
