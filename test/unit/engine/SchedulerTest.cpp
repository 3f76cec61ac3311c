//===- SchedulerTest.cpp - Continuous batching and preemption are invisible ---===//
//
// A request's tokens must not depend on what it was scheduled with: run
// alone, in a batch of 64 with mixed prompt lengths and sampling, under a
// small token budget, or in a KV cache so small that sequences are
// preempted and recomputed. Runs on the CPU backend everywhere and on the
// CUDA backend where there is a GPU.
//
//===----------------------------------------------------------------------===//

#include "EngineTestUtil.h"

using namespace m2c;
using namespace m2c::testing;

namespace {

struct SchedulerCase {
  const char *backend;
  const char *artifact;
  int64_t maxPrompt;
};

void PrintTo(const SchedulerCase &c, std::ostream *os) { *os << c.backend << "/" << c.artifact; }

class SchedulerTest : public ::testing::TestWithParam<SchedulerCase> {
protected:
  void SetUp() override {
    std::string why;
    if (std::string(GetParam().backend) == "cuda" && !testDriver(why))
      GTEST_SKIP() << why;
    artifact_ = loadTestArtifact(GetParam().artifact, why);
    if (!artifact_)
      GTEST_SKIP() << why;
  }

  std::unique_ptr<Backend> backend(int64_t blocks) {
    return makeBackend(GetParam().backend, *artifact_, blocks);
  }

  std::optional<Artifact> artifact_;
};

void expectSameTokens(const std::vector<GenerationResult> &actual,
                      const std::vector<std::vector<int32_t>> &expected, const char *what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(actual[i].status) << what << " request " << i << ": "
                                  << actual[i].status.message();
    EXPECT_EQ(actual[i].generatedIds, expected[i]) << what << " request " << i;
  }
}

TEST_P(SchedulerTest, SixtyFourRequestsProduceWhatTheyProduceAlone) {
  const plan::Plan &plan = artifact_->plan();
  std::vector<GenerationRequest> requests =
      mixedRequests(64, plan.vocabSize, GetParam().maxPrompt, 64, 7);
  int64_t blockSize = plan.kvCache.blockSize;
  int64_t ample = 1;
  for (const GenerationRequest &r : requests)
    ample += (static_cast<int64_t>(r.promptIds.size()) + r.maxNewTokens + blockSize - 1) / blockSize;

  std::unique_ptr<Backend> large = backend(ample);
  ASSERT_TRUE(large);
  std::vector<std::vector<int32_t>> alone;
  for (const GenerationRequest &request : requests) {
    RunOutcome outcome = runEngine(plan, *large, {request});
    ASSERT_EQ(outcome.results.size(), 1u);
    ASSERT_TRUE(outcome.results[0].status) << outcome.results[0].status.message();
    ASSERT_EQ(static_cast<int64_t>(outcome.results[0].generatedIds.size()),
              requests[&request - requests.data()].maxNewTokens);
    alone.push_back(outcome.results[0].generatedIds);
  }

  RunOutcome together = runEngine(plan, *large, requests);
  expectSameTokens(together.results, alone, "together");
  EXPECT_EQ(together.stats.preemptions, 0);
  EXPECT_GT(together.stats.maxDecodeBatch, 8);

  // A small budget interleaves prefill chunks with running decodes.
  EngineOptions budgeted;
  budgeted.tokenBudget = 96;
  budgeted.prefillChunk = 64;
  RunOutcome mixed = runEngine(plan, *large, requests, budgeted);
  expectSameTokens(mixed.results, alone, "token budget 96");

  // Room for the longest request and a little more: sequences are
  // preempted, recomputed, and still produce the same tokens.
  int64_t longest = 0;
  for (const GenerationRequest &r : requests)
    longest = std::max<int64_t>(longest, (static_cast<int64_t>(r.promptIds.size()) +
                                          r.maxNewTokens + blockSize - 1) / blockSize);
  // Whether a given size preempts depends on the mix; across these sizes
  // some must, and none may change a token.
  int64_t preemptions = 0, replayed = 0;
  for (int64_t spare : {2, 4, 16, 64}) {
    std::unique_ptr<Backend> small = backend(longest + spare);
    ASSERT_TRUE(small);
    RunOutcome squeezed = runEngine(plan, *small, requests, budgeted);
    expectSameTokens(squeezed.results, alone,
                     ("cache of " + std::to_string(longest + spare) + " blocks").c_str());
    preemptions += squeezed.stats.preemptions;
    replayed += squeezed.stats.replayedTokens;
  }
  EXPECT_GT(preemptions, 0) << "no cache size was small enough to preempt";
  EXPECT_GT(replayed, 0);
  std::printf("[ scheduler ] %s: 64 requests equal alone; %lld preemptions, %lld tokens "
              "replayed; largest decode batch %lld\n",
              GetParam().artifact, static_cast<long long>(preemptions),
              static_cast<long long>(replayed), static_cast<long long>(together.stats.maxDecodeBatch));
}

