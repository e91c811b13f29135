// The pipelined programs of the heterogeneous mode, one per collective. Each call is cut into J
// chunks (pieces of the buffer, or the same piece of every rank's block); chunk j goes through
//   intra-cluster stage -> copy to host staging -> transfer between leaders -> copy back -> intra stage
// with W staging slots per buffer, so up to W chunks are in flight. The intra channel's order is
// fixed: the first stages of chunks 0..W-1, then alternately the last stage of chunk j and the first
// of chunk j+W (every rank of a cluster issues the same sequence). Dependencies j-W on a step say
// that the slot it writes was last read by chunk j-W. Buffers laid out "in cluster order" list the
// ranks cluster by cluster (Topology::pos); results land at global-rank positions.
#include <algorithm>

#include "hetero/hetero_impl.h"

namespace flagos::comm::hetero {
namespace {

flagosRedOp_t staged_op(flagosRedOp_t op) { return op == flagosAvg ? flagosSum : op; }

// Step id of chunk j - back, or -1.
int prev(const std::vector<int>& ids, size_t j, size_t back) { return j >= back ? ids[j - back] : -1; }

}  // namespace

// The leaders' v-calls: m elements per rank, so each cluster's count (and its displacement, when
// wanted) in cluster order.
void HeteroAdaptor::by_cluster(size_t m, std::vector<size_t>& counts, std::vector<size_t>* displs) const {
  for (size_t d = 0; d < static_cast<size_t>(topo_.clusters()); ++d) {
    counts.push_back(topo_.members[d].size() * m);
    if (displs) displs->push_back(topo_.first[d] * m);
  }
}

void HeteroAdaptor::all_reduce(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype);
  Plan& pl = plan(op, op.count, 1);
  const size_t J = pl.chunks, W = static_cast<size_t>(pl.slots);
  const bool leader = topo_.leader();
  const flagosRedOp_t sop = staged_op(op.op);
  if (leader) {  // the leaders reduce out of place (an in-place host all-reduce costs a copy per chunk)
    pl.need_host(0, pl.chunk * es);
    pl.need_host(1, pl.chunk * es);
  }
  const char* send = static_cast<const char*>(op.send);
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j) * es, m = pl.len(j);
      R[j] = intra(p, {make_op(Coll::reduce, send + a, recv + a, m, op.dtype, sop, 0, op.stream)}, {});
      if (leader) {
        char *h = pl.h(0, j), *g = pl.h(1, j);
        D[j] = copy(p, true, h, recv + a, {{0, 0, m * es}}, {R[j], prev(X, j, W)});
        X[j] = inter(p, {make_op(Coll::all_reduce, h, g, m, op.dtype, sop, 0, nullptr)}, {D[j], prev(U, j, W)});
        std::function<void()> avg;
        if (op.op == flagosAvg) avg = [g, m, t = op.dtype, by = n()] { divide_elements(g, m, t, by); };
        U[j] = copy(p, false, recv + a, g, {{0, 0, m * es}}, {X[j]}, std::move(avg));
      }
    }
    if (t + 1 >= W) {
      const size_t j = t + 1 - W, a = pl.first(j) * es;
      intra(p, {make_op(Coll::broadcast, recv + a, recv + a, pl.len(j), op.dtype, flagosSum, 0, op.stream)}, {U[j]});
    }
  }
}

// The root's cluster broadcasts inside (its leader thereby gets the data), the leaders broadcast
// from that leader, the other clusters broadcast from their leaders.
void HeteroAdaptor::broadcast(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype);
  Plan& pl = plan(op, op.count, 1);
  const size_t J = pl.chunks, W = static_cast<size_t>(pl.slots);
  const int rc = topo_.cluster_of[static_cast<size_t>(op.root)], lroot = topo_.local_of[static_cast<size_t>(op.root)];
  const bool leader = topo_.leader(), home = topo_.cluster() == rc;
  if (leader) pl.need_host(0, pl.chunk * es);
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> D(J, -1), X(J, -1), U(J, -1);
  for (size_t j = 0; j < J; ++j) {
    const size_t a = pl.first(j) * es, m = pl.len(j);
    char* h = leader ? pl.h(0, j) : nullptr;
    const Op leaders_bcast = make_op(Coll::broadcast, h, h, m, op.dtype, flagosSum, rc, nullptr);
    if (home) {
      const int b = intra(p, {make_op(Coll::broadcast, at(op.send, a), recv + a, m, op.dtype, flagosSum, lroot, op.stream)}, {});
      if (leader) {
        D[j] = copy(p, true, h, recv + a, {{0, 0, m * es}}, {b, prev(X, j, W)});
        X[j] = inter(p, {leaders_bcast}, {D[j]});
      }
    } else {
      if (leader) {
        X[j] = inter(p, {leaders_bcast}, {prev(U, j, W)});
        U[j] = copy(p, false, recv + a, h, {{0, 0, m * es}}, {X[j]});
      }
      intra(p, {make_op(Coll::broadcast, recv + a, recv + a, m, op.dtype, flagosSum, 0, op.stream)}, {U[j]});
    }
  }
}

