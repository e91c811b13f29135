// Errors: every failure is an exception derived from flagos::Error whose message names
// the op / file / field and the offending values.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace flagos {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Wrong shapes, dtypes, devices, indices or values passed by the caller.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};
// The backend has no kernel for the requested (op, dtypes), or lacks a feature.
class NotSupported : public Error {
 public:
  using Error::Error;
};
class OutOfMemory : public Error {
 public:
  using Error::Error;
};
// A failure inside a backend or the system (driver error, I/O).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

template <typename E = InvalidArgument, typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw E(detail::concat(std::forward<Args>(args)...));
}

}  // namespace flagos

// FLAGOS_CHECK(cond, parts...): throws InvalidArgument built from the parts when cond is false.
#define FLAGOS_CHECK(cond, ...)                                   \
  do {                                                            \
    if (!(cond)) [[unlikely]]                                     \
      ::flagos::fail<::flagos::InvalidArgument>(__VA_ARGS__);     \
  } while (0)
