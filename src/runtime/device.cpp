#include "flagos/device.h"

#include <charconv>
#include <sstream>

#include "flagos/backend.h"
#include "flagos/error.h"

namespace flagos {

Device parse_device(std::string_view s) {
  std::string_view name = s;
  int index = 0;
  if (auto colon = s.find(':'); colon != std::string_view::npos) {
    name = s.substr(0, colon);
    auto num = s.substr(colon + 1);
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
    FLAGOS_CHECK(ec == std::errc() && p == num.data() + num.size() && index >= 0, "device '", s,
                 "': bad index after ':'");
  }
  const int id = find_backend(name);
  if (id < 0) {
    std::string known;
    for (int i = 0; i < backend_count(); ++i) known += (i ? ", " : "") + std::string(backend(static_cast<uint16_t>(i)).name());
    fail("unknown device '", s, "' (registered backends: ", known, ")");
  }
  Backend& b = backend(static_cast<uint16_t>(id));
  const int n = b.device_count();
  FLAGOS_CHECK(index < n, "device '", s, "': backend '", name, "' has ", n, " device(s)");
  return Device{static_cast<uint16_t>(id), static_cast<int16_t>(index)};
}

std::string to_string(Device d) {
  std::ostringstream os;
  os << backend(d.backend).name() << ':' << d.index;
  return os.str();
}

std::ostream& operator<<(std::ostream& os, Device d) { return os << to_string(d); }

void Stream::synchronize() const { backend_of(device_).synchronize_stream(device_.index, handle_); }

OwnedStream::OwnedStream(Device dev) : stream_(dev, backend_of(dev).create_stream(dev.index)) {}
OwnedStream::~OwnedStream() { backend_of(stream_.device()).destroy_stream(stream_.device().index, stream_.handle()); }

namespace {
// Per-thread current streams for (backend, index) pairs that changed from the default.
struct CurrentStreams {
  struct Entry {
    Device dev;
    Stream s;
  };
  std::vector<Entry> entries;
};
thread_local CurrentStreams tl_streams;
}  // namespace

Stream current_stream(Device dev) {
  if (dev.is_cpu()) return Stream(dev, nullptr);  // CPU work is synchronous
  for (const auto& e : tl_streams.entries)
    if (e.dev == dev) return e.s;
  return Stream(dev, backend_of(dev).default_stream(dev.index));
}

Stream set_current_stream(const Stream& s) {
  const Stream prev = current_stream(s.device());
  for (auto& e : tl_streams.entries)
    if (e.dev == s.device()) {
      e.s = s;
      return prev;
    }
  tl_streams.entries.push_back({s.device(), s});
  return prev;
}

Event::Event(Device dev, bool timing) : device_(dev), handle_(backend_of(dev).create_event(dev.index, timing)) {}
Event::~Event() { backend_of(device_).destroy_event(device_.index, handle_); }
void Event::record(const Stream& s) { backend_of(device_).record_event(device_.index, handle_, s.handle()); }
void Event::wait(const Stream& s) const { backend_of(device_).stream_wait_event(device_.index, s.handle(), handle_); }
void Event::synchronize() const { backend_of(device_).synchronize_event(device_.index, handle_); }
float Event::elapsed_ms_since(const Event& start) const {
  return backend_of(device_).elapsed_ms(device_.index, start.handle_, handle_);
}

}  // namespace flagos