// Each cluster reduces to its leader, the leaders reduce to the root's leader, which hands the result
// to the root (point to point inside the root's cluster when the root does not lead it).
void HeteroAdaptor::reduce(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype);
  Plan& pl = plan(op, op.count, 1);
  const size_t J = pl.chunks, W = static_cast<size_t>(pl.slots);
  const int rc = topo_.cluster_of[static_cast<size_t>(op.root)], lroot = topo_.local_of[static_cast<size_t>(op.root)];
  const bool leader = topo_.leader(), home = topo_.cluster() == rc, is_root = me() == op.root;
  const bool handoff = home && lroot != 0;  // the root's leader passes the result on
  const flagosRedOp_t sop = staged_op(op.op);
  if (leader) {
    pl.need_host(0, pl.chunk * es);
    if (!is_root) pl.need_dev(0, pl.chunk * es);
    if (handoff) pl.need_dev(1, pl.chunk * es);
  }
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1), P(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j) * es, m = pl.len(j);
      char* target = leader ? (is_root ? recv + a : pl.d(0, j)) : at(op.recv, a);
      R[j] = intra(p, {make_op(Coll::reduce, at(op.send, a), target, m, op.dtype, sop, 0, op.stream)},
                   {leader && !is_root ? prev(D, j, W) : -1});
      if (leader) {
        char* h = pl.h(0, j);
        D[j] = copy(p, true, h, target, {{0, 0, m * es}}, {R[j], home ? prev(U, j, W) : prev(X, j, W)});
        X[j] = inter(p, {make_op(Coll::reduce, h, h, m, op.dtype, sop, rc, nullptr)}, {D[j]});
        if (home) {
          std::function<void()> avg;
          if (op.op == flagosAvg) avg = [h, m, t = op.dtype, by = n()] { divide_elements(h, m, t, by); };
          U[j] = copy(p, false, is_root ? recv + a : pl.d(1, j), h, {{0, 0, m * es}}, {X[j], prev(P, j, W)},
                      std::move(avg));
        }
      }
    }
    if (handoff && t + 1 >= W) {
      const size_t j = t + 1 - W, a = pl.first(j) * es, m = pl.len(j);
      if (leader) P[j] = intra(p, {make_op(Coll::send, pl.d(1, j), nullptr, m, op.dtype, flagosSum, lroot, op.stream)}, {U[j]});
      else if (is_root) intra(p, {make_op(Coll::recv, nullptr, recv + a, m, op.dtype, flagosSum, 0, op.stream)}, {});
    }
  }
}

// Gather to the leader, all-gather between leaders (cluster order), copy to global-rank positions,
// broadcast every block inside the cluster.
void HeteroAdaptor::all_gather(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype), N = static_cast<size_t>(n()), C = op.count;
  Plan& pl = plan(op, C, N);
  const size_t J = pl.chunks, W = static_cast<size_t>(pl.slots);
  const int c = topo_.cluster();
  const size_t nc = static_cast<size_t>(topo_.cluster_size(c));
  const bool leader = topo_.leader();
  if (leader) {
    pl.need_dev(0, nc * pl.chunk * es);
    pl.need_host(0, N * pl.chunk * es);
  }
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j), m = pl.len(j);
      R[j] = intra(p, {make_op(Coll::gather, at(op.send, a * es), leader ? pl.d(0, j) : nullptr, m, op.dtype, flagosSum, 0,
                               op.stream)},
                   {prev(D, j, W)});
      if (leader) {
        char* h = pl.h(0, j);
        const size_t mine = topo_.first[static_cast<size_t>(c)] * m * es;
        D[j] = copy(p, true, h + mine, pl.d(0, j), {{0, 0, nc * m * es}}, {R[j], prev(U, j, W)});
        Op x = make_op(Coll::all_gather_v, h + mine, h, nc * m, op.dtype, flagosSum, 0, nullptr);
        by_cluster(m, x.recvcounts, &x.rdispls);
        X[j] = inter(p, {x}, {D[j]});
        std::vector<Segment> segs;
        for (size_t g = 0; g < N; ++g)
          segs.push_back({(g * C + a) * es, topo_.pos(static_cast<int>(g)) * m * es, m * es});
        U[j] = copy(p, false, recv, h, std::move(segs), {X[j]});
      }
    }
    if (t + 1 >= W) {
      const size_t j = t + 1 - W, a = pl.first(j), m = pl.len(j);
      std::vector<Op> bcasts;
      for (size_t g = 0; g < N; ++g) {
        char* block = recv + (g * C + a) * es;
        bcasts.push_back(make_op(Coll::broadcast, block, block, m, op.dtype, flagosSum, 0, op.stream));
      }
      intra(p, std::move(bcasts), {U[j]});
    }
  }
}

