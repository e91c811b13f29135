// Issues a Pipeline's steps in channel order as dependencies complete, polling the work in flight.
#include "hetero/pipeline.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace flagos::comm::hetero {

const char* channel_name(Channel c) {
  switch (c) {
    case Channel::intra: return "intra";
    case Channel::inter: return "inter";
    case Channel::to_host: return "to_host";
    case Channel::to_device: return "to_device";
    case Channel::world: return "world";
    default: return "?";
  }
}

bool stage_times_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("FLAGOS_COMM_STAGE_TIMES");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  return on;
}

void StageTimes::add(const StageTimes& o) {
  calls += o.calls;
  wall += o.wall;
  for (int c = 0; c < kChannels; ++c) {
    busy[c] += o.busy[c];
    sum[c] += o.sum[c];
    steps[c] += o.steps[c];
  }
}

void Pipeline::record(StageTimes& t, std::chrono::steady_clock::time_point begin,
                      std::chrono::steady_clock::time_point end) const {
  using TP = std::chrono::steady_clock::time_point;
  std::vector<std::pair<TP, TP>> spans[StageTimes::kChannels];
  for (const Step& s : steps_) {
    if (!s.work) continue;
    TP start = s.issued;
    for (int d : s.deps) {
      const Step& dep = steps_[static_cast<size_t>(d)];
      start = std::max(start, dep.done ? dep.finished : end);
    }
    const TP stop = s.done ? s.finished : end;
    spans[static_cast<int>(s.ch)].emplace_back(std::min(start, stop), stop);
  }
  t.calls += 1;
  t.wall += std::chrono::duration<double>(end - begin).count();
  for (int c = 0; c < StageTimes::kChannels; ++c) {
    auto& v = spans[c];
    std::sort(v.begin(), v.end());
    TP cur_a{}, cur_b{};
    bool open = false;
    for (const auto& [a, b] : v) {
      t.sum[c] += std::chrono::duration<double>(b - a).count();
      t.steps[c] += 1;
      if (open && a <= cur_b) {
        cur_b = std::max(cur_b, b);
        continue;
      }
      if (open) t.busy[c] += std::chrono::duration<double>(cur_b - cur_a).count();
      cur_a = a, cur_b = b, open = true;
    }
    if (open) t.busy[c] += std::chrono::duration<double>(cur_b - cur_a).count();
  }
}

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
                   const std::string& what, StageTimes* times) {
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
        if (times) s.issued = std::chrono::steady_clock::now();
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
        if (times) s.finished = std::chrono::steady_clock::now();
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
      if (finished) {
        if (times) record(*times, started, std::chrono::steady_clock::now());
        return;
      }
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
