// Graph capture and replay over the backend interface: see flagos/graph.h.
#include "flagos/graph.h"

#include "flagos/backend.h"
#include "flagos/error.h"

namespace flagos {

Graph::~Graph() { reset(); }

Graph::Graph(Graph&& o) noexcept : device_(o.device_), handle_(o.handle_) { o.handle_ = nullptr; }

Graph& Graph::operator=(Graph&& o) noexcept {
  if (this != &o) {
    reset();
    device_ = o.device_;
    handle_ = o.handle_;
    o.handle_ = nullptr;
  }
  return *this;
}

void Graph::reset() noexcept {
  if (!handle_) return;
  try {
    backend_of(device_).destroy_graph(device_.index, handle_);
  } catch (...) {  // a destructor never throws; the graph's memory is lost at worst
  }
  handle_ = nullptr;
}

bool Graph::supported(Device dev) { return backend_of(dev).device_props(dev.index).graphs; }

Graph Graph::capture(Device dev, const std::function<void()>& work) {
  Backend& be = backend_of(dev);
  const Stream s = current_stream(dev);
  be.begin_capture(dev.index, s.handle());
  Graph g;
  g.device_ = dev;
  try {
    work();
  } catch (...) {
    try {
      g.handle_ = be.end_capture(dev.index, s.handle());
    } catch (...) {  // the capture was invalidated: nothing to keep
    }
    throw;
  }
  g.handle_ = be.end_capture(dev.index, s.handle());
  return g;
}

void Graph::replay() const {
  FLAGOS_CHECK(handle_ != nullptr, "graph replay: the graph is empty (never captured or moved from)");
  backend_of(device_).replay(device_.index, handle_, current_stream(device_).handle());
}

}  // namespace flagos
