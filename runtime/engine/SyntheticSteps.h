//===- SyntheticSteps.h - Step inputs for benchmarks and tuning -*- C++ -*-===//
//
// The decode and prefill steps m2c-bench and m2c-tune time: deterministic
// token ids, positions and block tables (blocks numbered from `firstBlock`,
// block 0 being the null block), no scheduler. What the ids are does not
// change how long a step takes.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_ENGINE_SYNTHETICSTEPS_H
#define M2C_RUNTIME_ENGINE_SYNTHETICSTEPS_H

#include "runtime/engine/Backend.h"
#include "runtime/plan/Plan.h"

namespace m2c {

/// One decode token for each of `batch` sequences, each at position
/// context - 1 (so attention reads `context` positions).
StepInputs syntheticDecodeStep(const plan::Plan &plan, int64_t batch, int64_t context,
                               int64_t firstBlock = 1);

/// Tokens [begin, begin + count) of one sequence's `length`-token prompt;
/// `seed` varies the ids between sequences.
StepInputs syntheticPromptChunk(const plan::Plan &plan, int64_t begin, int64_t count,
                                int64_t length, int64_t firstBlock = 1, int64_t seed = 0);

} // namespace m2c

#endif // M2C_RUNTIME_ENGINE_SYNTHETICSTEPS_H
