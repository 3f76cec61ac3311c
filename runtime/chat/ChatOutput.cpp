//===- ChatOutput.cpp - Reading MiniMax-M2's replies: reasoning, answer, tools -===//

#include "runtime/chat/ChatOutput.h"

#include <cstdlib>

namespace m2c::chat {

namespace {

std::string stripNewlines(std::string_view s) {
  size_t b = s.find_first_not_of('\n');
  if (b == std::string_view::npos)
    return "";
  size_t e = s.find_last_not_of('\n');
  return std::string(s.substr(b, e - b + 1));
}

// The JSON-schema type of parameter `param` of tool `name`, or "".
std::string schemaType(const std::vector<Json> &tools, const std::string &name,
                       const std::string &param) {
  for (const Json &tool : tools) {
    const Json *fn = tool.is_object() && tool.contains("function") ? &tool["function"] : &tool;
    if (!fn->is_object() || fn->value("name", Json()) != name)
      continue;
    if (!fn->contains("parameters") || !(*fn)["parameters"].is_object())
      return "";
    const Json &params = (*fn)["parameters"];
    if (!params.contains("properties") || !params["properties"].is_object() ||
        !params["properties"].contains(param))
      return "";
    const Json &prop = params["properties"][param];
    if (!prop.is_object() || !prop.contains("type"))
      return "";
    const Json &type = prop["type"];
    if (type.is_string())
      return type.get<std::string>();
    // ["integer", "null"]-style unions: the first non-null type.
    if (type.is_array())
      for (const Json &t : type)
        if (t.is_string() && t != "null")
          return t.get<std::string>();
    return "";
  }
  return "";
}

// A parameter value as the schema says it is; the raw string when it does
// not parse as that type (the model's text is never dropped).
Json convertValue(const std::string &raw, const std::string &type) {
  if (type.empty() || type == "string")
    return raw;
  if (type == "boolean") {
    if (raw == "true" || raw == "True")
      return true;
    if (raw == "false" || raw == "False")
      return false;
    return raw;
  }
  if (type == "null" && raw == "null")
    return nullptr;
  Json parsed = Json::parse(raw, nullptr, false);
  if (parsed.is_discarded())
    return raw;
  if ((type == "integer" && parsed.is_number_integer()) ||
      (type == "number" && parsed.is_number()) || (type == "object" && parsed.is_object()) ||
      (type == "array" && parsed.is_array()))
    return parsed;
  return raw;
}

// Parses the inside of one <minimax:tool_call> block.
void parseInvokes(std::string_view block, const std::vector<Json> &tools, ParsedReply &reply) {
  const std::string_view invokeOpen = "<invoke name=\"", invokeClose = "</invoke>";
  const std::string_view paramOpen = "<parameter name=\"", paramClose = "</parameter>";
  size_t pos = 0;
  while (true) {
    size_t at = block.find(invokeOpen, pos);
    if (at == std::string_view::npos)
      return;
    size_t nameEnd = block.find("\">", at + invokeOpen.size());
    if (nameEnd == std::string_view::npos) {
      reply.truncatedToolCall = true;
      return;
    }
    ToolCall call;
    call.name = std::string(block.substr(at + invokeOpen.size(), nameEnd - at - invokeOpen.size()));
    size_t bodyStart = nameEnd + 2;
    size_t end = block.find(invokeClose, bodyStart);
    if (end == std::string_view::npos)
      reply.truncatedToolCall = true;
    std::string_view body =
        block.substr(bodyStart, end == std::string_view::npos ? std::string_view::npos
                                                              : end - bodyStart);
    size_t p = 0;
    while (true) {
      size_t pa = body.find(paramOpen, p);
      if (pa == std::string_view::npos)
        break;
      size_t keyEnd = body.find("\">", pa + paramOpen.size());
      if (keyEnd == std::string_view::npos) {
        reply.truncatedToolCall = true;
        break;
      }
      std::string key(body.substr(pa + paramOpen.size(), keyEnd - pa - paramOpen.size()));
      size_t valueStart = keyEnd + 2;
      size_t valueEnd = body.find(paramClose, valueStart);
      if (valueEnd == std::string_view::npos) {
        reply.truncatedToolCall = true;
        break;
      }
      std::string value(body.substr(valueStart, valueEnd - valueStart));
      // The model may put the value on its own line.
      if (!value.empty() && value.front() == '\n')
        value.erase(0, 1);
      if (!value.empty() && value.back() == '\n')
        value.pop_back();
      call.arguments[key] = convertValue(value, schemaType(tools, call.name, key));
      p = valueEnd + paramClose.size();
    }
    reply.toolCalls.push_back(std::move(call));
    if (end == std::string_view::npos)
      return;
    pos = end + invokeClose.size();
  }
}

} // namespace

ParsedReply parseReply(std::string_view text, const std::vector<Json> &tools) {
  ParsedReply reply;
  std::string_view s = text;
  if (s.substr(0, 7) == kThinkBegin)
    s.remove_prefix(7);
  // The reply ends at the end-of-message marker.
  size_t eos = s.find(kEndOfMessage);
  if (eos != std::string_view::npos)
    s = s.substr(0, eos);
  size_t close = s.find(kThinkEnd);
  if (close == std::string_view::npos) {
    reply.reasoning = stripNewlines(s);
    reply.reasoningOpen = true;
    return reply;
  }
  reply.reasoning = stripNewlines(s.substr(0, close));
  std::string_view rest = s.substr(close + std::string_view(kThinkEnd).size());
  std::string content;
  const std::string_view open = kToolCallBegin, shut = kToolCallEnd;
  size_t pos = 0;
  while (true) {
    size_t at = rest.find(open, pos);
    if (at == std::string_view::npos) {
      content.append(rest.substr(pos));
      break;
    }
    content.append(rest.substr(pos, at - pos));
    size_t blockStart = at + open.size();
    size_t end = rest.find(shut, blockStart);
    if (end == std::string_view::npos) {
      reply.truncatedToolCall = true;
      parseInvokes(rest.substr(blockStart), tools, reply);
      break;
    }
    parseInvokes(rest.substr(blockStart, end - blockStart), tools, reply);
    pos = end + shut.size();
  }
  reply.content = stripNewlines(content);
  return reply;
}

Message replyToMessage(const ParsedReply &reply) {
  Message m;
  m.role = "assistant";
  m.content = reply.content;
  m.reasoningContent = reply.reasoning;
  m.toolCalls = reply.toolCalls;
  return m;
}

void ReplyStream::push(std::string_view text, std::string &reasoning, std::string &answer) {
  pending_.append(text);
  if (!started_) {
    // Replies generated without the prefill open with "<think>" themselves.
    std::string_view open = kThinkBegin;
    if (pending_.size() < open.size() && open.substr(0, pending_.size()) == pending_)
      return;
    if (pending_.compare(0, open.size(), open) == 0)
      pending_.erase(0, open.size());
    started_ = true;
  }
  if (!inAnswer_) {
    std::string_view close = kThinkEnd;
    size_t at = pending_.find(close);
    if (at == std::string::npos) {
      // Keep back the longest tail that could begin "</think>".
      size_t keep = 0;
      for (size_t k = std::min(pending_.size(), close.size() - 1); k > 0; --k)
        if (pending_.compare(pending_.size() - k, k, close.substr(0, k)) == 0) {
          keep = k;
          break;
        }
      reasoning.append(pending_, 0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      return;
    }
    reasoning.append(pending_, 0, at);
    pending_.erase(0, at + close.size());
    inAnswer_ = true;
  }
  // The answer starts after the "\n\n" that follows </think>.
  if (!answerStarted_) {
    size_t b = pending_.find_first_not_of('\n');
    if (b == std::string::npos) {
      pending_.clear();
      return;
    }
    pending_.erase(0, b);
    answerStarted_ = true;
  }
  answer.append(pending_);
  pending_.clear();
}

void ReplyStream::finish(std::string &reasoning, std::string &answer) {
  if (inAnswer_)
    answer.append(pending_);
  else
    reasoning.append(pending_);
  pending_.clear();
}

} // namespace m2c::chat
