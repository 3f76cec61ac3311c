//===- ChatCommand.cpp - m2c chat: an interactive MiniMax-M2 session ------===//
//
// Reads user turns from stdin, renders the whole conversation with the
// MiniMax-M2 chat template, generates until the end-of-message token and
// streams the reply: reasoning (dim on a terminal) then the answer. The
// parsed reply goes into the history, so earlier reasoning is dropped the way
// the template drops it.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"
#include "driver/CompileDriver.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/chat/ChatOutput.h"
#include "runtime/chat/ChatTemplate.h"
#include "runtime/engine/Engine.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/weights/Weights.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

using namespace llvm;

namespace m2c::tools {

using namespace m2c::driver;

cl::SubCommand chatCommand("chat", "Chat with a model (MiniMax-M2 chat format)");

namespace {

cl::OptionCategory chatCategory("m2c chat options");

cl::opt<std::string> modelArg(cl::Positional, cl::desc("MODEL_OR_ARTIFACT"),
                              cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<std::string> tokenizerPath(
    "tokenizer", cl::desc("tokenizer.json (default: the one in the model directory)"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<std::string> systemPrompt("system", cl::desc("System message"), cl::init(""),
                                  cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<std::string> toolsFile(
    "tools", cl::desc("JSON file with an array of OpenAI-style tool definitions"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<int64_t> maxNewTokens("max-new-tokens", cl::desc("Tokens per reply at most (default 1024)"),
                              cl::init(1024), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<int64_t> maxContext("max-context",
                            cl::desc("Conversation length in tokens the KV cache holds (default 8192)"),
                            cl::init(8192), cl::sub(chatCommand), cl::cat(chatCategory));
// MiniMax-M2's recommended sampling (docs/minimax-m2.md).
cl::opt<float> temperature("temperature", cl::desc("Sampling temperature (default 1.0, MiniMax-M2's; 0 = greedy)"),
                           cl::init(1.0f), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<int> topK("top-k", cl::desc("Keep the k most likely tokens (default 40; 0 = off)"), cl::init(40),
                  cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<float> topP("top-p", cl::desc("Nucleus sampling mass (default 0.95; 1 = off)"), cl::init(0.95f),
                    cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<uint64_t> seed("seed", cl::desc("Sampling seed (turn i uses seed + i)"), cl::init(0),
                       cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<bool> hideReasoning("hide-reasoning", cl::desc("Do not print the <think> part"),
                            cl::init(false), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<bool> printPrompt("print-prompt",
                          cl::desc("Print each rendered prompt to stderr before generating"),
                          cl::init(false), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<bool> randomWeights("random-weights", cl::desc("Use seeded random weights"),
                            cl::init(false), cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<uint64_t> weightSeed("weight-seed", cl::desc("Seed for --random-weights"), cl::init(0),
                             cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<std::string> checkpointPath(
    "checkpoint", cl::desc("Checkpoint directory for an artifact compiled with --weights=none"),
    cl::init(""), cl::sub(chatCommand), cl::cat(chatCategory));
cl::list<std::string> setOverrides("set", cl::desc("Override a config.json key"),
                                   cl::value_desc("key=value"), cl::sub(chatCommand),
                                   cl::cat(chatCategory));
cl::opt<std::string> device("device", cl::desc("Where to run: cpu (default) or cuda"), cl::init("cpu"),
                            cl::sub(chatCommand), cl::cat(chatCategory));
cl::opt<int> threads("threads", cl::desc("CPU threads (0 = all)"), cl::init(0),
                     cl::sub(chatCommand), cl::cat(chatCategory));

/// The loaded model: weights, backend and engine, kept alive together.
struct LoadedModel {
  RunnableModel runnable;
  std::unique_ptr<Engine> engine;
  const plan::Plan &plan() const { return runnable.plan(); }
};

Status loadModel(LoadedModel &model, const EngineOptions &engineOptions) {
  RunModelRequest request;
  request.model = modelArg;
  request.compile.overrides.assign(setOverrides.begin(), setOverrides.end());
  request.backend.weights.random = randomWeights;
  request.backend.weights.seed = weightSeed;
  request.backend.weights.checkpointPath = checkpointPath;
  request.backend.threads = threads;
  request.backend.device = device;
  // The whole conversation plus the null block.
  request.backend.kvBlocksFor = [](const plan::Plan &plan) {
    return 1 + plan.kvCache.blocksFor(maxContext);
  };
  StatusOr<RunnableModel> runnable = loadRunnableModel(request);
  if (!runnable)
    return runnable.status();
  model.runnable = runnable.take();
  StatusOr<std::unique_ptr<Engine>> engine =
      Engine::create(model.plan(), *model.runnable.backend, engineOptions);
  if (!engine)
    return engine.status();
  model.engine = engine.take();
  return Status::ok();
}

StatusOr<std::vector<chat::Json>> loadTools(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return Status::error(path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  chat::Json tools = chat::Json::parse(text.str(), nullptr, false);
  if (tools.is_discarded() || !tools.is_array())
    return Status::error(path + ": expected a JSON array of tool definitions");
  for (size_t i = 0; i < tools.size(); ++i)
    if (!tools[i].is_object() || !tools[i].contains("function"))
      return Status::error(path + ": tools[" + std::to_string(i) +
                           "]: expected an object with a \"function\" member");
  return std::vector<chat::Json>(tools.begin(), tools.end());
}

} // namespace

int runChat() {
  // Checked here: llvm::cl reports a missing cl::Required outside the
  // "m2c: error:" format.
  if (modelArg.empty())
    return reportError("chat: give a MODEL (see 'm2c chat --help')");
  if (maxNewTokens <= 0)
    return reportError("--max-new-tokens: expected > 0, got " + Twine(maxNewTokens));
  if (maxContext <= 0)
    return reportError("--max-context: expected > 0, got " + Twine(maxContext));
  if (isArtifactFile(modelArg) && setOverrides.getNumOccurrences())
    return reportError("--set: '" + modelArg +
                       "' is an artifact, compiled already; compile flags apply to a model "
                       "compiled in memory (or give them to m2c compile)");
  SamplingParams sampling;
  sampling.temperature = temperature;
  sampling.topK = topK;
  sampling.topP = topP;
  if (Status status = validateSamplingParams(sampling); !status)
    return reportError(status.message());

  std::string tokPath = tokenizerPath.empty() ? findTokenizer(modelArg, checkpointPath)
                                              : std::string(tokenizerPath);
  if (tokPath.empty())
    return reportError(modelArg + ": no tokenizer.json beside the model (pass --tokenizer FILE)");
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromFile(tokPath);
  if (!tok)
    return reportError(tok.status().message());
  std::optional<int32_t> eos = (*tok)->tokenToId(chat::kEndOfMessage);
  if (!eos)
    return reportError(tokPath + ": the tokenizer has no '" + std::string(chat::kEndOfMessage) +
                       "' token (not a MiniMax-M2 tokenizer)");
  std::vector<chat::Json> tools;
  if (!toolsFile.empty()) {
    StatusOr<std::vector<chat::Json>> loaded = loadTools(toolsFile);
    if (!loaded)
      return reportError(loaded.status().message());
    tools = loaded.take();
  }

  bool inputTty = isatty(0), outputTty = isatty(1);
  // Streaming: decode each token as it comes and split reasoning from answer.
  std::unique_ptr<StreamDecoder> decoder;
  chat::ReplyStream replyStream;
  std::string generatedText;
  bool reasoningShown = false, answerShown = false, dim = false;
  // Reasoning is dim on a terminal; the answer follows after a blank line.
  auto endDim = [&] {
    if (dim)
      outs() << "\x1b[0m";
    dim = false;
  };
  auto show = [&](const std::string &reasoning, const std::string &answer) {
    if (!reasoning.empty() && !hideReasoning) {
      if (outputTty && !dim) {
        outs() << "\x1b[2m";
        dim = true;
      }
      outs() << reasoning;
      reasoningShown = true;
    }
    if (!answer.empty()) {
      endDim();
      if (reasoningShown && !answerShown)
        outs() << "\n\n";
      outs() << answer;
      answerShown = true;
    }
    outs().flush();
  };
  EngineOptions engineOptions;
  engineOptions.onToken = [&](size_t, int32_t id) {
    if (id == *eos)
      return;
    std::string text = decoder->push(id);
    generatedText += text;
    std::string reasoning, answer;
    replyStream.push(text, reasoning, answer);
    show(reasoning, answer);
  };
  LoadedModel model;
  if (Status status = loadModel(model, engineOptions); !status)
    return reportError(status.message());
  if ((*tok)->vocabSize() > model.plan().vocabSize)
    errs() << "m2c: warning: " << tokPath << " has " << (*tok)->vocabSize()
           << " tokens but the model's vocabulary is " << model.plan().vocabSize << "\n";

  std::vector<chat::Message> history;
  auto makeMessage = [](const char *role, std::string content) {
    chat::Message m;
    m.role = role;
    m.content = std::move(content);
    return m;
  };
  if (!systemPrompt.empty())
    history.push_back(makeMessage("system", systemPrompt));
  if (inputTty)
    errs() << "m2c chat: type a message; /reset clears the history, /tool TEXT answers a "
              "tool call, /exit or Ctrl-D quits\n";
  uint64_t turn = 0;
  std::string line;
  while (true) {
    if (inputTty) {
      outs() << "> ";
      outs().flush();
    }
    if (!std::getline(std::cin, line))
      break;
    if (line == "/exit" || line == "/quit")
      break;
    if (line == "/reset") {
      history.resize(systemPrompt.empty() ? 0 : 1);
      outs() << "(history cleared)\n";
      continue;
    }
    if (line.empty())
      continue;
    chat::Message message = line.rfind("/tool ", 0) == 0 ? makeMessage("tool", line.substr(6))
                                                         : makeMessage("user", line);
    std::vector<chat::Message> conversation = history;
    conversation.push_back(message);
    StatusOr<std::string> prompt = chat::renderChat(conversation, tools);
    if (!prompt) {
      reportError(prompt.status().message());
      continue;
    }
    if (printPrompt)
      errs() << "--- prompt ---\n" << *prompt << "\n--- end of prompt ---\n";
    StatusOr<std::vector<int32_t>> ids = (*tok)->encode(*prompt);
    if (!ids) {
      reportError("input: " + ids.status().message());
      continue;
    }
    int64_t budget = std::min<int64_t>(maxNewTokens, maxContext - int64_t(ids->size()));
    if (budget <= 0) {
      reportError("the conversation is " + Twine(ids->size()) + " tokens, --max-context is " +
                  Twine(maxContext) + " (use /reset)");
      continue;
    }
    size_t promptTokens = ids->size();
    GenerationRequest request;
    request.promptIds = ids.take();
    request.maxNewTokens = budget;
    request.sampling = sampling;
    request.sampling.seed = seed + turn++;
    request.stopIds = {*eos};
    decoder = std::make_unique<StreamDecoder>(**tok);
    replyStream = chat::ReplyStream();
    generatedText.clear();
    reasoningShown = answerShown = false;
    auto start = std::chrono::steady_clock::now();
    StatusOr<std::vector<GenerationResult>> results = model.engine->generate({request});
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!results)
      return reportError(results.status().message());
    const GenerationResult &result = results->front();
    std::string tail = decoder->finish();
    generatedText += tail;
    std::string reasoning, answer;
    replyStream.push(tail, reasoning, answer);
    replyStream.finish(reasoning, answer);
    show(reasoning, answer);
    endDim();
    outs() << "\n";
    if (!result.status) {
      reportError(result.status.message());
      continue;
    }
    chat::ParsedReply reply = chat::parseReply(generatedText, tools);
    for (const chat::ToolCall &call : reply.toolCalls)
      outs() << "[tool call] " << call.name << " " << chat::pythonJsonDumps(call.arguments)
             << "\n";
    outs().flush();
    errs() << "m2c: prompt " << promptTokens << " tokens, " << result.generatedIds.size()
           << " tokens in " << format("%.3f", seconds)
           << " s (" << format("%.1f", seconds > 0 ? result.generatedIds.size() / seconds : 0.0)
           << " tokens/s)\n";
    history.push_back(message);
    history.push_back(chat::replyToMessage(reply));
  }
  if (inputTty)
    outs() << "\n";
  return 0;
}

} // namespace m2c::tools
