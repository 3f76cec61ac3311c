//===- InputObserver.h - What the CPU kernels multiply weights by -*- C++ -*-===//
//
// Calibration (GPTQ's X^T X per weight matrix) needs the rows each weight
// matrix is multiplied by. The kernels are free functions with no context
// argument, so the observer is process-wide and installed for the span of a
// calibration run; with none installed the kernels pay one load and branch.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CPU_INPUTOBSERVER_H
#define M2C_RUNTIME_CPU_INPUTOBSERVER_H

#include <cstdint>

namespace m2c::cpu {

class InputObserver {
public:
  virtual ~InputObserver();
  /// `matrix` (row-major [n, k], the address the kernel reads) is about to
  /// be multiplied by rows[0..numRows) of k floats each. Called from the
  /// thread that launched the kernel, before its parallel section.
  virtual void observe(const float *matrix, const float *const *rows, int64_t numRows,
                       int64_t k) = 0;
};

/// The installed observer, or null.
InputObserver *inputObserver();

/// Installs `observer` while alive. Not reentrant: one calibration at a time,
/// and no other CPU backend may run meanwhile.
class ScopedInputObserver {
public:
  explicit ScopedInputObserver(InputObserver &observer);
  ~ScopedInputObserver();
  ScopedInputObserver(const ScopedInputObserver &) = delete;
  ScopedInputObserver &operator=(const ScopedInputObserver &) = delete;
};

} // namespace m2c::cpu

#endif // M2C_RUNTIME_CPU_INPUTOBSERVER_H
