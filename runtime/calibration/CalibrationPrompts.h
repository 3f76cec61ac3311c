//===- CalibrationPrompts.h - Calibration prompt files ---------*- C++ -*-===//
//
// One prompt per line, token ids separated by commas or whitespace (what
// `m2c tokenize` prints). Blank lines and lines starting with '#' are
// skipped. Apart from the engine so that the fuzzer can take it alone.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CALIBRATION_CALIBRATIONPROMPTS_H
#define M2C_RUNTIME_CALIBRATION_CALIBRATIONPROMPTS_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace m2c {

/// Parses the text of a calibration file named `name`. Errors name it and
/// the line: a malformed id, an id outside [0, vocabSize), or no prompt.
StatusOr<std::vector<std::vector<int32_t>>> parseCalibrationPrompts(const std::string &text,
                                                                    const std::string &name,
                                                                    int64_t vocabSize);

/// Reads and parses the calibration file at `path`.
StatusOr<std::vector<std::vector<int32_t>>> readCalibrationPrompts(const std::string &path,
                                                                   int64_t vocabSize);

} // namespace m2c

#endif // M2C_RUNTIME_CALIBRATION_CALIBRATIONPROMPTS_H
