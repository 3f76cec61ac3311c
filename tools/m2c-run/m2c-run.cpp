//===- m2c-run.cpp - Run an artifact on an inference target, without MLIR -===//
//
// What ships to a GPU box: the runtime alone. It runs artifacts `m2c
// compile` made (any target on the CPU, sm_* targets on the GPU) with the
// same engine, backends and batch-file format as `m2c run`. LLVM is not
// there, so flags are parsed here: `--name value` or `--name=value`.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/engine/Engine.h"
#include "runtime/serve/BackendFactory.h"
#include "runtime/serve/BatchFile.h"
#include "runtime/support/Flags.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

using namespace m2c;

namespace {

constexpr const char *kUsage = R"(usage: m2c-run ARTIFACT.m2a [options]

Runs a compiled artifact with the runtime alone (no compiler needed).

  --device cpu|cuda          where to run (default cpu)
  --prompt-ids 1,2,3         a prompt; repeat for a batch
  --batch-file FILE.jsonl    requests, one JSON object per line (docs/m2c-run.md)
  --output FILE              replies as JSON lines (default: stdout)
  --tokenizer FILE           tokenizer.json, for "prompt" text and reply text
  --max-new-tokens N         per request (default 16)
  --temperature X --top-k N --top-p X --seed N
                             sampling defaults (greedy unless --temperature > 0)
  --random-weights           seeded random weights instead of the artifact's
  --weight-seed N            seed for --random-weights (default 0)
  --checkpoint DIR           weights for an artifact compiled with --weights none
  --kv-blocks N              KV-cache blocks (cpu: default enough for all
                             requests; cuda: default what fits in
                             --gpu-memory-fraction)
  --gpu-memory-fraction X    (default 0.9)
  --no-cuda-graphs           launch decode kernels one by one
  --threads N                CPU threads (default all)
  --prefill-chunk N          tokens per prefill step (default max_tokens)
  --token-budget N           tokens per scheduler iteration (default max_tokens)
  --max-batch N              sequences per decode step (default max_tokens)
  --prefix-caching           reuse cached KV blocks of shared prompt prefixes
  --stats                    print throughput and scheduler counters to stderr
  --help, --version
)";

int fail(const std::string &message) {
  std::fprintf(stderr, "m2c-run: error: %s\n", message.c_str());
  return 1;
}

struct Options {
  std::string artifact, device = "cpu", batchFile, output, tokenizer, checkpoint;
  std::vector<std::vector<int32_t>> prompts;
  GenerationRequest defaults;
  bool randomWeights = false, cudaGraphs = true, stats = false;
  uint64_t weightSeed = 0;
  int64_t kvBlocks = 0;
  double gpuMemoryFraction = 0.9;
  int threads = 0;
  EngineOptions engine;
};

/// Fills `o` from argv; returns a message for the first bad flag.
Status parseFlags(int argc, char **argv, Options &o, bool &exitNow) {
  FlagSet flags(kUsage, std::string("m2c-run ") + M2C_VERSION);
  flags.addString("device", &o.device);
  flags.addString("batch-file", &o.batchFile);
  flags.addString("output", &o.output);
  flags.addString("tokenizer", &o.tokenizer);
  flags.addString("checkpoint", &o.checkpoint);
  flags.addCustom("prompt-ids", [&](const std::string &v) -> Status {
    StatusOr<std::vector<int64_t>> ids = parseIntList("--prompt-ids", v, 0, INT32_MAX, "a token id");
    if (!ids)
      return ids.status();
    o.prompts.emplace_back(ids->begin(), ids->end());
    return Status::ok();
  });
  flags.addInt("max-new-tokens", 0, INT32_MAX, [&](int64_t n) { o.defaults.maxNewTokens = n; });
  flags.addReal("temperature", 0, 1e6,
                [&](double x) { o.defaults.sampling.temperature = static_cast<float>(x); });
  flags.addInt("top-k", 0, INT32_MAX,
               [&](int64_t n) { o.defaults.sampling.topK = static_cast<int32_t>(n); });
  flags.addReal("top-p", 0, 1, [&](double x) { o.defaults.sampling.topP = static_cast<float>(x); });
  flags.addInt("seed", 0, INT64_MAX,
               [&](int64_t n) { o.defaults.sampling.seed = static_cast<uint64_t>(n); });
  flags.addInt("weight-seed", 0, INT64_MAX,
               [&](int64_t n) { o.weightSeed = static_cast<uint64_t>(n); });
  flags.addInt("kv-blocks", 2, INT32_MAX, [&](int64_t n) { o.kvBlocks = n; });
  flags.addReal("gpu-memory-fraction", 0.05, 1, [&](double x) { o.gpuMemoryFraction = x; });
  flags.addInt("threads", 0, 4096, [&](int64_t n) { o.threads = static_cast<int>(n); });
  flags.addInt("prefill-chunk", 0, INT32_MAX, [&](int64_t n) { o.engine.prefillChunk = n; });
  flags.addInt("token-budget", 0, INT32_MAX, [&](int64_t n) { o.engine.tokenBudget = n; });
  flags.addInt("max-batch", 0, INT32_MAX, [&](int64_t n) { o.engine.maxDecodeBatch = n; });
  flags.addSwitch("random-weights", &o.randomWeights);
  flags.addSwitch("stats", &o.stats);
  flags.addSwitch("prefix-caching", &o.engine.enablePrefixCaching);
  flags.addSwitch("no-cuda-graphs", &o.cudaGraphs, false);
  std::vector<std::string> positionals;
  M2C_RETURN_IF_ERROR(flags.parse(argc, argv, positionals, exitNow));
  if (positionals.size() > 1)
    return Status::error("one ARTIFACT only; '" + positionals[1] + "' is a second");
  if (!positionals.empty())
    o.artifact = positionals[0];
  return Status::ok();
}

