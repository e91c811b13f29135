// A one-line progress bar on stderr for long operations (model loading, downloads). Redraws at
// most ~10 times a second; on a non-terminal it prints a line every 10% instead.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace flagos::cli {

class ProgressBar {
 public:
  // bytes: show done/total as sizes (else as plain counts).
  explicit ProgressBar(std::string label, bool bytes = true)
      : label_(std::move(label)), tty_(isatty(STDERR_FILENO) != 0), bytes_(bytes) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done, int64_t total) {
    if (finished_ || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    const int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
    if (tty_) {
      if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      constexpr int kWidth = 30;
      const int fill = pct * kWidth / 100;
      std::fprintf(stderr, "\r%s [%s%s] %3d%% %s / %s", label_.c_str(), std::string(fill, '#').c_str(),
                   std::string(kWidth - fill, '.').c_str(), pct, amount(done).c_str(), amount(total).c_str());
      drawn_ = true;
    } else if (pct >= next_pct_) {
      std::fprintf(stderr, "%s %d%% (%s / %s)\n", label_.c_str(), pct, amount(done).c_str(), amount(total).c_str());
      next_pct_ = (pct / 10 + 1) * 10;
    }
    if (done >= total) finish();
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (drawn_) std::fprintf(stderr, " (%.1f s)\n", s);
  }

  std::string amount(int64_t v) const { return bytes_ ? human(v) : std::to_string(v); }
  static std::string human(int64_t bytes) {
    char buf[32];
    const double b = static_cast<double>(bytes);
    if (b >= 1e9)
      std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    else if (b >= 1e6)
      std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    else
      std::snprintf(buf, sizeof buf, "%.0f kB", b / 1e3);
    return buf;
  }

 private:
  std::string label_;
  bool tty_;
  bool bytes_;
  bool drawn_ = false;
  bool finished_ = false;
  int next_pct_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace flagos::cli
