//===- TuningSearch.h - Reading a tuning space, choosing per kernel -*- C++ -*-===//
//
// The GPU half of the tiling search without the GPU: `m2c tune` writes a
// space (space.json: candidate artifacts, each with its tile parameters
// per tiling key); m2c-tune times every candidate's kernels and this code
// picks, per key, the fastest candidate that computed the same logits as
// the cost model's choice, then writes the --tuning file `m2c compile`
// reads (docs/m2c-tune.md).
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TUNING_TUNINGSEARCH_H
#define M2C_RUNTIME_TUNING_TUNINGSEARCH_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace m2c {

using TileSetting = std::map<std::string, int64_t>;

struct TuningSpace {
  std::string model, target;
  struct Candidate {
    std::string artifact; ///< relative to the space's directory
    /// Tiling key -> the tunable parameters this candidate compiled with.
    std::map<std::string, TileSetting> kernels;
  };
  /// Candidate 0 is the cost model's choice.
  std::vector<Candidate> candidates;
};

/// Parses space.json; errors name the offending field.
StatusOr<TuningSpace> parseTuningSpace(const std::string &text);

/// What m2c-tune measured for one candidate.
struct CandidateResult {
  /// Per measured step (the same steps, in the same order, for every
  /// candidate): tiling key -> microseconds its kernels took.
  std::vector<std::map<std::string, double>> steps;
  /// Relative logits error against candidate 0; a candidate above the
  /// bound is never chosen.
  double logitsError = 0;
};

/// A key's cost: the sum over steps of its kernels' time as a fraction of
/// that step's time under candidate 0, so a batch-1 step weighs as much as
/// a batch-32 step ten times longer.
struct TuningChoice {
  std::string key;
  size_t candidate = 0;
  double defaultCost = 0, chosenCost = 0;
  TileSetting setting;
};

/// Per tiling key of candidate 0: the candidate with the least cost among
/// those within `errorBound`, taken only when it beats candidate 0 by more
/// than `minGain` (a fraction; timing noise must not flip settings).
StatusOr<std::vector<TuningChoice>> chooseTuning(const TuningSpace &space,
                                                 const std::vector<CandidateResult> &results,
                                                 double errorBound, double minGain);

/// The --tuning file: {"version": 1, "target": ..., "kernels": {key: {...}}}.
std::string tuningFileJson(const TuningSpace &space, const std::vector<TuningChoice> &choices);

} // namespace m2c

#endif // M2C_RUNTIME_TUNING_TUNINGSEARCH_H
