//===- CalibrationPromptsFuzzer.cpp - libFuzzer target for calibration files ===//
//
// Feeds arbitrary text to parseCalibrationPrompts (m2c compile
// --quant-calibration). Every error must name the file; every accepted
// prompt list must hold prompts of at least one id, all inside the
// vocabulary.
//
//===----------------------------------------------------------------------===//

#include "runtime/calibration/CalibrationPrompts.h"

#include <cstdlib>
#include <string>

using namespace m2c;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  const int64_t vocab = 512;
  StatusOr<std::vector<std::vector<int32_t>>> prompts = parseCalibrationPrompts(text, "fuzz", vocab);
  if (!prompts) {
    if (prompts.status().message().rfind("fuzz", 0) != 0)
      std::abort();
    return 0;
  }
  if (prompts->empty())
    std::abort();
  for (const std::vector<int32_t> &prompt : *prompts) {
    if (prompt.empty())
      std::abort(); // calibration runs each prompt as a prefill
    for (int32_t id : prompt)
      if (id < 0 || id >= vocab)
        std::abort();
  }
  return 0;
}
