//===- TokenizeCommand.cpp - m2c tokenize: text <-> ids with a tokenizer.json ===//

#include "Commands.h"

#include "runtime/support/TokenIds.h"
#include "runtime/tokenizer/Tokenizer.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <iostream>
#include <iterator>

using namespace llvm;

namespace m2c::tools {

cl::SubCommand tokenizeCommand("tokenize", "Encode text to token ids, or decode ids to text");

namespace {

cl::OptionCategory tokenizeCategory("m2c tokenize options");

cl::opt<std::string> tokenizerPath("tokenizer", cl::desc("A Hugging Face tokenizer.json"),
                                   cl::value_desc("FILE"), cl::init(""),
                                   cl::sub(tokenizeCommand), cl::cat(tokenizeCategory));
cl::opt<bool> decodeMode("decode", cl::desc("Decode comma-separated ids to text"),
                         cl::init(false), cl::sub(tokenizeCommand), cl::cat(tokenizeCategory));
cl::opt<bool> addSpecialTokens(
    "add-special-tokens",
    cl::desc("Apply the tokenizer's post-processor template (e.g. a leading BOS)"),
    cl::init(false), cl::sub(tokenizeCommand), cl::cat(tokenizeCategory));
cl::opt<bool> skipSpecialTokens("skip-special-tokens",
                                cl::desc("With --decode: leave special tokens out"),
                                cl::init(false), cl::sub(tokenizeCommand),
                                cl::cat(tokenizeCategory));
cl::opt<std::string> textArg(cl::Positional, cl::desc("[TEXT or IDS] (default: stdin)"),
                             cl::init(""), cl::sub(tokenizeCommand), cl::cat(tokenizeCategory));


} // namespace

std::string findTokenizer(const std::string &model, const std::string &checkpointDir) {
  auto candidate = [](const std::string &dir) -> std::string {
    if (dir.empty())
      return "";
    SmallString<256> path(dir);
    sys::path::append(path, "tokenizer.json");
    return sys::fs::exists(path) ? std::string(path) : "";
  };
  if (sys::fs::is_directory(model))
    if (std::string found = candidate(model); !found.empty())
      return found;
  if (sys::fs::is_regular_file(model) && sys::path::filename(model) == "config.json")
    if (std::string found = candidate(std::string(sys::path::parent_path(model)));
        !found.empty())
      return found;
  return candidate(checkpointDir);
}

int runTokenize() {
  // Checked here rather than with cl::Required, whose message bypasses the
  // "m2c: error:" format.
  if (tokenizerPath.empty())
    return reportError("--tokenizer: give the tokenizer.json to use");
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromFile(tokenizerPath);
  if (!tok)
    return reportError(tok.status().message());
  std::string input = textArg;
  bool fromStdin = textArg.getNumOccurrences() == 0;
  if (fromStdin)
    input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (decodeMode) {
    StatusOr<std::vector<int32_t>> ids = parseTokenIds(input);
    if (!ids)
      return reportError(ids.status().message());
    for (int32_t id : *ids)
      if (!(*tok)->hasId(id))
        return reportError(tokenizerPath + ": no token has id " + std::to_string(id) +
                           " (vocabulary size " + std::to_string((*tok)->vocabSize()) + ")");
    outs() << (*tok)->decode(*ids, skipSpecialTokens);
    if (!fromStdin)
      outs() << "\n";
    return 0;
  }
  EncodeOptions options;
  options.addSpecialTokens = addSpecialTokens;
  StatusOr<std::vector<int32_t>> ids = (*tok)->encode(input, options);
  if (!ids)
    return reportError((fromStdin ? std::string("<stdin>") : std::string("TEXT")) + ": " +
                       ids.status().message());
  for (size_t i = 0; i < ids->size(); ++i)
    outs() << (i ? "," : "") << (*ids)[i];
  outs() << "\n";
  return 0;
}

} // namespace m2c::tools
