//===- BatchFile.cpp - Many requests in, one JSON reply per request out ---===//

#include "runtime/serve/BatchFile.h"

#include "runtime/tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace m2c {

using json = nlohmann::json;

namespace {

StatusOr<std::vector<int32_t>> readIds(const json &value, const char *key) {
  if (!value.is_array())
    return Status::error(std::string("\"") + key + "\" must be an array of token ids");
  std::vector<int32_t> ids;
  for (const json &item : value) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0 || item.get<int64_t>() > INT32_MAX)
      return Status::error(std::string("\"") + key + "\" holds " + item.dump() +
                           ", not a token id");
    ids.push_back(static_cast<int32_t>(item.get<int64_t>()));
  }
  return ids;
}

Status readEntry(const json &line, const Tokenizer *tokenizer, BatchEntry &entry) {
  if (!line.is_object())
    return Status::error("expected a JSON object");
  GenerationRequest &r = entry.request;
  bool hasPrompt = false;
  for (auto it = line.begin(); it != line.end(); ++it) {
    const std::string &key = it.key();
    const json &value = it.value();
    auto integer = [&](int64_t lo, int64_t hi) -> StatusOr<int64_t> {
      if (!value.is_number_integer() || value.get<int64_t>() < lo || value.get<int64_t>() > hi)
        return Status::error("\"" + key + "\" must be an integer in [" + std::to_string(lo) +
                             ", " + std::to_string(hi) + "], got " + value.dump());
      return value.get<int64_t>();
    };
    if (key == "id") {
      entry.idJson = value.dump();
    } else if (key == "prompt_ids") {
      StatusOr<std::vector<int32_t>> ids = readIds(value, "prompt_ids");
      if (!ids)
        return ids.status();
      r.promptIds = ids.take();
      hasPrompt = true;
    } else if (key == "prompt") {
      if (!value.is_string())
        return Status::error("\"prompt\" must be a string");
      if (!tokenizer)
        return Status::error("\"prompt\" needs a tokenizer (pass --tokenizer or use prompt_ids)");
      EncodeOptions options;
      options.addSpecialTokens = true;
      StatusOr<std::vector<int32_t>> ids = tokenizer->encode(value.get<std::string>(), options);
      if (!ids)
        return ids.status();
      r.promptIds = ids.take();
      hasPrompt = true;
    } else if (key == "stop_ids") {
      StatusOr<std::vector<int32_t>> ids = readIds(value, "stop_ids");
      if (!ids)
        return ids.status();
      r.stopIds = ids.take();
    } else if (key == "max_new_tokens") {
      StatusOr<int64_t> n = integer(0, INT32_MAX);
      if (!n)
        return n.status();
      r.maxNewTokens = *n;
    } else if (key == "seed") {
      StatusOr<int64_t> n = integer(0, INT64_MAX);
      if (!n)
        return n.status();
      r.sampling.seed = static_cast<uint64_t>(*n);
    } else if (key == "top_k") {
      StatusOr<int64_t> n = integer(0, INT32_MAX);
      if (!n)
        return n.status();
      r.sampling.topK = static_cast<int32_t>(*n);
    } else if (key == "temperature" || key == "top_p") {
      // Ranges are validateSamplingParams's, below.
      if (!value.is_number())
        return Status::error("\"" + key + "\" must be a number, got " + value.dump());
      (key == "temperature" ? r.sampling.temperature : r.sampling.topP) =
          static_cast<float>(value.get<double>());
    } else {
      return Status::error("unknown key \"" + key + "\"");
    }
  }
  if (!hasPrompt)
    return Status::error("a request needs \"prompt_ids\" or \"prompt\"");
  if (r.promptIds.empty())
    return Status::error("the prompt is empty");
  return validateSamplingParams(r.sampling);
}

} // namespace

StatusOr<std::vector<BatchEntry>> parseBatchFile(const std::string &text, const std::string &origin,
                                                 const GenerationRequest &defaults,
                                                 const Tokenizer *tokenizer) {
  std::vector<BatchEntry> entries;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (std::all_of(line.begin(), line.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }))
      continue;
    auto where = [&] { return origin + ":" + std::to_string(number) + ": "; };
    json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded())
      return Status::error(where() + "not valid JSON");
    BatchEntry entry;
    entry.request = defaults;
    entry.request.promptIds.clear();
    if (Status status = readEntry(parsed, tokenizer, entry); !status)
      return Status::error(where() + status.message());
    entries.push_back(std::move(entry));
  }
  if (entries.empty())
    return Status::error(origin + ": no requests");
  return entries;
}

StatusOr<std::vector<BatchEntry>> readBatchFile(const std::string &path,
                                                const GenerationRequest &defaults,
                                                const Tokenizer *tokenizer) {
  std::ifstream in(path);
  if (!in)
    return Status::error(path + ": cannot open the batch file");
  std::ostringstream text;
  text << in.rdbuf();
  return parseBatchFile(text.str(), path, defaults, tokenizer);
}

std::string batchReply(const BatchEntry &entry, size_t index, const GenerationResult &result,
                       const Tokenizer *tokenizer) {
  const GenerationRequest &r = entry.request;
  nlohmann::ordered_json reply = nlohmann::ordered_json::object();
  reply["id"] = json::parse(entry.idJson);
  reply["index"] = index;
  reply["prompt_tokens"] = r.promptIds.size();
  reply["generated_ids"] = result.generatedIds;
  if (tokenizer)
    reply["text"] = tokenizer->decode(result.generatedIds, /*skipSpecialTokens=*/true);
  std::string reason = "length";
  if (!result.status)
    reason = "error";
  else if (!result.generatedIds.empty() &&
           std::find(r.stopIds.begin(), r.stopIds.end(), result.generatedIds.back()) !=
               r.stopIds.end())
    reason = "stop";
  reply["finish_reason"] = reason;
  if (!result.status)
    reply["error"] = result.status.message();
  // Decoded text may end inside a UTF-8 sequence; replace, never throw.
  return reply.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace m2c