TEST_P(SchedulerTest, PrefixCachingReusesBlocksAndChangesNoToken) {
  const plan::Plan &plan = artifact_->plan();
  const int64_t blockSize = plan.kvCache.blockSize;
  std::vector<GenerationRequest> requests = mixedRequests(16, plan.vocabSize, 200, 12, 11);
  // Every even request starts with the same 4 blocks and 3 tokens.
  const int64_t prefixBlocks = 4;
  std::vector<int32_t> prefix(prefixBlocks * blockSize + 3);
  for (size_t t = 0; t < prefix.size(); ++t)
    prefix[t] = static_cast<int32_t>((t * 7919 + 13) % plan.vocabSize);
  int64_t sharing = 0;
  for (size_t i = 0; i < requests.size(); i += 2, ++sharing)
    requests[i].promptIds.insert(requests[i].promptIds.begin(), prefix.begin(), prefix.end());
  std::unique_ptr<Backend> b = backend(512);
  ASSERT_TRUE(b);
  RunOutcome plain = runEngine(plan, *b, requests);
  EXPECT_EQ(plain.stats.prefixCachedTokens, 0);
  std::vector<std::vector<int32_t>> expected;
  for (const GenerationResult &r : plain.results)
    expected.push_back(r.generatedIds);

  EngineOptions cached;
  cached.enablePrefixCaching = true;
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, *b, cached);
  ASSERT_TRUE(engine) << engine.status().message();
  StatusOr<std::vector<GenerationResult>> first = (*engine)->generate(requests);
  ASSERT_TRUE(first) << first.status().message();
  expectSameTokens(*first, expected, "prefix caching, cold");
  const int64_t coldHits = (*engine)->stats().prefixCachedTokens;
  // A second pass finds every request's full prompt blocks cached (512
  // blocks evict nothing): at least the shared prefix of each.
  StatusOr<std::vector<GenerationResult>> second = (*engine)->generate(requests);
  ASSERT_TRUE(second) << second.status().message();
  expectSameTokens(*second, expected, "prefix caching, warm");
  const int64_t warmHits = (*engine)->stats().prefixCachedTokens - coldHits;
  EXPECT_GE(warmHits, sharing * prefixBlocks * blockSize);
  EXPECT_EQ(warmHits % blockSize, 0);
  std::printf("[ scheduler ] %s: prefix cache reused %lld tokens cold, %lld warm\n",
              GetParam().artifact, static_cast<long long>(coldHits),
              static_cast<long long>(warmHits));
}

TEST_P(SchedulerTest, ARequestTooLongForTheCacheFailsAloneAndLosesNothingElse) {
  const plan::Plan &plan = artifact_->plan();
  std::vector<GenerationRequest> requests = mixedRequests(4, plan.vocabSize, 20, 8, 3);
  GenerationRequest huge = requests[0];
  huge.promptIds.assign(40 * plan.kvCache.blockSize, 7);
  requests.insert(requests.begin() + 1, huge);
  std::unique_ptr<Backend> b = backend(16);
  ASSERT_TRUE(b);
  RunOutcome outcome = runEngine(plan, *b, requests);
  ASSERT_EQ(outcome.results.size(), requests.size());
  EXPECT_FALSE(outcome.results[1].status);
  EXPECT_NE(outcome.results[1].status.message().find("request 1: needs "), std::string::npos)
      << outcome.results[1].status.message();
  for (size_t i : {0, 2, 3, 4}) {
    EXPECT_TRUE(outcome.results[i].status) << outcome.results[i].status.message();
    EXPECT_EQ(static_cast<int64_t>(outcome.results[i].generatedIds.size()),
              requests[i].maxNewTokens);
  }
}

