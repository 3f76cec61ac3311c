//===- Engine.cpp - Chunked prefill, batched decode, sampling -------------===//

#include "runtime/engine/Engine.h"

#include <algorithm>

namespace m2c {

struct Engine::Sequence {
  size_t index = 0; // into the request list
  SeqId id = 0;
  const GenerationRequest *request = nullptr;
  GenerationResult *result = nullptr;
  Rng rng;
  std::vector<int32_t> tokens; // prompt + generated
  int64_t computed = 0;        // tokens whose KV is in the cache
  bool done = false;
};

StatusOr<std::unique_ptr<Engine>> Engine::create(const plan::Plan &plan, Backend &backend,
                                                 const EngineOptions &options) {
  KvCacheConfig config;
  if (backend.numKvBlocks() < 2 || backend.numKvBlocks() > INT32_MAX)
    return Status::error("the KV cache needs at least 2 blocks, got " +
                         std::to_string(backend.numKvBlocks()));
  config.numBlocks = static_cast<int32_t>(backend.numKvBlocks());
  config.blockSize = static_cast<int32_t>(plan.kvCache.blockSize);
  config.enablePrefixCaching = options.enablePrefixCaching;
  StatusOr<KvCacheManager> kv = KvCacheManager::create(config);
  if (!kv)
    return kv.status();
  std::unique_ptr<Engine> engine(new Engine(plan, backend, options, kv.take()));
  engine->prefillEntry_ = plan.findEntry("prefill");
  engine->decodeEntry_ = plan.findEntry("decode");
  if (!engine->prefillEntry_ || !engine->decodeEntry_)
    return Status::error("the plan needs both a prefill and a decode entry point");
  if (options.prefillChunk < 0 || options.maxDecodeBatch < 0)
    return Status::error("prefill chunk and decode batch must be non-negative");
  return engine;
}


Status Engine::accept(Sequence &seq, const float *logits) {
  StatusOr<int32_t> token = sample(logits, plan_.vocabSize, seq.request->sampling, seq.rng);
  if (!token)
    return token.status();
  seq.tokens.push_back(*token);
  seq.result->generatedIds.push_back(*token);
  if (options_.keepLogits)
    seq.result->logits.emplace_back(logits, logits + plan_.vocabSize);
  if (options_.onToken)
    options_.onToken(seq.index, *token);
  const std::vector<int32_t> &stops = seq.request->stopIds;
  if (static_cast<int64_t>(seq.result->generatedIds.size()) >= seq.request->maxNewTokens ||
      std::find(stops.begin(), stops.end(), *token) != stops.end())
    seq.done = true;
  return Status::ok();
}

Status Engine::prefill(Sequence &seq) {
  const std::vector<int32_t> &prompt = seq.request->promptIds;
  StatusOr<int64_t> cached = kv_.addSequence(seq.id, prompt);
  if (!cached)
    return cached.status();
  seq.computed = *cached;
  int64_t chunk = options_.prefillChunk ? std::min(options_.prefillChunk, plan_.maxTokens)
                                        : plan_.maxTokens;
  int64_t total = static_cast<int64_t>(prompt.size());
  const float *logits = nullptr;
  while (seq.computed < total) {
    int64_t count = std::min(chunk, total - seq.computed);
    StepInputs inputs;
    inputs.numSeqs = 1;
    StatusOr<std::vector<int32_t>> table = kv_.blockTable(seq.id);
    if (!table)
      return table.status();
    inputs.maxBlocks = std::max<int64_t>(1, static_cast<int64_t>(table->size()));
    inputs.blockTables.assign(inputs.maxBlocks, 0);
    std::copy(table->begin(), table->end(), inputs.blockTables.begin());
    for (int64_t i = 0; i < count; ++i) {
      inputs.tokenIds.push_back(prompt[seq.computed + i]);
      inputs.positions.push_back(static_cast<int32_t>(seq.computed + i));
      inputs.tokenSeqs.push_back(0);
    }
    StatusOr<const float *> out = backend_.execute(*prefillEntry_, inputs);
    if (!out)
      return out.status();
    logits = *out;
    M2C_RETURN_IF_ERROR(kv_.commitTokens(
        seq.id, std::vector<int32_t>(prompt.begin() + seq.computed,
                                     prompt.begin() + seq.computed + count)));
    seq.computed += count;
  }
  return accept(seq, logits);
}

Status Engine::decodeStep(std::vector<Sequence *> &batch) {
  // Reserve a slot for each sequence's newest token; a sequence that cannot
  // get one fails alone and leaves the batch.
  std::vector<Sequence *> running;
  for (Sequence *seq : batch) {
    Status status = kv_.appendSlots(seq->id, 1);
    if (!status) {
      seq->result->status = status;
      seq->done = true;
      continue;
    }
    running.push_back(seq);
  }
  if (running.empty())
    return Status::ok();
  StepInputs inputs;
  inputs.numSeqs = static_cast<int64_t>(running.size());
  int64_t maxBlocks = 1;
  for (Sequence *seq : running) {
    StatusOr<int64_t> slots = kv_.numSlots(seq->id);
    if (!slots)
      return slots.status();
    maxBlocks = std::max(maxBlocks, (*slots + plan_.kvCache.blockSize - 1) / plan_.kvCache.blockSize);
  }
  inputs.maxBlocks = maxBlocks;
  inputs.blockTables.assign(inputs.numSeqs * maxBlocks, 0);
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence &seq = *running[i];
    M2C_RETURN_IF_ERROR(kv_.fillBlockTable(seq.id, maxBlocks,
                                           inputs.blockTables.data() + i * maxBlocks));
    inputs.tokenIds.push_back(seq.tokens.back());
    inputs.positions.push_back(static_cast<int32_t>(seq.tokens.size() - 1));
    inputs.tokenSeqs.push_back(static_cast<int32_t>(i));
  }
  StatusOr<const float *> logits = backend_.execute(*decodeEntry_, inputs);
  if (!logits)
    return logits.status();
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence &seq = *running[i];
    M2C_RETURN_IF_ERROR(kv_.commitTokens(seq.id, {seq.tokens.back()}));
    seq.computed += 1;
    M2C_RETURN_IF_ERROR(accept(seq, *logits + i * plan_.vocabSize));
  }
  return Status::ok();
}

