// Bootstrap: unique ids (address + port + random magic) and the TCP rendezvous with rank 0 that
// validates every rank's id and all-gathers each rank's RankInfo. No MPI here.
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

// Rank 0 serves, the others connect; returns every rank's info in rank order. Throws CommError:
// flagosTimeout when the root or a rank does not show up, flagosInvalidArgument for a wrong or stale
// id (the root ignores strangers with another magic and keeps waiting), flagosInvalidUsage when
// real ranks disagree (nranks, duplicate rank).
std::vector<RankInfo> rendezvous(const flagosUniqueId& id, int nranks, int rank, const RankInfo& mine,
                                 std::chrono::milliseconds timeout);

}  // namespace flagos::comm