// Reduce every block to the leader (cluster order), reduce-scatter between leaders (each gets its
// cluster's blocks), scatter inside the cluster.
void HeteroAdaptor::reduce_scatter(Pipeline& p, const Op& op) {
  const size_t es = dtype_size(op.dtype), N = static_cast<size_t>(n()), C = op.count;
  Plan& pl = plan(op, C, N);
  const size_t J = pl.chunks, W = static_cast<size_t>(pl.slots);
  const int c = topo_.cluster();
  const size_t nc = static_cast<size_t>(topo_.cluster_size(c));
  const bool leader = topo_.leader();
  const flagosRedOp_t sop = staged_op(op.op);
  if (leader) {
    pl.need_dev(0, N * pl.chunk * es);
    pl.need_host(0, N * pl.chunk * es);
    pl.need_host(1, nc * pl.chunk * es);
    pl.need_dev(1, nc * pl.chunk * es);
  }
  const char* send = static_cast<const char*>(op.send);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1), S(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j), m = pl.len(j);
      std::vector<Op> reds;
      for (size_t g = 0; g < N; ++g)
        reds.push_back(make_op(Coll::reduce, send + (g * C + a) * es,
                               leader ? pl.d(0, j) + topo_.pos(static_cast<int>(g)) * m * es : nullptr, m, op.dtype, sop,
                               0, op.stream));
      R[j] = intra(p, std::move(reds), {prev(D, j, W)});
      if (leader) {
        D[j] = copy(p, true, pl.h(0, j), pl.d(0, j), {{0, 0, N * m * es}}, {R[j], prev(X, j, W)});
        Op x = make_op(Coll::reduce_scatter_v, pl.h(0, j), pl.h(1, j), 0, op.dtype, sop, 0, nullptr);
        by_cluster(m, x.recvcounts, nullptr);
        X[j] = inter(p, {x}, {D[j], prev(U, j, W)});
        std::function<void()> avg;
        if (op.op == flagosAvg) avg = [h = pl.h(1, j), k = nc * m, t = op.dtype, by = n()] { divide_elements(h, k, t, by); };
        U[j] = copy(p, false, pl.d(1, j), pl.h(1, j), {{0, 0, nc * m * es}}, {X[j], prev(S, j, W)}, std::move(avg));
      }
    }
    if (t + 1 >= W) {
      const size_t j = t + 1 - W;
      S[j] = intra(p, {make_op(Coll::scatter, leader ? pl.d(1, j) : nullptr, static_cast<char*>(op.recv) + pl.first(j) * es,
                               pl.len(j), op.dtype, flagosSum, 0, op.stream)},
                   {U[j]});
    }
  }
}

// Gather and scatter: every rank's block is chunked; a leader stages its cluster's blocks of a chunk
// on the device (device slot 0) and all N blocks in cluster order on the host (host slot 0); the
// root's leader also keeps all N blocks on the device when the root does not lead (device slot 1).
HeteroAdaptor::Rooted HeteroAdaptor::rooted(const Op& op) {
  const size_t es = dtype_size(op.dtype), N = static_cast<size_t>(n()), C = op.count;
  Plan& pl = plan(op, C, N);
  const int c = topo_.cluster();
  const int rc = topo_.cluster_of[static_cast<size_t>(op.root)], lroot = topo_.local_of[static_cast<size_t>(op.root)];
  const size_t nc = static_cast<size_t>(topo_.cluster_size(c));
  const bool leader = topo_.leader(), home = c == rc;
  if (leader) {
    pl.need_dev(0, nc * pl.chunk * es);
    pl.need_host(0, N * pl.chunk * es);
    if (home && lroot != 0) pl.need_dev(1, N * pl.chunk * es);
  }
  return Rooted{pl, es, N, C, pl.chunks, static_cast<size_t>(pl.slots), c, rc, lroot, nc, leader, home,
                me() == op.root, home && lroot != 0};
}

