//===- Progress.h - One stderr line with progress and an ETA --------------===//
//
// Long work (loading or uploading weights, benchmarks) reports
// "<what>: i/n, X MB, T s elapsed, ETA E s" on one rewritten stderr line
// (without the size when the work is not counted in bytes),
// and only once it has taken a second, so quick runs stay quiet. Written to
// a file instead, it is one line every 5 s.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SUPPORT_PROGRESS_H
#define M2C_RUNTIME_SUPPORT_PROGRESS_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace m2c {

class ProgressLine {
public:
  explicit ProgressLine(std::string what) : what_(std::move(what)) {}
  ~ProgressLine();
  ProgressLine(const ProgressLine &) = delete;
  ProgressLine &operator=(const ProgressLine &) = delete;
  void update(size_t done, size_t total, uint64_t bytes);

private:
  std::string what_;
  double start_ = -1, lastPrint_ = 0;
  bool printed_ = false;
};

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_PROGRESS_H