TEST_P(SchedulerTest, StopTokensEndARequestEarly) {
  const plan::Plan &plan = artifact_->plan();
  std::vector<GenerationRequest> requests = mixedRequests(1, plan.vocabSize, 10, 1, 5);
  requests[0].maxNewTokens = 12;
  std::unique_ptr<Backend> b = backend(64);
  ASSERT_TRUE(b);
  RunOutcome free = runEngine(plan, *b, requests);
  ASSERT_EQ(free.results[0].generatedIds.size(), 12u);
  requests[0].stopIds = {free.results[0].generatedIds[4]};
  RunOutcome stopped = runEngine(plan, *b, requests);
  const std::vector<int32_t> &ids = stopped.results[0].generatedIds;
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), free.results[0].generatedIds[4]);
  EXPECT_LE(ids.size(), 5u);
}

TEST_P(SchedulerTest, GreedyIdsAreTheArgmaxAndLeaveTheLogitsBehind) {
  const plan::Plan &plan = artifact_->plan();
  for (const plan::Entry &entry : plan.entries)
    ASSERT_GE(entry.greedyIds, 0) << entry.name << " computes no greedy ids";
  std::vector<GenerationRequest> requests = mixedRequests(8, plan.vocabSize, 60, 10, 13);
  for (GenerationRequest &r : requests)
    r.sampling = SamplingParams{};
  std::unique_ptr<Backend> b = backend(256);
  ASSERT_TRUE(b);
  // With the logits kept, each token the step's ids chose is their argmax
  // as the host sampler takes it.
  EngineOptions keep;
  keep.keepLogits = true;
  RunOutcome kept = runEngine(plan, *b, requests, keep);
  EXPECT_EQ(kept.stats.stepsWithoutLogits, 0);
  std::vector<std::vector<int32_t>> expected;
  for (const GenerationResult &r : kept.results) {
    ASSERT_TRUE(r.status) << r.status.message();
    ASSERT_EQ(r.logits.size(), r.generatedIds.size());
    for (size_t i = 0; i < r.logits.size(); ++i) {
      Rng unused(0);
      StatusOr<int32_t> argmax = sample(r.logits[i].data(), plan.vocabSize, {}, unused);
      ASSERT_TRUE(argmax) << argmax.status().message();
      EXPECT_EQ(r.generatedIds[i], *argmax) << "token " << i;
    }
    expected.push_back(r.generatedIds);
  }
  // Without them, greedy steps copy only the ids: same tokens.
  RunOutcome idsOnly = runEngine(plan, *b, requests);
  expectSameTokens(idsOnly.results, expected, "ids only");
  EXPECT_EQ(idsOnly.stats.stepsWithoutLogits,
            idsOnly.stats.prefillSteps + idsOnly.stats.decodeSteps);
}