// Gather to the leaders, gather between leaders to the root's leader (cluster order), which copies
// to global-rank positions (or hands the blocks to the root point to point).
void HeteroAdaptor::gather(Pipeline& p, const Op& op) {
  const auto& [pl, es, N, C, J, W, c, rc, lroot, nc, leader, home, is_root, handoff] = rooted(op);
  char* recv = static_cast<char*>(op.recv);
  std::vector<int> R(J, -1), D(J, -1), X(J, -1), U(J, -1), P(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j), m = pl.len(j);
      R[j] = intra(p, {make_op(Coll::gather, at(op.send, a * es), leader ? pl.d(0, j) : nullptr, m, op.dtype, flagosSum, 0,
                               op.stream)},
                   {prev(D, j, W)});
      if (leader) {
        char* h = pl.h(0, j);
        const size_t mine = topo_.first[static_cast<size_t>(c)] * m * es;
        D[j] = copy(p, true, h + mine, pl.d(0, j), {{0, 0, nc * m * es}}, {R[j], home ? prev(U, j, W) : prev(X, j, W)});
        Op x = make_op(Coll::gather_v, h + mine, home ? h : nullptr, nc * m, op.dtype, flagosSum, rc, nullptr);
        by_cluster(m, x.recvcounts, &x.rdispls);
        X[j] = inter(p, {x}, {D[j]});
        if (home && is_root) {
          std::vector<Segment> segs;
          for (size_t g = 0; g < N; ++g)
            segs.push_back({(g * C + a) * es, topo_.pos(static_cast<int>(g)) * m * es, m * es});
          U[j] = copy(p, false, recv, h, std::move(segs), {X[j]});
        } else if (home) {
          U[j] = copy(p, false, pl.d(1, j), h, {{0, 0, N * m * es}}, {X[j], prev(P, j, W)});
        }
      }
    }
    if (handoff && t + 1 >= W) {
      const size_t j = t + 1 - W, a = pl.first(j), m = pl.len(j);
      std::vector<Op> msgs;
      for (size_t g = 0; g < N; ++g) {
        if (leader)
          msgs.push_back(make_op(Coll::send, pl.d(1, j) + topo_.pos(static_cast<int>(g)) * m * es, nullptr, m, op.dtype,
                                 flagosSum, lroot, op.stream));
        else if (is_root)
          msgs.push_back(make_op(Coll::recv, nullptr, recv + (g * C + a) * es, m, op.dtype, flagosSum, 0, op.stream));
      }
      if (!msgs.empty()) P[j] = intra(p, std::move(msgs), {U[j]});
    }
  }
}

// The root's leader gets the blocks in cluster order (from the root point to point when it does not
// lead), scatters them between leaders, and each leader scatters inside its cluster.
void HeteroAdaptor::scatter(Pipeline& p, const Op& op) {
  const auto& [pl, es, N, C, J, W, c, rc, lroot, nc, leader, home, is_root, handoff] = rooted(op);
  const char* send = static_cast<const char*>(op.send);
  std::vector<int> Q(J, -1), D(J, -1), X(J, -1), U(J, -1), S(J, -1);
  for (size_t t = 0; t + 1 < J + W; ++t) {
    if (t < J) {
      const size_t j = t, a = pl.first(j), m = pl.len(j);
      char* h = leader ? pl.h(0, j) : nullptr;
      const size_t mine = topo_.first[static_cast<size_t>(c)] * m * es;
      if (handoff && (leader || is_root)) {
        std::vector<Op> msgs;
        for (size_t g = 0; g < N; ++g) {
          if (leader)
            msgs.push_back(make_op(Coll::recv, nullptr, pl.d(1, j) + topo_.pos(static_cast<int>(g)) * m * es, m, op.dtype,
                                   flagosSum, lroot, op.stream));
          else
            msgs.push_back(make_op(Coll::send, send + (g * C + a) * es, nullptr, m, op.dtype, flagosSum, 0, op.stream));
        }
        Q[j] = intra(p, std::move(msgs), {leader ? prev(D, j, W) : -1});
      }
      if (leader && home) {
        if (is_root) {
          std::vector<Segment> segs;
          for (size_t g = 0; g < N; ++g)
            segs.push_back({topo_.pos(static_cast<int>(g)) * m * es, (g * C + a) * es, m * es});
          D[j] = copy(p, true, h, send, std::move(segs), {prev(U, j, W)});
        } else {
          D[j] = copy(p, true, h, pl.d(1, j), {{0, 0, N * m * es}}, {Q[j], prev(U, j, W)});
        }
      }
      if (leader) {
        Op x = make_op(Coll::scatter_v, home ? h : nullptr, h + mine, nc * m, op.dtype, flagosSum, rc, nullptr);
        by_cluster(m, x.sendcounts, &x.sdispls);
        X[j] = inter(p, {x}, {home ? D[j] : prev(U, j, W)});
        U[j] = copy(p, false, pl.d(0, j), h + mine, {{0, 0, nc * m * es}}, {X[j], prev(S, j, W)});
      }
    }
    if (t + 1 >= W) {
      const size_t j = t + 1 - W;
      S[j] = intra(p, {make_op(Coll::scatter, leader ? pl.d(0, j) : nullptr, static_cast<char*>(op.recv) + pl.first(j) * es,
                               pl.len(j), op.dtype, flagosSum, 0, op.stream)},
                   {U[j]});
    }
  }
}

}  // namespace flagos::comm::hetero
