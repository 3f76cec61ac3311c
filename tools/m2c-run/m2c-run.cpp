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
#include "runtime/tokenizer/Tokenizer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>

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

StatusOr<int64_t> parseInt(const std::string &flag, const std::string &text, int64_t lo,
                           int64_t hi) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || value < lo || value > hi)
    return Status::error(flag + ": expected an integer in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "], got '" + text + "'");
  return static_cast<int64_t>(value);
}

StatusOr<double> parseReal(const std::string &flag, const std::string &text, double lo,
                           double hi) {
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || errno || !(value >= lo && value <= hi))
    return Status::error(flag + ": expected a number in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "], got '" + text + "'");
  return value;
}

StatusOr<std::vector<int32_t>> parseIds(const std::string &text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                     : comma - start);
    StatusOr<int64_t> id = parseInt("--prompt-ids", item, 0, INT32_MAX);
    if (!id)
      return id.status();
    ids.push_back(static_cast<int32_t>(*id));
    if (comma == std::string::npos)
      return ids;
    start = comma + 1;
  }
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

/// Fills `options` from argv; returns a message for the first bad flag.
Status parseFlags(int argc, char **argv, Options &o, bool &done) {
  using Setter = std::function<Status(const std::string &)>;
  auto integer = [](const char *flag, int64_t lo, int64_t hi, auto apply) -> Setter {
    return [=](const std::string &v) -> Status {
      StatusOr<int64_t> n = parseInt(flag, v, lo, hi);
      if (!n)
        return n.status();
      apply(*n);
      return Status::ok();
    };
  };
  auto real = [](const char *flag, double lo, double hi, auto apply) -> Setter {
    return [=](const std::string &v) -> Status {
      StatusOr<double> x = parseReal(flag, v, lo, hi);
      if (!x)
        return x.status();
      apply(*x);
      return Status::ok();
    };
  };
  auto text = [](std::string &slot) -> Setter {
    return [&slot](const std::string &v) {
      slot = v;
      return Status::ok();
    };
  };
  std::map<std::string, Setter> valued = {
      {"device", text(o.device)},
      {"batch-file", text(o.batchFile)},
      {"output", text(o.output)},
      {"tokenizer", text(o.tokenizer)},
      {"checkpoint", text(o.checkpoint)},
      {"prompt-ids",
       [&](const std::string &v) -> Status {
         StatusOr<std::vector<int32_t>> ids = parseIds(v);
         if (!ids)
           return ids.status();
         o.prompts.push_back(ids.take());
         return Status::ok();
       }},
      {"max-new-tokens", integer("--max-new-tokens", 0, INT32_MAX,
                                 [&](int64_t n) { o.defaults.maxNewTokens = n; })},
      {"temperature", real("--temperature", 0, 1e6,
                           [&](double x) { o.defaults.sampling.temperature = float(x); })},
      {"top-k", integer("--top-k", 0, INT32_MAX,
                        [&](int64_t n) { o.defaults.sampling.topK = int32_t(n); })},
      {"top-p", real("--top-p", 0, 1, [&](double x) { o.defaults.sampling.topP = float(x); })},
      {"seed", integer("--seed", 0, INT64_MAX,
                       [&](int64_t n) { o.defaults.sampling.seed = uint64_t(n); })},
      {"weight-seed", integer("--weight-seed", 0, INT64_MAX,
                              [&](int64_t n) { o.weightSeed = uint64_t(n); })},
      {"kv-blocks", integer("--kv-blocks", 2, INT32_MAX, [&](int64_t n) { o.kvBlocks = n; })},
      {"gpu-memory-fraction", real("--gpu-memory-fraction", 0.05, 1,
                                   [&](double x) { o.gpuMemoryFraction = x; })},
      {"threads", integer("--threads", 0, 4096, [&](int64_t n) { o.threads = int(n); })},
      {"prefill-chunk", integer("--prefill-chunk", 0, INT32_MAX,
                                [&](int64_t n) { o.engine.prefillChunk = n; })},
      {"token-budget", integer("--token-budget", 0, INT32_MAX,
                               [&](int64_t n) { o.engine.tokenBudget = n; })},
      {"max-batch", integer("--max-batch", 0, INT32_MAX,
                            [&](int64_t n) { o.engine.maxDecodeBatch = n; })},
  };
  std::map<std::string, bool *> switches = {{"random-weights", &o.randomWeights},
                                            {"stats", &o.stats},
                                            {"prefix-caching", &o.engine.enablePrefixCaching}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      done = true;
      return Status::ok();
    }
    if (arg == "--version") {
      std::printf("m2c-run %s\n", M2C_VERSION);
      done = true;
      return Status::ok();
    }
    if (arg.rfind("--", 0) != 0) {
      if (!o.artifact.empty())
        return Status::error("one ARTIFACT only; '" + arg + "' is a second");
      o.artifact = arg;
      continue;
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    bool hasValue = eq != std::string::npos;
    if (hasValue) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "no-cuda-graphs" && !hasValue) {
      o.cudaGraphs = false;
      continue;
    }
    if (auto sw = switches.find(name); sw != switches.end() && !hasValue) {
      *sw->second = true;
      continue;
    }
    auto setter = valued.find(name);
    if (setter == valued.end())
      return Status::error("--" + name + ": unknown flag (see m2c-run --help)");
    if (!hasValue) {
      if (i + 1 >= argc)
        return Status::error("--" + name + ": needs a value");
      value = argv[++i];
    }
    M2C_RETURN_IF_ERROR(setter->second(value));
  }
  return Status::ok();
}

} // namespace

int main(int argc, char **argv) {
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
                 "%lld, %lld preemptions (%lld tokens replayed); %lld KV blocks\n",
                 o.device.c_str(), loadSeconds, generated, seconds,
                 seconds > 0 ? generated / seconds : 0.0, (long long)s.iterations,
                 (long long)s.prefillSteps, (long long)s.decodeSteps, (long long)s.maxDecodeBatch,
                 (long long)s.preemptions, (long long)s.replayedTokens,
                 (long long)(*backend)->numKvBlocks());
  }
  return exitCode;
}
