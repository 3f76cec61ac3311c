//===- SyntheticSteps.cpp - Step inputs for benchmarks and tuning ---------===//

#include "runtime/engine/SyntheticSteps.h"

namespace m2c {

namespace {
int64_t blocksFor(const plan::Plan &plan, int64_t tokens) {
  return plan.kvCache.blocksFor(tokens);
}
} // namespace

StepInputs syntheticDecodeStep(const plan::Plan &plan, int64_t batch, int64_t context,
                               int64_t firstBlock) {
  const int64_t blocks = blocksFor(plan, context);
  StepInputs in;
  in.numSeqs = batch;
  in.maxBlocks = blocks;
  for (int64_t s = 0; s < batch; ++s) {
    in.tokenIds.push_back(static_cast<int32_t>((s * 7919 + 13) % plan.vocabSize));
    in.positions.push_back(static_cast<int32_t>(context - 1));
    in.tokenSeqs.push_back(static_cast<int32_t>(s));
    for (int64_t b = 0; b < blocks; ++b)
      in.blockTables.push_back(static_cast<int32_t>(firstBlock + s * blocks + b));
  }
  return in;
}

StepInputs syntheticPromptChunk(const plan::Plan &plan, int64_t begin, int64_t count,
                                int64_t length, int64_t firstBlock, int64_t seed) {
  const int64_t blocks = blocksFor(plan, length);
  StepInputs in;
  in.numSeqs = 1;
  in.maxBlocks = blocks;
  for (int64_t b = 0; b < blocks; ++b)
    in.blockTables.push_back(static_cast<int32_t>(firstBlock + b));
  for (int64_t t = begin; t < begin + count; ++t) {
    in.tokenIds.push_back(static_cast<int32_t>((t * 7919 + seed * 104729 + 1) % plan.vocabSize));
    in.positions.push_back(static_cast<int32_t>(t));
    in.tokenSeqs.push_back(0);
  }
  return in;
}

} // namespace m2c
