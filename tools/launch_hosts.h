// `flagos launch --hosts h1:4,h2:4`: parsing and checking the host list, telling local hosts from
// remote ones, and quoting commands for ssh.
#pragma once
#include <string>
#include <vector>

namespace flagos::cli {

struct HostSlots {
  std::string host;
  int slots = 1;
  bool local = false;  // this machine (localhost, 127.x, its name or one of its addresses)
};

// "h1:4,h2:4" (":N" optional, default 1 slot). Throws InvalidArgument naming the bad entry.
std::vector<HostSlots> parse_hosts(const std::string& spec);
// "h1:4,h2:4" again (normalized), for mpirun --host.
std::string hosts_spec(const std::vector<HostSlots>& hosts);
bool is_local_host(const std::string& host);
// This machine's first non-loopback IPv4 address ("127.0.0.1" if none).
std::string local_address();
// Quotes one argument for a POSIX shell ('...' with embedded quotes escaped).
std::string shell_quote(const std::string& s);

}  // namespace flagos::cli
