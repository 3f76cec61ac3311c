//===- Engine.h - Requests in, tokens out: prefill, decode, sampling -------===//
//
// A continuous-batching scheduler over the plan's two entry points (vLLM
// v1's scheduler, adapted to separate prefill and decode entries). Each
// iteration spends a token budget: first one decode step over every
// running sequence (one token each), then prefill chunks of admitted
// sequences in arrival order, admitting waiting requests while the budget
// and the KV cache allow. A finished request frees its blocks at once, so
// the next one joins the running batch mid-flight.
//
// When a decode step cannot get a block, the most recently admitted
// sequence is preempted: its blocks are freed and it waits at the head of
// the queue. On resumption its prompt is prefilled again and the tokens it
// had generated are replayed through decode steps (logits discarded), so
// every KV row it ends with was computed by the same kernels as before and
// it continues exactly as it would have. Invariants (tested in EngineTest):
//  1. A request's tokens do not depend on what else is scheduled with it:
//     backends compute each token of a step independently of the others,
//     and a sequence's own RNG stream is advanced only by its own samples.
//  2. Preemption never changes another sequence's blocks (KvCacheManager's
//     all-or-nothing calls) and never loses a generated token.
//  3. Only a request that cannot fit even alone fails for lack of blocks.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_ENGINE_ENGINE_H
#define M2C_RUNTIME_ENGINE_ENGINE_H

#include "runtime/engine/Backend.h"
#include "runtime/kvcache/KvCacheManager.h"
#include "runtime/sampling/Sampler.h"

#include <functional>
#include <memory>

namespace m2c {

struct GenerationRequest {
  std::vector<int32_t> promptIds;
  int64_t maxNewTokens = 16;
  SamplingParams sampling;
  /// Generation stops after emitting any of these.
  std::vector<int32_t> stopIds;
};

struct GenerationResult {
  std::vector<int32_t> generatedIds;
  /// Row i: the logits generated token i was chosen from (when kept).
  std::vector<std::vector<float>> logits;
  /// Not ok when the request failed (e.g. the KV cache ran out).
  Status status;
};

struct EngineOptions {
  /// Tokens per prefill step; 0 = the plan's max_tokens.
  int64_t prefillChunk = 0;
  /// Sequences per decode step; 0 = as many as max_tokens allows.
  int64_t maxDecodeBatch = 0;
  /// Tokens per scheduler iteration, decode and prefill together; 0 = the
  /// plan's max_tokens.
  int64_t tokenBudget = 0;
  bool keepLogits = false;
  /// Sample from the plan's candidates (each row's best logits) when they
  /// decide the token exactly; off, sampled rows read the whole row. The
  /// tokens are the same either way.
  bool useCandidates = true;
  bool enablePrefixCaching = false;
  /// Called with (request index, token) as each token is chosen.
  std::function<void(size_t, int32_t)> onToken;
};

/// What the scheduler did, for tests and benchmarks.
struct EngineStats {
  int64_t iterations = 0;
  int64_t prefillSteps = 0;
  int64_t decodeSteps = 0;
  int64_t preemptions = 0;
  int64_t maxDecodeBatch = 0;
  /// Decode tokens computed again after a preemption.
  int64_t replayedTokens = 0;
  /// Steps that brought back only the greedy ids, not the logits.
  int64_t stepsWithoutLogits = 0;
  /// Sampled tokens drawn from the candidates alone.
  int64_t candidateSamples = 0;
  /// Prompt tokens whose KV came from the prefix cache (whole blocks).
  int64_t prefixCachedTokens = 0;
};

class Engine {
public:
  static StatusOr<std::unique_ptr<Engine>> create(const plan::Plan &plan, Backend &backend,
                                                  const EngineOptions &options);

  /// Runs all requests to completion. Fails only on errors that affect
  /// every request; per-request failures are in each result's status.
  StatusOr<std::vector<GenerationResult>> generate(const std::vector<GenerationRequest> &requests);
  /// Accumulated over every generate() call.
  const EngineStats &stats() const { return stats_; }

private:
  Engine(const plan::Plan &plan, Backend &backend, const EngineOptions &options,
         KvCacheManager kv)
      : plan_(plan), backend_(backend), options_(options), kv_(std::move(kv)) {}

  struct Sequence;
  Status admit(Sequence &seq);
  Status prefillChunk(Sequence &seq, int64_t count);
  Status decodeStep(const std::vector<Sequence *> &batch);
  /// Chooses seq's next token from row `row` of a step's outputs.
  Status accept(Sequence &seq, const StepOutputs &out, int64_t row);
  /// What a step must bring back to sample the rows of `seqs` (none: the
  /// step samples nothing): logits, sampling candidates, or only the ids.
  StepReads readsFor(const plan::Entry &entry, const std::vector<Sequence *> &seqs) const;
  void finish(Sequence &seq, Status status);

  const plan::Plan &plan_;
  Backend &backend_;
  EngineOptions options_;
  KvCacheManager kv_;
  const plan::Entry *prefillEntry_ = nullptr;
  const plan::Entry *decodeEntry_ = nullptr;
  /// Sequence ids for the KV-cache manager; never reused within an engine.
  SeqId nextSeqId_ = 1;
  EngineStats stats_;
};

} // namespace m2c

#endif // M2C_RUNTIME_ENGINE_ENGINE_H
