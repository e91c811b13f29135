// Graphs: work captured from a device stream and replayed as one launch (CUDA graphs).
#pragma once
#include <functional>

#include "flagos/device.h"

namespace flagos {

// Work captured from a stream (a CUDA graph) and replayed as one launch. Memory allocated while
// capturing belongs to the graph (tensors freed during the capture included) until it is
// destroyed, so a replay never writes memory handed to someone else. The captured work must not
// synchronize with or read device data on the host.
class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(Graph&& o) noexcept;
  Graph& operator=(Graph&& o) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Whether the device's backend captures graphs (DeviceProps::graphs).
  static bool supported(Device dev);
  // Runs `work`, capturing (not executing) what it queues on current_stream(dev). On an
  // exception the capture is abandoned and the exception passed on.
  static Graph capture(Device dev, const std::function<void()>& work);
  // Queues the captured work on current_stream(device()).
  void replay() const;
  bool valid() const { return handle_ != nullptr; }
  Device device() const { return device_; }

 private:
  void reset() noexcept;
  Device device_{};
  void* handle_ = nullptr;
};

}  // namespace flagos
