//===- Progress.cpp - One stderr line with progress and an ETA ------------===//

#include "runtime/support/Progress.h"

#include <chrono>
#include <cstdio>
#include <unistd.h>

namespace m2c {

namespace {
double nowSeconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
} // namespace

void ProgressLine::update(size_t done, size_t total, uint64_t bytes) {
  double now = nowSeconds();
  if (start_ < 0)
    start_ = now;
  double elapsed = now - start_;
  // Quiet for quick work. Then a terminal line is rewritten a few times a
  // second; a log file (not a terminal) gets a line every 5 s, and the last.
  if (elapsed < 1.0 && !printed_)
    return;
  static const bool terminal = isatty(fileno(stderr));
  const double interval = terminal ? 0.2 : 5.0;
  if (printed_ && done < total && now - lastPrint_ < interval)
    return;
  lastPrint_ = now;
  double eta = done ? elapsed * (static_cast<double>(total) - done) / done : 0;
  // Work that is not counted in bytes (calibration prompts) passes 0.
  char size[32] = "";
  if (bytes)
    std::snprintf(size, sizeof size, ", %.1f MB", bytes / 1e6);
  std::fprintf(stderr, "%s%s: %zu/%zu%s, %.0f s elapsed, ETA %.0f s%s", terminal ? "\r" : "",
               what_.c_str(), done, total, size, elapsed, eta, terminal ? "   " : "\n");
  std::fflush(stderr);
  printed_ = true;
}

ProgressLine::~ProgressLine() {
  if (printed_ && isatty(fileno(stderr)))
    std::fputs("\n", stderr);
}

} // namespace m2c