TEST_P(SchedulerTest, SampledTokensFromCandidatesAreThoseOfTheWholeRow) {
  const plan::Plan &plan = artifact_->plan();
  for (const plan::Entry &entry : plan.entries)
    ASSERT_GE(entry.candidateIds, 0) << entry.name << " computes no candidates";
  std::unique_ptr<Backend> b = backend(256);
  ASSERT_TRUE(b);
  // A step's candidates are the best of its own logits, as the CPU ranks
  // them (a decode step of 4 sequences, one token each).
  const plan::Entry &decode = *plan.findEntry("decode");
  const int64_t count = decode.buffers[decode.candidateIds].cols;
  StepInputs in;
  in.numSeqs = 4;
  in.maxBlocks = 1;
  for (int32_t s = 0; s < 4; ++s) {
    in.tokenIds.push_back(7 + 31 * s);
    in.positions.push_back(0);
    in.tokenSeqs.push_back(s);
    in.blockTables.push_back(1 + s);
  }
  StatusOr<StepOutputs> out = b->run(decode, in, StepReads{true, true});
  ASSERT_TRUE(out) << out.status().message();
  ASSERT_TRUE(out->logits && out->candidateIds && out->candidateLogits);
  ASSERT_EQ(out->numCandidates, count);
  std::vector<int32_t> ids(4 * count);
  std::vector<float> values(4 * count);
  topCandidates(out->logits, 4, plan.vocabSize, count, ids.data(), values.data());
  EXPECT_EQ(std::vector<int32_t>(out->candidateIds, out->candidateIds + 4 * count), ids);
  EXPECT_EQ(std::vector<float>(out->candidateLogits, out->candidateLogits + 4 * count), values);

  // Sampled requests with top-k inside the candidates: the same tokens as
  // sampling whole rows, and no step copies logits.
  std::vector<GenerationRequest> requests = mixedRequests(8, plan.vocabSize, 60, 10, 17);
  for (size_t i = 0; i < requests.size(); ++i) {
    SamplingParams &p = requests[i].sampling;
    p.temperature = 0.7f + 0.2f * static_cast<float>(i % 3);
    p.topK = i % 2 ? 40 : 5;
    p.topP = i % 4 == 0 ? 0.9f : 1.0f;
    p.seed = 100 + i;
  }
  EngineOptions whole;
  whole.useCandidates = false;
  RunOutcome expected = runEngine(plan, *b, requests, whole);
  EXPECT_EQ(expected.stats.candidateSamples, 0);
  std::vector<std::vector<int32_t>> tokens;
  for (const GenerationResult &r : expected.results) {
    ASSERT_TRUE(r.status) << r.status.message();
    tokens.push_back(r.generatedIds);
  }
  RunOutcome fromCandidates = runEngine(plan, *b, requests);
  expectSameTokens(fromCandidates.results, tokens, "from candidates");
  EXPECT_GT(fromCandidates.stats.candidateSamples, 0);
  EXPECT_EQ(fromCandidates.stats.stepsWithoutLogits,
            fromCandidates.stats.prefillSteps + fromCandidates.stats.decodeSteps);
}

/// Logits with a NaN, whose step's greedy id is -1 (as the kernels report
/// it), for the engine's error path.
class NanBackend final : public Backend {
public:
  explicit NanBackend(int64_t vocab) : logits_(vocab, 0.5f) { logits_[3] = std::nanf(""); }
  StatusOr<StepOutputs> run(const plan::Entry &, const StepInputs &, StepReads reads) override {
    ++runs;
    StepOutputs out;
    out.greedyIds = &id_;
    out.logits = reads.logits ? logits_.data() : nullptr;
    return out;
  }
  StatusOr<const float *> lastLogits() override {
    ++fetches;
    return static_cast<const float *>(logits_.data());
  }
  int64_t numKvBlocks() const override { return 16; }
  int runs = 0, fetches = 0;

private:
  std::vector<float> logits_;
  int32_t id_ = -1;
};

TEST(EngineGreedyIds, AnIdOfMinusOneReportsWhyFromTheLogits) {
  std::string why;
  std::optional<Artifact> artifact = loadTestArtifact("tiny-cpu.m2a", why);
  if (!artifact)
    GTEST_SKIP() << why;
  NanBackend backend(artifact->plan().vocabSize);
  GenerationRequest request;
  request.promptIds = {1, 2, 3};
  request.maxNewTokens = 4;
  // As with logits the sampler rejects, the step fails the whole call.
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(artifact->plan(), backend, {});
  ASSERT_TRUE(engine) << engine.status().message();
  StatusOr<std::vector<GenerationResult>> results = (*engine)->generate({request});
  ASSERT_FALSE(results);
  EXPECT_EQ(results.status().message(), "logit at index 3 is not finite (nan)");
  EXPECT_EQ(backend.runs, 1);
  EXPECT_EQ(backend.fetches, 1);
}