StatusOr<std::vector<GenerationResult>>
Engine::generate(const std::vector<GenerationRequest> &requests) {
  std::vector<GenerationResult> results(requests.size());
  std::vector<Sequence> sequences(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest &request = requests[i];
    Sequence &seq = sequences[i];
    seq.index = i;
    seq.id = nextSeqId_++;
    seq.request = &request;
    seq.result = &results[i];
    seq.rng = Rng::forStream(request.sampling.seed, 0);
    seq.tokens = request.promptIds;
    if (request.promptIds.empty()) {
      seq.result->status = Status::error("request " + std::to_string(i) + ": empty prompt");
      seq.done = true;
      continue;
    }
    for (int32_t id : request.promptIds)
      if (id < 0 || id >= plan_.vocabSize) {
        seq.result->status = Status::error("request " + std::to_string(i) + ": token id " +
                                           std::to_string(id) + " out of range [0, " +
                                           std::to_string(plan_.vocabSize) + ")");
        seq.done = true;
        break;
      }
    if (seq.done)
      continue;
    if (Status status = validateSamplingParams(request.sampling); !status) {
      seq.result->status = status.withContext("request " + std::to_string(i));
      seq.done = true;
      continue;
    }
    if (request.maxNewTokens <= 0) {
      seq.done = true;
      continue;
    }
    Status status = prefill(seq);
    if (!status) {
      seq.result->status = status.withContext("request " + std::to_string(i));
      seq.done = true;
    }
  }
  int64_t batchLimit = options_.maxDecodeBatch ? std::min(options_.maxDecodeBatch, plan_.maxTokens)
                                               : plan_.maxTokens;
  while (true) {
    std::vector<Sequence *> live;
    for (Sequence &seq : sequences)
      if (!seq.done)
        live.push_back(&seq);
    if (live.empty())
      break;
    for (size_t begin = 0; begin < live.size(); begin += batchLimit) {
      std::vector<Sequence *> batch(live.begin() + begin,
                                    live.begin() + std::min<size_t>(live.size(), begin + batchLimit));
      M2C_RETURN_IF_ERROR(decodeStep(batch));
    }
  }
  for (Sequence &seq : sequences)
    if (kv_.hasSequence(seq.id))
      M2C_RETURN_IF_ERROR(kv_.freeSequence(seq.id));
  return results;
}

} // namespace m2c
