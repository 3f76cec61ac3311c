//===- Engine.h - Requests in, tokens out: prefill, decode, sampling -------===//
//
// Drives a backend over the plan's two entry points. Prompts are prefilled
// in chunks (each chunk one prefill step over one sequence); then every
// live sequence decodes together, one token each per decode step. The KV
// cache manager owns block tables; running out of blocks fails that
// request with a status and never touches another sequence's blocks.
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
  bool keepLogits = false;
  bool enablePrefixCaching = false;
  /// Called with (request index, token) as each token is chosen.
  std::function<void(size_t, int32_t)> onToken;
};

class Engine {
public:
  static StatusOr<std::unique_ptr<Engine>> create(const plan::Plan &plan, Backend &backend,
                                                  const EngineOptions &options);

  /// Runs all requests to completion. Fails only on errors that affect
  /// every request; per-request failures are in each result's status.
  StatusOr<std::vector<GenerationResult>> generate(const std::vector<GenerationRequest> &requests);

private:
  Engine(const plan::Plan &plan, Backend &backend, const EngineOptions &options,
         KvCacheManager kv)
      : plan_(plan), backend_(backend), options_(options), kv_(std::move(kv)) {}

  struct Sequence;
  Status prefill(Sequence &seq);
  Status decodeStep(std::vector<Sequence *> &batch);
  Status accept(Sequence &seq, const float *logits);

  const plan::Plan &plan_;
  Backend &backend_;
  EngineOptions options_;
  KvCacheManager kv_;
  const plan::Entry *prefillEntry_ = nullptr;
  const plan::Entry *decodeEntry_ = nullptr;
  /// Sequence ids for the KV-cache manager; never reused within an engine.
  SeqId nextSeqId_ = 1;
};

} // namespace m2c

#endif // M2C_RUNTIME_ENGINE_ENGINE_H
