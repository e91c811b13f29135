// Bootstrap: unique ids (address + port + random magic) and the TCP rendezvous with rank 0 that
// validates every rank's id and all-gathers each rank's RankInfo; the connections stay open while
// the communicator is set up, so adaptors can exchange their own ids (NCCL's) through them. No MPI.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "comm_internal.h"

namespace flagos::comm {

struct IdFields {
  std::string host;  // numeric IPv4 or a resolvable name
  uint16_t port = 0;
  uint64_t magic = 0;
};
// Encodes / decodes the 128-byte flagosUniqueId; decode throws InvalidArgument on a malformed id.
flagosUniqueId encode_id(const IdFields& f);
IdFields decode_id(const flagosUniqueId& id, const char* call);
std::string describe_id(const IdFields& f);  // "127.0.0.1:4242 magic 0x..."

// See flagosCommGetUniqueId in comm.h.
flagosUniqueId make_unique_id();

// One rendezvous: rank 0 serves, the others connect. Errors are CommError: flagosTimeout when the
// root or a rank does not show up, flagosInvalidArgument for a wrong or stale id (the root ignores
// strangers with another magic and keeps waiting), flagosInvalidUsage when real ranks disagree
// (nranks, duplicate rank), flagosRemoteError when a peer goes away.
class Bootstrap {
 public:
  Bootstrap(const flagosUniqueId& id, int nranks, int rank, const RankInfo& mine, std::chrono::milliseconds timeout);
  ~Bootstrap();
  Bootstrap(const Bootstrap&) = delete;
  Bootstrap& operator=(const Bootstrap&) = delete;
  // Every rank's info in rank order.
  const std::vector<RankInfo>& table() const { return table_; }
  // Every rank's blob in rank order (relayed by rank 0), within the timeout. Collective.
  std::vector<std::string> allgather(const std::string& mine);

 private:
  int nranks_, rank_;
  std::chrono::milliseconds timeout_;
  std::vector<RankInfo> table_;
  std::vector<int> fds_;  // rank 0: one per peer (index = rank); others: [0] = the root
};

}  // namespace flagos::comm
