//===- Progress.cpp - One stderr line with progress and an ETA ------------===//

#include "runtime/support/Progress.h"

#include <chrono>
#include <cstdio>

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
  // Quiet for quick work; a line every call once it has taken a second.
  if (elapsed < 1.0 && !printed_)
    return;
  double eta = done ? elapsed * (static_cast<double>(total) - done) / done : 0;
  std::fprintf(stderr, "\r%s: %zu/%zu, %.1f MB, %.0f s elapsed, ETA %.0f s   ", what_.c_str(),
               done, total, bytes / 1e6, elapsed, eta);
  std::fflush(stderr);
  printed_ = true;
}

ProgressLine::~ProgressLine() {
  if (printed_)
    std::fputs("\n", stderr);
}

} // namespace m2c
