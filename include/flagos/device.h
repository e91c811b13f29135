// Devices and streams. A Device names a backend (by its registry id) and a device index.
#pragma once
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace flagos {

class Backend;

struct Device {
  uint16_t backend = 0;  // registry id; 0 is always the CPU backend
  int16_t index = 0;
  static Device cpu() { return Device{}; }
  bool is_cpu() const { return backend == 0; }
  friend bool operator==(Device a, Device b) { return a.backend == b.backend && a.index == b.index; }
};

// "cpu", "cuda", "cuda:1" -> Device; throws InvalidArgument naming the registered backends.
Device parse_device(std::string_view s);
std::string to_string(Device d);
std::ostream& operator<<(std::ostream& os, Device d);
Backend& backend_of(Device d);

// An asynchronous queue of work on one device. The CPU backend's streams run work
// synchronously on the calling thread (and its pool), so a null handle is valid there.
class Stream {
 public:
  Stream() = default;
  Stream(Device dev, void* handle) : device_(dev), handle_(handle) {}
  Device device() const { return device_; }
  void* handle() const { return handle_; }
  void synchronize() const;

 private:
  Device device_{};
  void* handle_ = nullptr;
};

// Owns a stream created on a backend; destroys it on scope exit.
class OwnedStream {
 public:
  explicit OwnedStream(Device dev);
  ~OwnedStream();
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
  const Stream& get() const { return stream_; }
  operator const Stream&() const { return stream_; }

 private:
  Stream stream_;
};

// The stream ops on `dev` are enqueued on by this thread (the backend's default unless set).
Stream current_stream(Device dev);
// Sets this thread's current stream for the stream's device; returns the previous one.
Stream set_current_stream(const Stream& s);

// RAII: makes `s` current for its device for the scope.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s) : prev_(set_current_stream(s)) {}
  ~StreamGuard() { set_current_stream(prev_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_;
};

// Marks a point in a stream; used for ordering between streams and for timing.
class Event {
 public:
  explicit Event(Device dev, bool timing = true);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(const Stream& s);
  void wait(const Stream& s) const;  // make `s` wait until this event completes
  void synchronize() const;          // block the host until this event completes
  // Milliseconds between `start` and this event (both recorded and completed).
  float elapsed_ms_since(const Event& start) const;

 private:
  Device device_;
  void* handle_ = nullptr;
};

}  // namespace flagos