int run(int argc, char **argv);

} // namespace

// Running out of host memory is an error like any other, not an uncaught
// std::bad_alloc.
int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc &) {
    return fail("out of host memory; use a smaller variant, fewer --kv-blocks, or --device cuda");
  }
}

namespace {

int run(int argc, char **argv) {
  Options o;
  bool done = false;
  if (Status status = parseFlags(argc, argv, o, done); !status)
    return fail(status.message());
  if (done)
    return 0;
  if (o.artifact.empty())
    return fail("give an ARTIFACT (see m2c-run --help)");
  if (Status status = checkDeviceName(o.device); !status)
    return fail(status.message());
  if (o.prompts.empty() == o.batchFile.empty())
    return fail("give --prompt-ids or --batch-file (one of them)");
  if (Status status = validateSamplingParams(o.defaults.sampling); !status)
    return fail(status.message());

  std::unique_ptr<Tokenizer> tokenizer;
  if (!o.tokenizer.empty()) {
    StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::fromFile(o.tokenizer);
    if (!loaded)
      return fail(loaded.status().message());
    tokenizer = loaded.take();
  }
  std::vector<BatchEntry> entries;
  if (!o.batchFile.empty()) {
    StatusOr<std::vector<BatchEntry>> read = readBatchFile(o.batchFile, o.defaults, tokenizer.get());
    if (!read)
      return fail(read.status().message());
    entries = read.take();
  }
  for (std::vector<int32_t> &ids : o.prompts) {
    BatchEntry entry;
    entry.request = o.defaults;
    entry.request.promptIds = std::move(ids);
    entries.push_back(std::move(entry));
  }

  StatusOr<Artifact> artifact = Artifact::load(o.artifact);
  if (!artifact)
    return fail(artifact.status().message());
  const plan::Plan &plan = artifact->plan();
  BackendRequest backendRequest;
  backendRequest.device = o.device;
  backendRequest.kvBlocks = o.kvBlocks;
  backendRequest.threads = o.threads;
  backendRequest.gpuMemoryFraction = o.gpuMemoryFraction;
  backendRequest.cudaGraphs = o.cudaGraphs;
  backendRequest.weights.random = o.randomWeights;
  backendRequest.weights.seed = o.weightSeed;
  backendRequest.weights.checkpointPath = o.checkpoint;
  std::vector<GenerationRequest> requests;
  for (const BatchEntry &e : entries)
    requests.push_back(e.request);
  if (o.device == "cpu")
    backendRequest.kvBlocksFor = [&](const plan::Plan &p) { return kvBlocksForRequests(p, requests); };
  auto loadStart = std::chrono::steady_clock::now();
  StatusOr<std::unique_ptr<Backend>> backend = createBackend(plan, &*artifact, backendRequest);
  if (!backend)
    return fail(backend.status().message());
  double loadSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loadStart).count();

  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, **backend, o.engine);
  if (!engine)
    return fail(engine.status().message());
  auto start = std::chrono::steady_clock::now();
  StatusOr<std::vector<GenerationResult>> results = (*engine)->generate(requests);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!results)
    return fail(results.status().message());

  std::ofstream file;
  if (!o.output.empty()) {
    file.open(o.output);
    if (!file)
      return fail(o.output + ": cannot write");
  }
  int exitCode = 0;
  size_t generated = 0;
  for (size_t i = 0; i < results->size(); ++i) {
    const GenerationResult &result = (*results)[i];
    generated += result.generatedIds.size();
    if (!result.status) {
      std::fprintf(stderr, "m2c-run: error: %s\n", result.status.message().c_str());
      exitCode = 1;
    }
    std::string line = batchReply(entries[i], i, result, tokenizer.get()) + "\n";
    if (file.is_open())
      file << line;
    else
      std::fputs(line.c_str(), stdout);
  }
  if (o.stats) {
    const EngineStats &s = (*engine)->stats();
    std::fprintf(stderr,
                 "m2c-run: %s, weights loaded in %.1f s; %zu tokens in %.3f s (%.1f tokens/s); "
                 "%lld iterations, %lld prefill and %lld decode steps, largest decode batch "
                 "%lld, %lld preemptions (%lld tokens replayed); %lld steps copied no logits; "
                 "%lld sampled tokens drawn from candidates; %lld KV blocks; %lld prompt tokens "
                 "from the prefix cache\n",
                 o.device.c_str(), loadSeconds, generated, seconds,
                 seconds > 0 ? generated / seconds : 0.0, (long long)s.iterations,
                 (long long)s.prefillSteps, (long long)s.decodeSteps, (long long)s.maxDecodeBatch,
                 (long long)s.preemptions, (long long)s.replayedTokens,
                 (long long)s.stepsWithoutLogits, (long long)s.candidateSamples,
                 (long long)(*backend)->numKvBlocks(), (long long)s.prefixCachedTokens);
  }
  return exitCode;
}

} // namespace
