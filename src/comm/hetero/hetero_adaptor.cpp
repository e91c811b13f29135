// The heterogeneous adaptor: set-up, the plan cache, step helpers, dispatch of a group (send/recv
// first, then each collective in order), the barrier and send/recv across clusters.
#include "hetero/hetero_impl.h"

#include <algorithm>
#include <cstdio>

namespace flagos::comm::hetero {
namespace {

constexpr size_t kMaxPlans = 8;

class DoneWork final : public Work {
 public:
  bool done() override { return true; }
};

}  // namespace

Plan::~Plan() { reset(slots); }

void Plan::reset(int new_slots) {
  for (int k = 0; k < 2; ++k) {
    for (void* p : dev[k]) mem->release(p);
    for (void* p : host[k]) mem->release_host(p);
    dev[k].clear();
    host[k].clear();
    dev_bytes[k] = host_bytes[k] = 0;
  }
  slots = new_slots;
}

void Plan::need_dev(int kind, size_t bytes) {
  if (dev_bytes[kind] >= bytes && !dev[kind].empty()) return;
  for (void* p : dev[kind]) mem->release(p);
  dev[kind].clear();
  for (int s = 0; s < slots; ++s) dev[kind].push_back(mem->alloc(std::max<size_t>(bytes, 1)));
  dev_bytes[kind] = bytes;
}

void Plan::need_host(int kind, size_t bytes) {
  if (host_bytes[kind] >= bytes && !host[kind].empty()) return;
  for (void* p : host[kind]) mem->release_host(p);
  host[kind].clear();
  for (int s = 0; s < slots; ++s) host[kind].push_back(mem->alloc_host(std::max<size_t>(bytes, 1)));
  host_bytes[kind] = bytes;
}

HeteroAdaptor::HeteroAdaptor(Topology topo, Parts parts, PipelineSettings settings, std::chrono::milliseconds timeout)
    : topo_(std::move(topo)),
      intra_(std::move(parts.intra)),
      leaders_(std::move(parts.leaders)),
      world_(std::move(parts.world)),
      mem_(std::move(parts.mem)),
      settings_(settings),
      timeout_(timeout) {}

HeteroAdaptor::~HeteroAdaptor() {
  print_stage_times();
  if (broken_) {
    for (auto& [key, entry] : plans_) static_cast<void>(entry.first.release());
    return;
  }
  for (auto& [ptr, size] : p2p_staging_)
    if (ptr) mem_->release_host(ptr);
}

std::string HeteroAdaptor::where(const char* call) const {
  return detail::concat(call, " (rank ", me(), " of ", n(), ", cluster ", topo_.cluster(), " of ", topo_.clusters(),
                        ")");
}

void HeteroAdaptor::abort() noexcept {
  broken_ = true;
  intra_->abort();
  if (leaders_) leaders_->abort();
  world_->abort();
}

Plan& HeteroAdaptor::plan(const Op& op, size_t unit, size_t factor, size_t chunks_given) {
  const Key key{static_cast<int>(op.coll), op.coll == Coll::alltoallv ? 0 : op.count, op.dtype, op.op, op.root};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    if (plans_.size() >= kMaxPlans) {
      auto oldest = std::min_element(plans_.begin(), plans_.end(),
                                     [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
      mem_->synchronize(nullptr);  // device scratch may still be read by queued transfers
      plans_.erase(oldest);
    }
    it = plans_.emplace(key, std::make_pair(std::make_unique<Plan>(), 0)).first;
    it->second.first->mem = mem_.get();
  }
  it->second.second = ++uses_;
  Plan& pl = *it->second.first;
  const size_t es = dtype_size(op.dtype);
  size_t chunk = unit;
  if (settings_.pipelined) chunk = std::max<size_t>(1, settings_.chunk_bytes / (es * std::max<size_t>(factor, 1)));
  chunk = std::max<size_t>(1, std::min(chunk, unit));
  size_t chunks = unit ? (unit + chunk - 1) / chunk : 0;
  if (chunks_given) unit = chunks = chunks_given, chunk = 1;
  const int slots = settings_.pipelined ? static_cast<int>(std::min<size_t>(settings_.depth, std::max<size_t>(chunks, 1))) : 1;
  if (slots != pl.slots) pl.reset(slots);  // alltoallv plans see varying chunk counts
  pl.unit = unit;
  pl.chunk = chunk;
  pl.chunks = chunks;
  return pl;
}

int HeteroAdaptor::intra(Pipeline& p, std::vector<Op> ops, std::vector<int> deps) {
  return p.add(Channel::intra, true, std::move(deps), [this, ops = std::move(ops)](std::span<Work* const> after) {
    return intra_->start(ops, after);
  });
}

int HeteroAdaptor::inter(Pipeline& p, std::vector<Op> ops, std::vector<int> deps) {
  return p.add(Channel::inter, false, std::move(deps), [this, ops = std::move(ops)](std::span<Work* const> after) {
    return leaders_->start(ops, after);
  });
}

int HeteroAdaptor::world(Pipeline& p, std::vector<Op> ops, std::vector<int> deps) {
  return p.add(Channel::world, false, std::move(deps), [this, ops = std::move(ops)](std::span<Work* const> after) {
    return world_->start(ops, after);
  });
}

int HeteroAdaptor::copy(Pipeline& p, bool to_host, void* dst, const void* src, std::vector<Segment> segs,
                        std::vector<int> deps, std::function<void()> before) {
  return p.add(to_host ? Channel::to_host : Channel::to_device, true, std::move(deps),
               [this, to_host, dst, src, segs = std::move(segs), before = std::move(before)](std::span<Work* const> after) {
                 if (before) before();
                 return mem_->copy(dst, src, segs, to_host, after);
               });
}

void HeteroAdaptor::run(std::span<const Op> ops) {
  std::vector<Op> p2p;
  for (const Op& op : ops)
    if (op.coll == Coll::send || op.coll == Coll::recv) p2p.push_back(op);
  if (!p2p.empty()) point_to_point(p2p);
  for (const Op& op : ops)
    if (op.coll != Coll::send && op.coll != Coll::recv) collective(op);
}

std::unique_ptr<Work> HeteroAdaptor::start(std::span<const Op> ops, std::span<Work* const>) {
  run(ops);  // the hierarchical mode is not nested inside another pipeline: complete now
  return std::make_unique<DoneWork>();
}

void HeteroAdaptor::collective(const Op& op) {
  Pipeline p;
  switch (op.coll) {
    case Coll::all_reduce: all_reduce(p, op); break;
    case Coll::broadcast: broadcast(p, op); break;
    case Coll::reduce: reduce(p, op); break;
    case Coll::all_gather: all_gather(p, op); break;
    case Coll::reduce_scatter: reduce_scatter(p, op); break;
    case Coll::alltoall:
    case Coll::alltoallv: alltoallv(p, op); break;
    case Coll::gather: gather(p, op); break;
    case Coll::scatter: scatter(p, op); break;
    case Coll::barrier: barrier(p, op); break;
    default: comm_fail(flagosInternalError, where(coll_call_name(op.coll)), ": not a collective");
  }
  if (p.empty()) return;
  if (!stage_times_enabled()) return execute(p, op.stream, where(coll_call_name(op.coll)));
  StageTimes t;
  execute(p, op.stream, where(coll_call_name(op.coll)), &t);
  stage_times_[{coll_call_name(op.coll), op.count * dtype_size(op.dtype)}].add(t);
}

void HeteroAdaptor::print_stage_times() const {
  for (const auto& [key, t] : stage_times_) {
    if (!t.calls) continue;
    const double k = 1e3 / static_cast<double>(t.calls);
    std::string line = detail::concat("flagos comm stage times (rank ", me(), ", cluster ", topo_.cluster(),
                                      topo_.leader() ? ", leader" : "", "): ", key.first, " ", key.second,
                                      " B/rank x ", t.calls, " calls: wall ", t.wall * k, " ms/call; busy ms/call");
    for (int c = 0; c < StageTimes::kChannels; ++c)
      if (t.steps[c])
        line += detail::concat(" ", channel_name(static_cast<Channel>(c)), "=", t.busy[c] * k, " (",
                               t.steps[c] / t.calls, " steps, sum ", t.sum[c] * k, ")");
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void HeteroAdaptor::execute(Pipeline& p, void* stream, const std::string& what, StageTimes* times) {
  try {
    mem_->begin(stream);
    p.run(std::chrono::steady_clock::now() + timeout_, timeout_, what, times);
    mem_->end(stream);
  } catch (...) {
    broken_ = true;
    throw;
  }
}

// Intra barrier (everyone in the cluster arrived), barrier between leaders, intra barrier again
// (released only after every cluster arrived).
void HeteroAdaptor::barrier(Pipeline& p, const Op& op) {
  const Op b = make_op(Coll::barrier, nullptr, nullptr, 0, flagosUint8, flagosSum, 0, op.stream);
  const int first = intra(p, {b}, {});
  const int x = topo_.leader() ? inter(p, {make_op(Coll::barrier, nullptr, nullptr, 0, flagosUint8, flagosSum, 0, nullptr)},
                                       {first})
                               : -1;
  intra(p, {b}, {x});
}

// Send/recv inside the cluster go through the cluster's adaptor; across clusters through the world
// host adaptor, staged through host memory when the buffers are not host memory.
void HeteroAdaptor::point_to_point(std::span<const Op> ops) {
  Pipeline p;
  std::vector<Op> local;
  size_t staged = 0;
  void* stream = ops.front().stream;
  auto staging = [&](size_t bytes) {
    if (staged == p2p_staging_.size()) p2p_staging_.emplace_back(nullptr, 0);
    auto& [ptr, size] = p2p_staging_[staged++];
    if (size < bytes) {
      if (ptr) mem_->release_host(ptr);
      ptr = mem_->alloc_host(std::max<size_t>(bytes, 1));
      size = bytes;
    }
    return ptr;
  };
  for (const Op& op : ops) {
    const int peer = op.root;
    if (topo_.cluster_of[static_cast<size_t>(peer)] == topo_.cluster()) {
      Op o = op;
      o.root = topo_.local_of[static_cast<size_t>(peer)];
      local.push_back(o);
      continue;
    }
    const size_t bytes = op.count * dtype_size(op.dtype);
    if (mem_->is_host()) {
      world(p, {op}, {});
    } else if (op.coll == Coll::send) {
      void* h = staging(bytes);
      const int d = copy(p, true, h, op.send, {{0, 0, bytes}}, {});
      world(p, {make_op(Coll::send, h, nullptr, op.count, op.dtype, flagosSum, peer, nullptr)}, {d});
    } else {
      void* h = staging(bytes);
      const int w = world(p, {make_op(Coll::recv, nullptr, h, op.count, op.dtype, flagosSum, peer, nullptr)}, {});
      copy(p, false, op.recv, h, {{0, 0, bytes}}, {w});
    }
  }
  if (!local.empty()) intra(p, std::move(local), {});
  execute(p, stream, where(ops.size() == 1 ? coll_call_name(ops[0].coll) : "group of flagosSend/flagosRecv"));
}

std::unique_ptr<Adaptor> create(Topology topo, Parts parts, PipelineSettings settings,
                                std::chrono::milliseconds timeout) {
  return std::make_unique<HeteroAdaptor>(std::move(topo), std::move(parts), settings, timeout);
}

}  // namespace flagos::comm::hetero
