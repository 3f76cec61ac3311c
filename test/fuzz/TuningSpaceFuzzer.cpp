//===- TuningSpaceFuzzer.cpp - libFuzzer target for m2c-tune's space.json -===//
//
// Feeds arbitrary text to parseTuningSpace; every accepted space goes
// through chooseTuning with made-up timings and tuningFileJson, as m2c-tune
// does. Built with -fno-exceptions: a nlohmann exception is a crash.
//
//===----------------------------------------------------------------------===//

#include "runtime/tuning/TuningSearch.h"

#include <cstdlib>
#include <string>

using namespace m2c;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  StatusOr<TuningSpace> space = parseTuningSpace(text);
  if (!space) {
    if (space.status().message().rfind("space.json", 0) != 0)
      std::abort(); // every error names the file
    return 0;
  }
  if (space->candidates.empty())
    std::abort(); // an accepted space has candidate 0
  // Two steps; each candidate's keys take times from its index, so every
  // branch of the choice (faster, slower, within noise) is reachable.
  std::vector<CandidateResult> results(space->candidates.size());
  for (size_t c = 0; c < results.size(); ++c) {
    results[c].steps.resize(2);
    for (const auto &[key, setting] : space->candidates[c].kernels)
      for (size_t s = 0; s < 2; ++s)
        results[c].steps[s][key] = 1.0 + double((c * 7 + s * 3 + key.size()) % 5);
    results[c].logitsError = c % 3 == 2 ? 1.0 : 0.0;
  }
  StatusOr<std::vector<TuningChoice>> choices = chooseTuning(*space, results, 1e-2, 0.02);
  if (!choices)
    return 0;
  std::string file = tuningFileJson(*space, *choices);
  if (file.empty())
    std::abort();
  return 0;
}
