//===- RunCommand.cpp - m2c run: generate tokens with a model or artifact -===//

#include "Commands.h"
#include "driver/CompileDriver.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/engine/Engine.h"
#include "runtime/serve/BatchFile.h"
#include "runtime/support/Flags.h"
#include "runtime/support/Npy.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/weights/Weights.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <fstream>
#include <optional>

using namespace llvm;

namespace m2c::tools {

using namespace m2c::driver;

cl::SubCommand runCommand("run", "Generate tokens with a model or an artifact");

namespace {

cl::OptionCategory runCategory("m2c run options");

cl::opt<std::string> modelArg(cl::Positional, cl::desc("MODEL_OR_ARTIFACT"),
                              cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> device("device", cl::desc("Where to run: cpu (default) or cuda"), cl::init("cpu"),
                            cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> batchFile(
    "batch-file", cl::desc("Requests as JSON lines; replies are written as JSON lines"),
    cl::value_desc("FILE.jsonl"), cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> outputFile("output", cl::desc("Write --batch-file replies here"),
                                cl::value_desc("FILE"), cl::init(""), cl::sub(runCommand),
                                cl::cat(runCategory));
cl::opt<double> gpuMemoryFraction(
    "gpu-memory-fraction", cl::desc("GPU memory for weights, activations and KV cache"),
    cl::init(0.9), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<bool> noCudaGraphs("no-cuda-graphs", cl::desc("Launch decode kernels one by one"),
                           cl::init(false), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> tokenBudget("token-budget",
                             cl::desc("Tokens per scheduler iteration (0 = max_tokens)"),
                             cl::init(0), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> maxBatch("max-batch", cl::desc("Sequences per decode step (0 = max_tokens)"),
                          cl::init(0), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<bool> prefixCaching("prefix-caching",
                            cl::desc("Reuse cached KV blocks of shared prompt prefixes"),
                            cl::init(false), cl::sub(runCommand), cl::cat(runCategory));
cl::list<std::string> promptIds(
    "prompt-ids", cl::desc("Prompt token ids, comma-separated; repeat for a batch"),
    cl::value_desc("1,2,3"), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> promptText(
    "prompt", cl::desc("Prompt text, encoded with the model's tokenizer.json; the "
                       "continuation streams to stdout as it is generated"),
    cl::value_desc("TEXT"), cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> tokenizerPath(
    "tokenizer", cl::desc("tokenizer.json for --prompt (default: the model directory's)"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> maxNewTokens("max-new-tokens", cl::desc("Tokens to generate per prompt (default 16)"),
                              cl::init(16), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<float> temperature("temperature", cl::desc("Sampling temperature (default 0 = greedy)"),
                           cl::init(0.0f), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int> topK("top-k", cl::desc("Keep the k most likely tokens (0 = off)"), cl::init(0),
                  cl::sub(runCommand), cl::cat(runCategory));
cl::opt<float> topP("top-p", cl::desc("Nucleus sampling mass (1 = off)"), cl::init(1.0f),
                    cl::sub(runCommand), cl::cat(runCategory));
cl::opt<uint64_t> seed("seed", cl::desc("Sampling seed"), cl::init(0), cl::sub(runCommand),
                       cl::cat(runCategory));
cl::opt<bool> jsonOutput("json", cl::desc("Print {\"prompt_ids\":[...],\"generated_ids\":[...]}"),
                         cl::init(false), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> logitsOut(
    "logits-out", cl::desc("Write float32 [new_tokens, vocab] logits of the first prompt"),
    cl::value_desc("FILE.npy"), cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<bool> randomWeights("random-weights", cl::desc("Use seeded random weights"),
                            cl::init(false), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<uint64_t> weightSeed("weight-seed", cl::desc("Seed for --random-weights"), cl::init(0),
                             cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> checkpointPath(
    "checkpoint", cl::desc("Checkpoint directory for an artifact compiled with --weights=none"),
    cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> kvBlocks("kv-blocks",
                          cl::desc("KV-cache blocks (default: enough for every request)"),
                          cl::init(0), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> prefillChunk("prefill-chunk", cl::desc("Tokens per prefill step (0 = max)"),
                              cl::init(0), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int> threads("threads", cl::desc("CPU threads (0 = all)"), cl::init(0),
                     cl::sub(runCommand), cl::cat(runCategory));
cl::list<std::string> setOverrides("set", cl::desc("Override a config.json key"),
                                   cl::value_desc("key=value"), cl::sub(runCommand),
                                   cl::cat(runCategory));
cl::list<std::string> disablePasses(
    "disable-pass", cl::desc("Leave a pass out of the pipeline ('all' skips every pass)"),
    cl::value_desc("PASS"), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> quantSpec("quant",
                               cl::desc("Weight formats per module class (as for compile)"),
                               cl::value_desc("class=format,..."), cl::init(""),
                               cl::sub(runCommand), cl::cat(runCategory));
cl::opt<std::string> quantCalibration(
    "quant-calibration",
    cl::desc("Pack the quantized weights with GPTQ on these prompts (as for compile; MODEL "
             "must be compiled in memory)"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(runCommand), cl::cat(runCategory));
cl::opt<int64_t> maxTokens("max-tokens", cl::desc("Tokens per step when compiling in memory (default 1024)"),
                           cl::init(1024), cl::sub(runCommand), cl::cat(runCategory));

std::string joinIds(const std::vector<int32_t> &ids) {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i)
    text += (i ? "," : "") + std::to_string(ids[i]);
  return text;
}

} // namespace

int runRun() {
  // Checked here: llvm::cl reports a missing cl::Required outside the
  // "m2c: error:" format.
  if (modelArg.empty())
    return reportError("run: give a MODEL (see 'm2c run --help')");
  if (Status status = checkDeviceName(device); !status)
    return reportError(status.message());
  bool textMode = promptText.getNumOccurrences() > 0;
  bool batchMode = !batchFile.empty();
  if (promptIds.empty() && !textMode && !batchMode)
    return reportError("--prompt-ids: give at least one prompt (or --prompt TEXT, or "
                       "--batch-file FILE)");
  if (int(textMode) + int(!promptIds.empty()) + int(batchMode) > 1)
    return reportError("--prompt, --prompt-ids and --batch-file exclude each other");
  if (!outputFile.empty() && !batchMode)
    return reportError("--output: only --batch-file replies go to a file");
  if (gpuMemoryFraction < 0.05 || gpuMemoryFraction > 1)
    return reportError("--gpu-memory-fraction: expected a number in [0.05, 1], got " +
                       std::to_string(gpuMemoryFraction.getValue()));
  if (tokenBudget < 0 || maxBatch < 0 || prefillChunk < 0 || kvBlocks < 0)
    return reportError("--token-budget, --max-batch, --prefill-chunk and --kv-blocks must be "
                       ">= 0");
  if (maxNewTokens < 0)
    return reportError("--max-new-tokens: expected >= 0, got " + Twine(maxNewTokens));
  // Nothing given is dropped: compile flags need a model to compile, and
  // top-k / top-p a sampled run (batch requests may set their own
  // temperature, so there the flags are defaults).
  if (isArtifactFile(modelArg)) {
    // std::addressof: a cl::list's operator& gives its storage.
    for (const cl::Option *flag : std::initializer_list<const cl::Option *>{
             &quantSpec, std::addressof(setOverrides), &maxTokens,
             std::addressof(disablePasses)})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr + ": '" + modelArg +
                           "' is an artifact, compiled already; compile flags apply to a model "
                           "compiled in memory (or give them to m2c compile)");
  }
  if (!batchMode && temperature <= 0)
    for (const cl::Option *flag : std::initializer_list<const cl::Option *>{&topK, &topP})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr +
                           ": this run is greedy; sampling needs --temperature > 0");
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string &text : promptIds) {
    StatusOr<std::vector<int64_t>> ids =
        parseIntList("--prompt-ids", text, 0, INT32_MAX, "a token id");
    if (!ids)
      return reportError(ids.status().message());
    prompts.emplace_back(ids->begin(), ids->end());
  }
  // --prompt: text through the tokenizer, and text back out as it streams.
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<int32_t> stopIds;
  if (batchMode && !tokenizerPath.empty()) {
    StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::fromFile(tokenizerPath);
    if (!loaded)
      return reportError(loaded.status().message());
    tokenizer = loaded.take();
  }
  if (textMode) {
    std::string path = tokenizerPath.empty() ? findTokenizer(modelArg, checkpointPath)
                                             : std::string(tokenizerPath);
    if (path.empty())
      return reportError(modelArg +
                         ": no tokenizer.json beside the model (pass --tokenizer FILE)");
    StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::fromFile(path);
    if (!loaded)
      return reportError(loaded.status().message());
    tokenizer = loaded.take();
    EncodeOptions encodeOptions;
    encodeOptions.addSpecialTokens = true;
    StatusOr<std::vector<int32_t>> ids = tokenizer->encode(promptText, encodeOptions);
    if (!ids)
      return reportError("--prompt: " + ids.status().message());
    if (ids->empty())
      return reportError("--prompt: the text encodes to no tokens");
    prompts.push_back(ids.take());
    // MiniMax-M2's end-of-message token ends a reply.
    if (std::optional<int32_t> eos = tokenizer->tokenToId("[e~["))
      stopIds.push_back(*eos);
  }
  GenerationRequest defaults;
  defaults.stopIds = stopIds;
  defaults.maxNewTokens = maxNewTokens;
  defaults.sampling.temperature = temperature;
  defaults.sampling.topK = topK;
  defaults.sampling.topP = topP;
  defaults.sampling.seed = seed;
  if (Status status = validateSamplingParams(defaults.sampling); !status)
    return reportError(status.message());
  std::vector<BatchEntry> entries;
  if (batchMode) {
    StatusOr<std::vector<BatchEntry>> read = readBatchFile(batchFile, defaults, tokenizer.get());
    if (!read)
      return reportError(read.status().message());
    entries = read.take();
  }
  for (std::vector<int32_t> &ids : prompts) {
    BatchEntry entry;
    entry.request = defaults;
    entry.request.promptIds = std::move(ids);
    entries.push_back(std::move(entry));
  }
  std::vector<GenerationRequest> requests;
  for (const BatchEntry &entry : entries)
    requests.push_back(entry.request);

  RunModelRequest modelRequest;
  modelRequest.model = modelArg;
  CompileOptions &compile = modelRequest.compile;
  compile.overrides.assign(setOverrides.begin(), setOverrides.end());
  compile.disabledPasses.assign(disablePasses.begin(), disablePasses.end());
  compile.quant = quantSpec;
  compile.maxTokens = maxTokens;
  // Checked before the model loads, as `m2c compile` would.
  if (StatusOr<CompileSetup> checked = resolveCompileOptions(compile); !checked)
    return reportError(checked.status().message());
  modelRequest.quantCalibration = quantCalibration;
  BackendRequest &backendRequest = modelRequest.backend;
  backendRequest.device = device;
  backendRequest.kvBlocks = kvBlocks;
  backendRequest.threads = threads;
  backendRequest.gpuMemoryFraction = gpuMemoryFraction;
  backendRequest.cudaGraphs = !noCudaGraphs;
  backendRequest.weights.random = randomWeights;
  backendRequest.weights.seed = weightSeed;
  backendRequest.weights.checkpointPath = checkpointPath;
  if (device == "cpu")
    backendRequest.kvBlocksFor = [&](const plan::Plan &p) { return kvBlocksForRequests(p, requests); };
  StatusOr<RunnableModel> model = loadRunnableModel(modelRequest);
  if (!model)
    return reportError(model.status().message());
  const plan::Plan &plan = model->plan();

  EngineOptions engineOptions;
  engineOptions.prefillChunk = prefillChunk;
  engineOptions.tokenBudget = tokenBudget;
  engineOptions.maxDecodeBatch = maxBatch;
  engineOptions.enablePrefixCaching = prefixCaching;
  engineOptions.keepLogits = !logitsOut.empty();
  std::optional<StreamDecoder> stream;
  // Only --prompt streams text; batch replies are JSON lines on stdout.
  if (tokenizer && !jsonOutput && !batchMode) {
    stream.emplace(*tokenizer, /*skipSpecialTokens=*/true);
    engineOptions.onToken = [&](size_t, int32_t id) {
      outs() << stream->push(id);
      outs().flush();
    };
  }
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, *model->backend, engineOptions);
  if (!engine)
    return reportError(engine.status().message());

  auto start = std::chrono::steady_clock::now();
  StatusOr<std::vector<GenerationResult>> results = (*engine)->generate(requests);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!results)
    return reportError(results.status().message());

  int exitCode = 0;
  size_t generated = 0;
  std::error_code fileError;
  std::optional<raw_fd_ostream> file;
  if (!outputFile.empty()) {
    file.emplace(outputFile, fileError);
    if (fileError)
      return reportError(outputFile + ": " + fileError.message());
  }
  for (size_t i = 0; i < results->size(); ++i) {
    const GenerationResult &result = (*results)[i];
    generated += result.generatedIds.size();
    if (!result.status) {
      reportError(result.status.message());
      exitCode = 1;
    }
    if (batchMode)
      (file ? *file : outs()) << batchReply(entries[i], i, result, tokenizer.get()) << "\n";
    else if (jsonOutput && tokenizer)
      outs() << "{\"prompt_ids\":[" << joinIds(requests[i].promptIds) << "],\"generated_ids\":["
             << joinIds(result.generatedIds) << "],\"text\":"
             << nlohmann::json(tokenizer->decode(result.generatedIds, true)).dump() << "}\n";
    else if (jsonOutput)
      outs() << "{\"prompt_ids\":[" << joinIds(requests[i].promptIds) << "],\"generated_ids\":["
             << joinIds(result.generatedIds) << "]}\n";
    else if (stream)
      outs() << stream->finish() << "\n";
    else
      outs() << joinIds(result.generatedIds) << "\n";
  }
  if (!jsonOutput)
    errs() << "m2c: " << generated << " tokens in " << format("%.3f", seconds) << " s ("
           << format("%.1f", seconds > 0 ? generated / seconds : 0.0) << " tokens/s, "
           << device << ")\n";
  if (!logitsOut.empty()) {
    const GenerationResult &first = results->front();
    std::vector<float> flat;
    for (const std::vector<float> &row : first.logits)
      flat.insert(flat.end(), row.begin(), row.end());
    Status status = writeNpy(logitsOut, flat.data(),
                                {static_cast<int64_t>(first.logits.size()), plan.vocabSize});
    if (!status)
      return reportError(status.message());
  }
  return exitCode;
}

} // namespace m2c::tools
