//===- Backend.h - What the engine needs from an execution backend ---------===//

#ifndef M2C_RUNTIME_ENGINE_BACKEND_H
#define M2C_RUNTIME_ENGINE_BACKEND_H

#include "runtime/plan/Plan.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <vector>

namespace m2c {

/// The inputs of one step of an entry point: a flattened batch of tokens.
struct StepInputs {
  std::vector<int32_t> tokenIds;
  std::vector<int32_t> positions;
  std::vector<int32_t> tokenSeqs; // row of blockTables for each token
  std::vector<int32_t> blockTables; // [numSeqs, maxBlocks], padded with 0
  int64_t numSeqs = 0;
  int64_t maxBlocks = 0;

  int64_t numTokens() const { return static_cast<int64_t>(tokenIds.size()); }
};

class Backend {
public:
  virtual ~Backend() = default;
  /// Runs entry `entry` and returns its logits, [rows, vocab] row-major,
  /// valid until the next call.
  virtual StatusOr<const float *> execute(const plan::Entry &entry, const StepInputs &inputs) = 0;
  /// Blocks in the KV cache, including the reserved null block 0.
  virtual int64_t numKvBlocks() const = 0;
  /// The longest block table a step may carry.
  virtual int64_t maxBlocksPerSequence() const { return numKvBlocks() - 1; }
};

} // namespace m2c

#endif // M2C_RUNTIME_ENGINE_BACKEND_H