/// One fixed row of logits, all 0 but token 7 (1.0), with its greedy id
/// and 64 candidates; the logits come back only when asked or fetched.
class FlatRowBackend final : public Backend {
public:
  explicit FlatRowBackend(int64_t vocab) : logits_(vocab, 0.0f), ids_(64), values_(64) {
    logits_[7] = 1.0f;
    topCandidates(logits_.data(), 1, vocab, 64, ids_.data(), values_.data());
  }
  StatusOr<StepOutputs> run(const plan::Entry &, const StepInputs &, StepReads reads) override {
    ++runs;
    logitReads += reads.logits ? 1 : 0;
    StepOutputs out;
    out.greedyIds = &greedy_;
    out.logits = reads.logits ? logits_.data() : nullptr;
    if (reads.candidates) {
      out.candidateIds = ids_.data();
      out.candidateLogits = values_.data();
      out.numCandidates = 64;
    }
    return out;
  }
  StatusOr<const float *> lastLogits() override {
    ++fetches;
    return static_cast<const float *>(logits_.data());
  }
  int64_t numKvBlocks() const override { return 16; }
  const std::vector<float> &row() const { return logits_; }
  int runs = 0, fetches = 0, logitReads = 0;

private:
  std::vector<float> logits_;
  std::vector<int32_t> ids_;
  std::vector<float> values_;
  int32_t greedy_ = 7;
};

TEST(EngineCandidates, DeclinedCandidatesFetchTheRowAndSampleItWhole) {
  std::string why;
  std::optional<Artifact> artifact = loadTestArtifact("tiny-cpu.m2a", why);
  if (!artifact)
    GTEST_SKIP() << why;
  const plan::Plan &plan = artifact->plan();
  ASSERT_GE(plan.findEntry("decode")->candidateIds, 0);
  GenerationRequest request;
  request.promptIds = {1, 2, 3};
  request.maxNewTokens = 3;
  request.sampling.temperature = 1.0f;
  request.sampling.seed = 5;
  // top-k 2: the 2nd best logit (0) ties the worst candidate's, so tokens
  // outside the candidates (id 0 among them) could be drawn: each step
  // fetches the row after the fact.
  request.sampling.topK = 2;
  FlatRowBackend tied(plan.vocabSize);
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, tied, {});
  ASSERT_TRUE(engine) << engine.status().message();
  StatusOr<std::vector<GenerationResult>> results = (*engine)->generate({request});
  ASSERT_TRUE(results) << results.status().message();
  Rng rng = Rng::forStream(request.sampling.seed, 0);
  std::vector<int32_t> expected;
  for (int i = 0; i < 3; ++i)
    expected.push_back(*sample(tied.row().data(), plan.vocabSize, request.sampling, rng));
  EXPECT_EQ((*results)[0].generatedIds, expected);
  EXPECT_EQ(tied.logitReads, 0) << "steps asked for the candidates, not the logits";
  EXPECT_EQ(tied.fetches, 3);
  EXPECT_EQ((*engine)->stats().candidateSamples, 0);
  // top-k 1: the best beats the worst candidate, so they decide alone.
  request.sampling.topK = 1;
  FlatRowBackend decided(plan.vocabSize);
  engine = Engine::create(plan, decided, {});
  ASSERT_TRUE(engine) << engine.status().message();
  results = (*engine)->generate({request});
  ASSERT_TRUE(results) << results.status().message();
  EXPECT_EQ((*results)[0].generatedIds, (std::vector<int32_t>{7, 7, 7}));
  EXPECT_EQ(decided.fetches, 0);
  EXPECT_EQ((*engine)->stats().candidateSamples, 3);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, SchedulerTest,
    ::testing::Values(SchedulerCase{"cpu", "tiny-cpu.m2a", 400},
                      SchedulerCase{"cuda", "tiny-sm90.m2a", 2000},
                      SchedulerCase{"cuda", "tiny-sm90-bf16kv.m2a", 2000},
                      SchedulerCase{"cuda", "tiny-sm90a.m2a", 2000}),
    [](const ::testing::TestParamInfo<SchedulerCase> &info) {
      std::string name = std::string(info.param.backend) + "_" + info.param.artifact;
      for (char &c : name)
        if (!isalnum(static_cast<unsigned char>(c)))
          c = '_';
      return name;
    });

} // namespace
