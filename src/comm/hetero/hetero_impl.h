// The heterogeneous adaptor's class, shared by its source files: hetero_adaptor.cpp (set-up, plans,
// dispatch, barrier, send/recv) and hetero_collectives.cpp (the pipelined programs of the collectives).
#pragma once
#include <cstdint>
#include <algorithm>
#include <map>
#include <tuple>

#include "hetero/hetero_adaptor.h"
#include "hetero/pipeline.h"

namespace flagos::comm::hetero {

// What a collective of one (call, count, dtype, op, root) needs: its chunking and its buffers (two
// kinds of device scratch and two kinds of host staging, one slot per chunk in flight). Cached.
struct Plan {
  size_t chunks = 0;  // J
  size_t chunk = 0;   // elements of the unit per chunk (the last may be shorter)
  size_t unit = 0;    // elements chunked: the count, or each rank's block
  int slots = 1;      // W: chunks in flight
  std::vector<void*> dev[2], host[2];
  size_t dev_bytes[2] = {0, 0}, host_bytes[2] = {0, 0};
  DeviceOps* mem = nullptr;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan();
  // Frees every buffer; the next need_* allocates `new_slots` slots.
  void reset(int new_slots);
  size_t first(size_t j) const { return j * chunk; }
  size_t len(size_t j) const { return std::min(chunk, unit - j * chunk); }
  // Makes every slot of a kind hold at least `bytes`.
  void need_dev(int kind, size_t bytes);
  void need_host(int kind, size_t bytes);
  char* d(int kind, size_t j) const { return static_cast<char*>(dev[kind][j % static_cast<size_t>(slots)]); }
  char* h(int kind, size_t j) const { return static_cast<char*>(host[kind][j % static_cast<size_t>(slots)]); }
};

class HeteroAdaptor final : public Adaptor {
 public:
  HeteroAdaptor(Topology topo, Parts parts, PipelineSettings settings, std::chrono::milliseconds timeout);
  ~HeteroAdaptor() override;
  const char* name() const override { return "hetero"; }
  void run(std::span<const Op> ops) override;
  std::unique_ptr<Work> start(std::span<const Op> ops, std::span<Work* const> after) override;
  void agree_max(int64_t* values, int n) override { world_->agree_max(values, n); }
  bool cheap_agree() const override { return world_->cheap_agree(); }
  void abort() noexcept override;
  flagosResult_t async_error(std::string* message) override { return intra_->async_error(message); }
  void finish(std::chrono::steady_clock::time_point deadline) override { intra_->finish(deadline); }

 private:
  using Segment = DeviceOps::Segment;
  using Key = std::tuple<int, size_t, int, int, int>;

  void collective(const Op& op);
  void point_to_point(std::span<const Op> ops);
  // Runs a program between the stream's begin and end; a failure marks the adaptor broken.
  void execute(Pipeline& p, void* stream, const std::string& what, StageTimes* times = nullptr);
  // The plan of `op`, chunking `unit` elements of which `factor` pieces share the largest buffer
  // (or into `chunks_given` chunks the caller cuts itself).
  Plan& plan(const Op& op, size_t unit, size_t factor, size_t chunks_given = 0);

  // Step helpers: an intra-cluster group, a group between leaders, a world group, a copy.
  int intra(Pipeline& p, std::vector<Op> ops, std::vector<int> deps);
  int inter(Pipeline& p, std::vector<Op> ops, std::vector<int> deps);
  int world(Pipeline& p, std::vector<Op> ops, std::vector<int> deps);
  int copy(Pipeline& p, bool to_host, void* dst, const void* src, std::vector<Segment> segs, std::vector<int> deps,
           std::function<void()> before = nullptr);

  // The programs (hetero_collectives.cpp).
  void all_reduce(Pipeline& p, const Op& op);
  void broadcast(Pipeline& p, const Op& op);
  void reduce(Pipeline& p, const Op& op);
  void all_gather(Pipeline& p, const Op& op);
  void reduce_scatter(Pipeline& p, const Op& op);
  void by_cluster(size_t m, std::vector<size_t>& counts, std::vector<size_t>* displs) const;
  // What gather and scatter share (hetero_collectives.cpp).
  struct Rooted {
    Plan& pl;
    size_t es, N, C, J, W;  // element size, ranks, count per rank, chunks, chunks in flight
    int c, rc, lroot;       // this rank's cluster, the root's cluster, the root's rank in it
    size_t nc;              // ranks in this cluster
    bool leader, home, is_root, handoff;  // handoff: the root's leader passes blocks to the root
  };
  Rooted rooted(const Op& op);
  void gather(Pipeline& p, const Op& op);
  void scatter(Pipeline& p, const Op& op);
  void alltoallv(Pipeline& p, const Op& op);
  void barrier(Pipeline& p, const Op& op);

  std::string where(const char* call) const;
  int n() const { return topo_.nranks; }
  int me() const { return topo_.rank; }

  Topology topo_;
  std::unique_ptr<Adaptor> intra_, leaders_, world_;
  std::unique_ptr<DeviceOps> mem_;
  PipelineSettings settings_;
  std::chrono::milliseconds timeout_;
  std::map<Key, std::pair<std::unique_ptr<Plan>, uint64_t>> plans_;  // plan, last use
  uint64_t uses_ = 0;
  std::vector<std::pair<void*, size_t>> p2p_staging_;
  bool broken_ = false;  // a call failed: transfers may still target the buffers, never free them
  // FLAGOS_COMM_STAGE_TIMES=1: per (call, bytes per rank), printed when the adaptor ends.
  std::map<std::pair<std::string, size_t>, StageTimes> stage_times_;
  void print_stage_times() const;
};

// Offsets into user buffers that may be null where the call ignores them.
inline const char* at(const void* p, size_t bytes) { return p ? static_cast<const char*>(p) + bytes : nullptr; }
inline char* at(void* p, size_t bytes) { return p ? static_cast<char*>(p) + bytes : nullptr; }

inline Op make_op(Coll c, const void* send, void* recv, size_t count, flagosDataType_t t, flagosRedOp_t op, int root,
                  void* stream) {
  Op o;
  o.coll = c;
  o.send = send;
  o.recv = recv;
  o.count = count;
  o.dtype = t;
  o.op = op;
  o.root = root;
  o.stream = stream;
  return o;
}

}  // namespace flagos::comm::hetero
