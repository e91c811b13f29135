// All-to-all(v) in the heterogeneous mode. Every rank knows the count matrix M[q][p] (what rank q
// sends to rank p): uniform for all-to-all, all-gathered over the world host adaptor for
// all-to-all-v (and checked against every rank's receive counts). Chunk j carries the j-th of J
// proportional pieces of every block. Per chunk: the members send their pieces to the leader,
// which receives them ordered by destination (cluster order) and source; the leaders exchange the
// parts for each other's clusters (all-to-all-v on host staging); each leader sends every member
// its pieces, which land at their receive displacements. Point-to-point messages inside the
// cluster do the reordering, so the copies stay contiguous.
#include <algorithm>

#include "hetero/hetero_impl.h"

namespace flagos::comm::hetero {
namespace {

int prev(const std::vector<int>& ids, size_t j, size_t back) { return j >= back ? ids[j - back] : -1; }

struct Pieces {
  const std::vector<size_t>& m;
  size_t N, J;
  size_t count(size_t q, size_t p) const { return m[q * N + p]; }
  size_t lo(size_t q, size_t p, size_t j) const {
    return static_cast<size_t>(static_cast<unsigned __int128>(count(q, p)) * j / J);
  }
  size_t len(size_t q, size_t p, size_t j) const { return lo(q, p, j + 1) - lo(q, p, j); }
};

}  // namespace

void HeteroAdaptor::alltoallv(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype), N = static_cast<size_t>(n()), self = static_cast<size_t>(me());
  const int c = topo_.cluster();
  const size_t nc = static_cast<size_t>(topo_.cluster_size(c)), K = static_cast<size_t>(topo_.clusters());
  const auto& mine_of = topo_.members[static_cast<size_t>(c)];
  std::vector<size_t> M(N * N), sd(N), rd(N);
  if (op.coll == Coll::alltoall) {
    std::fill(M.begin(), M.end(), op.count);
    for (size_t r = 0; r < N; ++r) sd[r] = rd[r] = r * op.count;
  } else {
    std::vector<uint64_t> all(2 * N * N);
    for (size_t r = 0; r < N; ++r) {
      all[self * 2 * N + r] = op.sendcounts[r];
      all[self * 2 * N + N + r] = op.recvcounts[r];
    }
    Op x = make_op(Coll::all_gather, all.data() + self * 2 * N, all.data(), 2 * N, flagosUint64, flagosSum, 0, nullptr);
    world_->run(std::span<const Op>(&x, 1));
    for (size_t q = 0; q < N; ++q)
      for (size_t r = 0; r < N; ++r) {
        M[q * N + r] = all[q * 2 * N + r];
        if (all[r * 2 * N + N + q] != M[q * N + r])
          comm_fail(flagosInvalidUsage, where("flagosAlltoAllv"), ": rank ", q, " sends ", M[q * N + r],
                    " elements to rank ", r, ", which expects ", all[r * 2 * N + N + q], " (recvcounts[", q, "])");
      }
    sd = op.sdispls;
    rd = op.rdispls;
  }
  // Chunks: the busiest leader moves at most chunk_bytes per chunk. In-place all-to-all-v uses one
  // chunk (pieces of later chunks could sit where earlier chunks land).
  size_t busiest = 0;
  for (size_t d = 0; d < K; ++d) {
    size_t out = 0, in = 0;
    for (int q : topo_.members[d])
      for (size_t r = 0; r < N; ++r) out += M[static_cast<size_t>(q) * N + r], in += M[r * N + static_cast<size_t>(q)];
    busiest = std::max({busiest, out, in});
  }
  if (busiest == 0) return;
  size_t J = 1;
  if (settings_.pipelined && !(op.coll == Coll::alltoallv && op.send == op.recv))
    J = std::max<size_t>(1, (busiest * es + settings_.chunk_bytes - 1) / settings_.chunk_bytes);
  Plan& pl = plan(op, 0, 1, J);
  const size_t W = static_cast<size_t>(pl.slots);
  const Pieces pc{M, N, J};
  const bool leader = topo_.leader();
  if (leader) {
    size_t out = 0, in = 0;
    for (int q : mine_of)
      for (size_t r = 0; r < N; ++r) out += M[static_cast<size_t>(q) * N + r], in += M[r * N + static_cast<size_t>(q)];
    const size_t slack = nc * N + 1;  // each piece is at most one element over its share
    pl.need_dev(0, (out / J + slack) * es);
    pl.need_host(0, (out / J + slack) * es);
    pl.need_host(1, (in / J + slack) * es);
    pl.need_dev(1, (in / J + slack) * es);
  }
  // Cluster order of the ranks, and the position of each rank inside its cluster.
  std::vector<size_t> order;
  for (const auto& m : topo_.members)
    for (int g : m) order.push_back(static_cast<size_t>(g));
  const char* send = static_cast<const char*>(op.send);
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1), S(J, -1);
  // For the S stage: where the piece from source q for member u sits in the leader's receive slot.
  std::vector<std::vector<size_t>> xoff(J);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t;
      std::vector<Op> msgs;
      for (size_t p_ : order) {
        const size_t L = pc.len(self, p_, j);
        if (L)
          msgs.push_back(make_op(Coll::send, send + (sd[p_] + pc.lo(self, p_, j)) * es, nullptr, L, op.dtype, flagosSum, 0,
                                 op.stream));
      }
      size_t gtotal = 0;
      std::vector<size_t> portion(K, 0), pstart(K, 0);
      if (leader) {
        // Received layout: by destination (cluster order), then source member.
        for (size_t d = 0; d < K; ++d) {
          pstart[d] = gtotal;
          for (int pg : topo_.members[d])
            for (size_t u = 0; u < nc; ++u) {
              const size_t L = pc.len(static_cast<size_t>(mine_of[u]), static_cast<size_t>(pg), j);
              if (L)
                msgs.push_back(make_op(Coll::recv, nullptr, pl.d(0, j) + gtotal * es, L, op.dtype, flagosSum,
                                       static_cast<int>(u), op.stream));
              gtotal += L;
            }
          portion[d] = gtotal - pstart[d];
        }
      }
      if (!msgs.empty()) R[j] = intra(p, std::move(msgs), {leader ? prev(D, j, W) : -1});
      if (leader) {
        // What the leaders receive, from source cluster e: for each member u here, each source in e.
        std::vector<size_t> from(K, 0), fstart(K, 0);
        xoff[j].assign(nc * N, 0);
        size_t xtotal = 0;
        for (size_t e = 0; e < K; ++e) {
          fstart[e] = xtotal;
          for (size_t u = 0; u < nc; ++u)
            for (int q : topo_.members[e]) {
              xoff[j][u * N + static_cast<size_t>(q)] = xtotal;
              xtotal += pc.len(static_cast<size_t>(q), static_cast<size_t>(mine_of[u]), j);
            }
          from[e] = xtotal - fstart[e];
        }
        D[j] = copy(p, true, pl.h(0, j), pl.d(0, j), {{0, 0, gtotal * es}}, {R[j], prev(X, j, W)});
        Op x = make_op(Coll::alltoallv, pl.h(0, j), pl.h(1, j), 0, op.dtype, flagosSum, 0, nullptr);
        x.sendcounts = portion;
        x.sdispls = pstart;
        x.recvcounts = from;
        x.rdispls = fstart;
        X[j] = inter(p, {x}, {D[j], prev(U, j, W)});
        U[j] = copy(p, false, pl.d(1, j), pl.h(1, j), {{0, 0, xtotal * es}}, {X[j], prev(S, j, W)});
      }
    }
    if (t + 1 >= W) {
      const size_t j = t + 1 - W;
      std::vector<Op> msgs;
      if (leader)
        for (size_t u = 0; u < nc; ++u)
          for (size_t q = 0; q < N; ++q) {
            const size_t L = pc.len(q, static_cast<size_t>(mine_of[u]), j);
            if (L)
              msgs.push_back(make_op(Coll::send, pl.d(1, j) + xoff[j][u * N + q] * es, nullptr, L, op.dtype, flagosSum,
                                     static_cast<int>(u), op.stream));
          }
      for (size_t q = 0; q < N; ++q) {
        const size_t L = pc.len(q, self, j);
        if (L)
          msgs.push_back(make_op(Coll::recv, nullptr, recv + (rd[q] + pc.lo(q, self, j)) * es, L, op.dtype, flagosSum, 0,
                                 op.stream));
      }
      if (!msgs.empty()) S[j] = intra(p, std::move(msgs), {U[j]});
      xoff[j].clear();
    }
  }
}

}  // namespace flagos::comm::hetero
