// The size sweep that `flagos bench comm` and its references (bench/cpu/mpi_direct.cpp: Open MPI
// called directly; bench/gpu/nccl_direct.cpp: NCCL called directly) share: nccl-tests' options
// -o -b -e -f -d --iters -w and sizes written 8, 4K, 64M, 1G (powers of 1024, optional trailing B).
// Header-only: the references link no flagos library.
#pragma once
#include <cstdlib>
#include <string>
#include <type_traits>

namespace flagos::comm::bench {

// Parses a size; false when `s` is not one.
inline bool parse_size(const std::string& s, size_t* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  double mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1024.0, ++end;
  else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, ++end;
  else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, ++end;
  if (*end == 'B' || *end == 'b') ++end;
  if (*end || !(v >= 0) || end == s.c_str()) return false;
  *out = static_cast<size_t>(v * mul);
  return true;
}

struct Sweep {
  std::string op = "allreduce";
  size_t min_bytes = 8, max_bytes = 64u << 20;
  double factor = 2;
  std::string dtype = "f32";
  int iters = 20, warmup = 5;
};

enum class SweepArg { used, not_sweep, bad_value };

// Applies option `k` with value `v` to the sweep: `used`, `not_sweep` (another option), or
// `bad_value` (a malformed size or number).
inline SweepArg sweep_option(Sweep& s, const std::string& k, const std::string& v) {
  auto number = [&](auto* out, auto parse) {
    char* end = nullptr;
    const auto x = parse(v.c_str(), &end);
    if (v.empty() || *end) return SweepArg::bad_value;
    *out = static_cast<std::remove_reference_t<decltype(*out)>>(x);
    return SweepArg::used;
  };
  if (k == "-o") return s.op = v, SweepArg::used;
  if (k == "-d") return s.dtype = v, SweepArg::used;
  if (k == "-b") return parse_size(v, &s.min_bytes) ? SweepArg::used : SweepArg::bad_value;
  if (k == "-e") return parse_size(v, &s.max_bytes) ? SweepArg::used : SweepArg::bad_value;
  if (k == "-f") return number(&s.factor, [](const char* p, char** e) { return std::strtod(p, e); });
  if (k == "--iters") return number(&s.iters, [](const char* p, char** e) { return std::strtol(p, e, 10); });
  if (k == "-w") return number(&s.warmup, [](const char* p, char** e) { return std::strtol(p, e, 10); });
  return SweepArg::not_sweep;
}

}  // namespace flagos::comm::bench
