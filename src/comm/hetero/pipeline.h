// The pipeline engine of the heterogeneous mode: a fixed program of asynchronous steps (intra-cluster
// transfers, copies to and from host staging, transfers between cluster leaders), issued as soon as
// their dependencies allow and polled together, so several chunks are in flight at once.
//
// Every rank builds the same program for a call, so the order of steps on each channel is fixed and
// identical on the ranks sharing it (MPI and NCCL need collectives issued in the same order); only
// when a step is issued depends on timing. A step is issued once the earlier steps of its channel
// are issued and its dependencies are issued; a host-side step also needs them complete, a
// device-side step only needs its host-work dependencies complete (device work is ordered by events).
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm_internal.h"

namespace flagos::comm::hetero {

enum class Channel : int { intra, inter, to_host, to_device, world, count };
const char* channel_name(Channel c);

// Where the time of a call went, per channel (FLAGOS_COMM_STAGE_TIMES=1): the wall time of run(),
// the time during which the channel had a step running (union of [start, done] over its steps,
// start = issued and every dependency observed complete; done = observed complete by the poll
// loop) and the sum of its steps' durations. Device steps still queued when run() returns count up
// to that moment.
struct StageTimes {
  static constexpr int kChannels = static_cast<int>(Channel::count);
  uint64_t calls = 0;
  double wall = 0;                 // seconds
  double busy[kChannels] = {};     // seconds
  double sum[kChannels] = {};      // seconds
  uint64_t steps[kChannels] = {};
  void add(const StageTimes& o);
};
// True when FLAGOS_COMM_STAGE_TIMES is set (and not 0).
bool stage_times_enabled();

class Pipeline {
 public:
  using Issue = std::function<std::unique_ptr<Work>(std::span<Work* const> after)>;
  // Adds a step after the earlier steps of `ch`; returns its id. Ids < 0 in `deps` are ignored.
  int add(Channel ch, bool device_side, std::vector<int> deps, Issue issue);
  // Runs the program. Returns when every step is issued and all host work and copies are complete
  // (device transfers inside a cluster may still run, ordered on the caller's stream). Throws
  // CommError; flagosTimeout past the deadline.
  // With `times`, records where the time went (see StageTimes).
  void run(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout, const std::string& what,
           StageTimes* times = nullptr);
  bool empty() const { return steps_.empty(); }

 private:
  struct Step {
    Channel ch;
    bool device_side;
    std::vector<int> deps;
    Issue issue;
    std::unique_ptr<Work> work;
    bool done = false;
    std::chrono::steady_clock::time_point issued{}, finished{};
  };
  void record(StageTimes& t, std::chrono::steady_clock::time_point begin, std::chrono::steady_clock::time_point end) const;
  bool ready(const Step& s) const;
  bool must_finish(const Step& s) const;
  std::vector<Step> steps_;
  std::vector<int> order_[static_cast<int>(Channel::count)];
};

}  // namespace flagos::comm::hetero
