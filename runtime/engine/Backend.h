//===- Backend.h - What the engine needs from an execution backend ---------===//

#ifndef M2C_RUNTIME_ENGINE_BACKEND_H
#define M2C_RUNTIME_ENGINE_BACKEND_H

#include "runtime/plan/Plan.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
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

/// The checks every backend makes first: 1..maxTokens tokens, and arrays
/// whose sizes agree with the token count and the block-table shape.
inline Status checkStepShape(const StepInputs &in, int64_t maxTokens) {
  int64_t tokens = in.numTokens();
  if (tokens <= 0 || tokens > maxTokens)
    return Status::error("a step must have 1 to " + std::to_string(maxTokens) +
                         " tokens (the plan's max_tokens), got " + std::to_string(tokens));
  if (static_cast<int64_t>(in.positions.size()) != tokens ||
      static_cast<int64_t>(in.tokenSeqs.size()) != tokens || in.numSeqs <= 0 ||
      in.maxBlocks <= 0 ||
      static_cast<int64_t>(in.blockTables.size()) != in.numSeqs * in.maxBlocks)
    return Status::error("malformed step inputs");
  return Status::ok();
}

/// What a step produced; the pointers stay valid until the next step.
struct StepOutputs {
  /// [rows, vocab] row-major. Null only when the step ran without
  /// `needLogits` and the entry has greedy ids.
  const float *logits = nullptr;
  /// [rows]: each logits row's argmax, lowest index on ties; -1 where the
  /// row holds a NaN or +inf, or only -inf. Null when the entry computes
  /// none (plan::Entry::greedyIds).
  const int32_t *greedyIds = nullptr;
  /// [rows, numCandidates] each: each row's best logits, best first
  /// (plan::Entry::candidateIds). Null unless the entry computes them and
  /// the step was asked for them.
  const int32_t *candidateIds = nullptr;
  const float *candidateLogits = nullptr;
  int64_t numCandidates = 0;
};

/// What the caller of a step reads. A backend may leave the rest on its
/// device (the CUDA backend copies only these), when the entry has greedy
/// ids.
struct StepReads {
  bool logits = true;
  bool candidates = false;
};

class Backend {
public:
  virtual ~Backend() = default;
  /// Runs entry `entry` and returns at least what `reads` asks for.
  virtual StatusOr<StepOutputs> run(const plan::Entry &entry, const StepInputs &inputs,
                                    StepReads reads) = 0;
  /// The logits of the last step, fetched after the fact (a greedy step
  /// whose id came back -1 reports why from them).
  virtual StatusOr<const float *> lastLogits() = 0;
  /// Runs entry `entry` and returns its logits, [rows, vocab] row-major,
  /// valid until the next call.
  StatusOr<const float *> execute(const plan::Entry &entry, const StepInputs &inputs) {
    StatusOr<StepOutputs> out = run(entry, inputs, StepReads{});
    if (!out)
      return out.status();
    return out->logits;
  }
  /// Blocks in the KV cache, including the reserved null block 0.
  virtual int64_t numKvBlocks() const = 0;
  /// The longest block table a step may carry.
  virtual int64_t maxBlocksPerSequence() const { return numKvBlocks() - 1; }
};

} // namespace m2c

#endif // M2C_RUNTIME_ENGINE_BACKEND_H
