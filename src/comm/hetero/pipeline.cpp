// Issues a Pipeline's steps in channel order as dependencies complete, polling the work in flight.
#include "hetero/pipeline.h"

#include <sched.h>

#include <thread>

namespace flagos::comm::hetero {

int Pipeline::add(Channel ch, bool device_side, std::vector<int> deps, Issue issue) {
  const int id = static_cast<int>(steps_.size());
  std::erase_if(deps, [](int d) { return d < 0; });
  steps_.push_back(Step{ch, device_side, std::move(deps), std::move(issue), nullptr, false});
  order_[static_cast<int>(ch)].push_back(id);
  return id;
}

bool Pipeline::ready(const Step& s) const {
  for (int d : s.deps) {
    const Step& dep = steps_[static_cast<size_t>(d)];
    if (!dep.work) return false;
    if (dep.done) continue;
    if (!s.device_side || !dep.work->device_event()) return false;
  }
  return true;
}

// Host work and copies must be complete before the call returns (staging is reused by the next
// call); transfers queued on a device stream inside a cluster need not be.
bool Pipeline::must_finish(const Step& s) const {
  return !s.work->device_event() || s.ch == Channel::to_host || s.ch == Channel::to_device;
}

void Pipeline::run(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout,
                   const std::string& what) {
  constexpr int kChannels = static_cast<int>(Channel::count);
  size_t next[kChannels] = {};
  std::vector<int> in_flight;
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t spin = 0;; ++spin) {
    bool progress = false;
    for (int c = 0; c < kChannels; ++c) {
      const auto& order = order_[c];
      while (next[c] < order.size()) {
        Step& s = steps_[static_cast<size_t>(order[next[c]])];
        if (!ready(s)) break;
        std::vector<Work*> after;
        for (int d : s.deps) after.push_back(steps_[static_cast<size_t>(d)].work.get());
        s.work = s.issue(after);
        s.issue = nullptr;  // releases what the closure captured
        in_flight.push_back(order[next[c]]);
        ++next[c];
        progress = true;
      }
    }
    for (size_t i = 0; i < in_flight.size();) {
      Step& s = steps_[static_cast<size_t>(in_flight[i])];
      if (s.work->done()) {
        s.done = true;
        in_flight[i] = in_flight.back();
        in_flight.pop_back();
        progress = true;
      } else {
        ++i;
      }
    }
    bool all_issued = true;
    for (int c = 0; c < kChannels; ++c) all_issued = all_issued && next[c] == order_[c].size();
    if (all_issued) {
      bool finished = true;
      for (int id : in_flight) finished = finished && !must_finish(steps_[static_cast<size_t>(id)]);
      if (finished) return;
    }
    if (progress || (spin & 63) != 63) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline)
      comm_fail(flagosTimeout, what, ": not complete after ", timeout.count(),
                " ms (a rank is missing, stuck or called something else; FLAGOS_COMM_TIMEOUT_MS sets the limit)");
    if (now - started > std::chrono::seconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(100));
    else sched_yield();
  }
}

}  // namespace flagos::comm::hetero
