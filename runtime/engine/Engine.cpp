//===- Engine.cpp - Chunked prefill, batched decode, sampling -------------===//

#include "runtime/engine/Engine.h"

#include <algorithm>
#include <deque>
#include <optional>

namespace m2c {

struct Engine::Sequence {
  size_t index = 0; // into the request list
  SeqId id = 0;
  const GenerationRequest *request = nullptr;
  GenerationResult *result = nullptr;
  Rng rng;
  std::vector<int32_t> tokens; // prompt + generated
  int64_t promptLength = 0;
  /// Tokens whose KV is in the cache. Step inputs always start here: a
  /// prefill chunk feeds tokens[computed, +count), a decode step
  /// tokens[computed]; logits are sampled only once computed reaches
  /// tokens.size() (earlier ones belong to a replay after preemption).
  int64_t computed = 0;
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


void Engine::finish(Sequence &seq, Status status) {
  if (!status && seq.result->status)
    seq.result->status = status.withContext("request " + std::to_string(seq.index));
  seq.done = true;
  if (kv_.hasSequence(seq.id))
    (void)kv_.freeSequence(seq.id); // cannot fail for a known sequence
}

StepReads Engine::readsFor(const plan::Entry &entry, const std::vector<Sequence *> &seqs) const {
  // An entry without ids gives only logits; a step that samples no row
  // needs nothing back but its ids.
  if (entry.greedyIds < 0)
    return StepReads{};
  if (seqs.empty())
    return StepReads{/*logits=*/false, /*candidates=*/false};
  if (options_.keepLogits)
    return StepReads{};
  const int64_t count = options_.useCandidates && entry.candidateIds >= 0
                            ? entry.buffers[entry.candidateIds].cols
                            : 0;
  StepReads reads{/*logits=*/false, /*candidates=*/false};
  for (const Sequence *seq : seqs) {
    const SamplingParams &params = seq->request->sampling;
    if (params.isGreedy())
      continue;
    // Candidates decide a top-k narrower than they are (sampleFromCandidates);
    // a tie at their boundary fetches the row after the step.
    if (count >= plan_.vocabSize || (params.topK > 0 && params.topK < count))
      reads.candidates = true;
    else
      reads.logits = true;
  }
  return reads;
}

Status Engine::accept(Sequence &seq, const StepOutputs &out, int64_t row) {
  const int64_t vocab = plan_.vocabSize;
  const float *logits = out.logits ? out.logits + row * vocab : nullptr;
  const SamplingParams &params = seq.request->sampling;
  // A greedy request takes the step's id whatever its batch mates need, so
  // its tokens do not depend on them. An id of -1 means the row cannot be
  // sampled: the sampler says why from the logits.
  int32_t token = -1;
  if (out.greedyIds && params.isGreedy()) {
    token = out.greedyIds[row];
  } else if (out.greedyIds && out.greedyIds[row] >= 0 && out.candidateIds &&
             options_.useCandidates) {
    const int64_t count = out.numCandidates;
    if (std::optional<int32_t> drawn =
            sampleFromCandidates(out.candidateIds + row * count, out.candidateLogits + row * count,
                                 count, vocab, params, seq.rng)) {
      token = *drawn;
      ++stats_.candidateSamples;
    }
  }
  if (!logits && (token < 0 || options_.keepLogits)) {
    StatusOr<const float *> fetched = backend_.lastLogits();
    if (!fetched)
      return fetched.status();
    logits = *fetched + row * vocab;
  }
  if (token < 0) {
    StatusOr<int32_t> sampled = sample(logits, vocab, params, seq.rng);
    if (!sampled)
      return sampled.status();
    token = *sampled;
  }
  seq.tokens.push_back(token);
  seq.result->generatedIds.push_back(token);
  if (options_.keepLogits)
    seq.result->logits.emplace_back(logits, logits + vocab);
  if (options_.onToken)
    options_.onToken(seq.index, token);
  const std::vector<int32_t> &stops = seq.request->stopIds;
  if (static_cast<int64_t>(seq.result->generatedIds.size()) >= seq.request->maxNewTokens ||
      std::find(stops.begin(), stops.end(), token) != stops.end())
    finish(seq, Status::ok());
  return Status::ok();
}

Status Engine::admit(Sequence &seq) {
  // A resumed sequence asks for every token it has: blocks still in the
  // prefix cache come back without recomputation. All-or-nothing.
  StatusOr<int64_t> cached = kv_.addSequence(seq.id, seq.tokens);
  if (!cached)
    return cached.status();
  seq.computed = *cached;
  stats_.prefixCachedTokens += *cached;
  return Status::ok();
}

Status Engine::prefillChunk(Sequence &seq, int64_t count) {
  StepInputs inputs;
  inputs.numSeqs = 1;
  StatusOr<std::vector<int32_t>> table = kv_.blockTable(seq.id);
  if (!table)
    return table.status();
  inputs.maxBlocks = std::max<int64_t>(1, static_cast<int64_t>(table->size()));
  inputs.blockTables.assign(inputs.maxBlocks, 0);
  std::copy(table->begin(), table->end(), inputs.blockTables.begin());
  for (int64_t i = 0; i < count; ++i) {
    inputs.tokenIds.push_back(seq.tokens[seq.computed + i]);
    inputs.positions.push_back(static_cast<int32_t>(seq.computed + i));
    inputs.tokenSeqs.push_back(0);
  }
  // Only the chunk that completes the prompt is sampled.
  bool sampled = seq.computed + count == static_cast<int64_t>(seq.tokens.size());
  StepReads reads = readsFor(*prefillEntry_, sampled ? std::vector<Sequence *>{&seq}
                                                     : std::vector<Sequence *>{});
  StatusOr<StepOutputs> out = backend_.run(*prefillEntry_, inputs, reads);
  if (!out)
    return out.status();
  ++stats_.prefillSteps;
  stats_.stepsWithoutLogits += reads.logits ? 0 : 1;
  M2C_RETURN_IF_ERROR(kv_.commitTokens(seq.id, inputs.tokenIds));
  seq.computed += count;
  if (sampled)
    return accept(seq, *out, 0);
  return Status::ok();
}

Status Engine::decodeStep(const std::vector<Sequence *> &batch) {
  StepInputs inputs;
  inputs.numSeqs = static_cast<int64_t>(batch.size());
  int64_t maxBlocks = 1;
  for (Sequence *seq : batch) {
    StatusOr<int64_t> slots = kv_.numSlots(seq->id);
    if (!slots)
      return slots.status();
    maxBlocks = std::max(maxBlocks, plan_.kvCache.blocksFor(*slots));
  }
  inputs.maxBlocks = maxBlocks;
  inputs.blockTables.assign(inputs.numSeqs * maxBlocks, 0);
  for (size_t i = 0; i < batch.size(); ++i) {
    Sequence &seq = *batch[i];
    M2C_RETURN_IF_ERROR(kv_.fillBlockTable(seq.id, maxBlocks,
                                           inputs.blockTables.data() + i * maxBlocks));
    inputs.tokenIds.push_back(seq.tokens[seq.computed]);
    inputs.positions.push_back(static_cast<int32_t>(seq.computed));
    inputs.tokenSeqs.push_back(static_cast<int32_t>(i));
  }
  // Rows of a replay after preemption are not sampled.
  std::vector<Sequence *> sampled;
  for (Sequence *seq : batch)
    if (seq->computed + 1 == static_cast<int64_t>(seq->tokens.size()))
      sampled.push_back(seq);
  StepReads reads = readsFor(*decodeEntry_, sampled);
  StatusOr<StepOutputs> out = backend_.run(*decodeEntry_, inputs, reads);
  if (!out)
    return out.status();
  ++stats_.decodeSteps;
  stats_.stepsWithoutLogits += reads.logits ? 0 : 1;
  stats_.maxDecodeBatch = std::max(stats_.maxDecodeBatch, inputs.numSeqs);
  for (size_t i = 0; i < batch.size(); ++i) {
    Sequence &seq = *batch[i];
    M2C_RETURN_IF_ERROR(kv_.commitTokens(seq.id, {seq.tokens[seq.computed]}));
    seq.computed += 1;
    if (seq.computed == static_cast<int64_t>(seq.tokens.size()))
      M2C_RETURN_IF_ERROR(accept(seq, *out, static_cast<int64_t>(i)));
    else
      ++stats_.replayedTokens;
  }
  return Status::ok();
}

StatusOr<std::vector<GenerationResult>>
Engine::generate(const std::vector<GenerationRequest> &requests) {
  std::vector<GenerationResult> results(requests.size());
  std::vector<Sequence> sequences(requests.size());
  std::deque<Sequence *> waiting;
  int64_t blockSize = plan_.kvCache.blockSize;
  int64_t longest = std::min<int64_t>(backend_.maxBlocksPerSequence(), kv_.pool().numBlocks() - 1) *
                    blockSize;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest &request = requests[i];
    Sequence &seq = sequences[i];
    seq.index = i;
    seq.id = nextSeqId_++;
    seq.request = &request;
    seq.result = &results[i];
    seq.rng = Rng::forStream(request.sampling.seed, 0);
    seq.tokens = request.promptIds;
    seq.promptLength = static_cast<int64_t>(request.promptIds.size());
    auto fail = [&](const std::string &why) {
      seq.result->status = Status::error("request " + std::to_string(i) + ": " + why);
      seq.done = true;
    };
    if (request.promptIds.empty()) {
      fail("empty prompt");
      continue;
    }
    for (int32_t id : request.promptIds)
      if (id < 0 || id >= plan_.vocabSize) {
        fail("token id " + std::to_string(id) + " out of range [0, " +
             std::to_string(plan_.vocabSize) + ")");
        break;
      }
    if (seq.done)
      continue;
    if (Status status = validateSamplingParams(request.sampling); !status) {
      fail(status.message());
      continue;
    }
    if (request.maxNewTokens <= 0) {
      seq.done = true;
      continue;
    }
    // The last generated token needs no KV slot.
    int64_t needed = seq.promptLength + request.maxNewTokens - 1;
    if (needed > longest) {
      fail("needs " + std::to_string(needed) + " tokens of KV cache, more than the " +
           std::to_string(longest) + " one sequence can hold");
      continue;
    }
    waiting.push_back(&seq);
  }

  int64_t budgetLimit = options_.tokenBudget ? std::min(options_.tokenBudget, plan_.maxTokens)
                                             : plan_.maxTokens;
  int64_t batchLimit = options_.maxDecodeBatch ? std::min(options_.maxDecodeBatch, plan_.maxTokens)
                                               : plan_.maxTokens;
  int64_t chunkLimit = options_.prefillChunk ? std::min(options_.prefillChunk, plan_.maxTokens)
                                             : plan_.maxTokens;
  // Admission order; the back is preempted first.
  std::vector<Sequence *> running;
  auto dropDone = [&] {
    running.erase(std::remove_if(running.begin(), running.end(),
                                 [](Sequence *seq) { return seq->done; }),
                  running.end());
  };
  auto preempt = [&](Sequence &seq) -> Status {
    M2C_RETURN_IF_ERROR(kv_.freeSequence(seq.id));
    seq.computed = 0;
    running.erase(std::find(running.begin(), running.end(), &seq));
    waiting.push_front(&seq);
    ++stats_.preemptions;
    return Status::ok();
  };

  while (!waiting.empty() || !running.empty()) {
    ++stats_.iterations;
    int64_t budget = budgetLimit;

    // 1. One decode token for every running sequence past its prompt; a
    // sequence that needs a new block may preempt newer ones.
    std::vector<Sequence *> batch;
    for (Sequence *seq : std::vector<Sequence *>(running)) {
      if (static_cast<int64_t>(batch.size()) >= std::min(batchLimit, budget))
        break;
      if (seq->done || seq->computed < seq->promptLength ||
          std::find(running.begin(), running.end(), seq) == running.end())
        continue;
      bool scheduled = false;
      while (!scheduled) {
        StatusOr<int64_t> slots = kv_.numSlots(seq->id);
        if (!slots)
          return slots.status();
        int64_t missing = seq->computed + 1 - *slots;
        Status status = missing > 0 ? kv_.appendSlots(seq->id, missing) : Status::ok();
        if (status) {
          scheduled = true;
          break;
        }
        Sequence *victim = running.back();
        if (victim == seq && running.size() == 1) {
          finish(*seq, status); // it cannot fit even alone
          break;
        }
        M2C_RETURN_IF_ERROR(preempt(*victim));
        batch.erase(std::remove(batch.begin(), batch.end(), victim), batch.end());
        if (victim == seq)
          break;
      }
      if (scheduled)
        batch.push_back(seq);
    }
    dropDone();
    if (!batch.empty()) {
      M2C_RETURN_IF_ERROR(decodeStep(batch));
      budget -= static_cast<int64_t>(batch.size());
    }
    dropDone();

    // 2. Prefill chunks of admitted sequences, oldest first.
    for (Sequence *seq : std::vector<Sequence *>(running)) {
      if (budget <= 0)
        break;
      if (seq->computed >= seq->promptLength)
        continue;
      int64_t count = std::min({chunkLimit, seq->promptLength - seq->computed, budget});
      M2C_RETURN_IF_ERROR(prefillChunk(*seq, count));
      budget -= count;
    }
    dropDone();

    // 3. Admit waiting requests while budget and blocks last.
    while (budget > 0 && !waiting.empty()) {
      Sequence &seq = *waiting.front();
      // Keep a block of headroom per running sequence, so an admission is
      // not undone by the next decode step's preemption.
      int64_t blocks = plan_.kvCache.blocksFor(static_cast<int64_t>(seq.tokens.size()));
      if (!running.empty() &&
          kv_.numFreeBlocks() - blocks < static_cast<int64_t>(running.size()))
        break;
      if (Status status = admit(seq); !status) {
        if (running.empty()) {
          // Nothing will free blocks: it cannot fit even alone.
          waiting.pop_front();
          finish(seq, status);
          continue;
        }
        break; // retry once running sequences free blocks
      }
      waiting.pop_front();
      running.push_back(&seq);
      if (seq.computed < seq.promptLength) {
        int64_t count = std::min({chunkLimit, seq.promptLength - seq.computed, budget});
        M2C_RETURN_IF_ERROR(prefillChunk(seq, count));
        budget -= count;
      }
      dropDone();
    }
  }
  for (Sequence &seq : sequences)
    if (kv_.hasSequence(seq.id))
      M2C_RETURN_IF_ERROR(kv_.freeSequence(seq.id));
  return results;
}

} // namespace m2c
