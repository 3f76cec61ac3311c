//===- ChatTemplate.h - MiniMax-M2's chat format, rendered in C++ -*- C++ -*-===//
//
// Renders a conversation exactly as MiniMax-M2's published
// chat_template.jinja does under transformers' apply_chat_template (Jinja
// with trim_blocks/lstrip_blocks, tojson = Python json.dumps): the system
// block with the default identity, the tool definitions, ]~b]user / ]~b]ai /
// ]~b]tool turns, <think> blocks kept only after the last user turn, XML tool
// calls, and the "]~b]ai\n<think>\n" generation prompt. docs/chat.md quotes
// the template's origin; test/data/tokenizers/minimax-m2/chat_cases.json
// holds Jinja's own output for the tests.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHAT_CHATTEMPLATE_H
#define M2C_RUNTIME_CHAT_CHATTEMPLATE_H

#include "runtime/support/Status.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace m2c::chat {

/// JSON that keeps object keys in insertion order, as Python dicts do.
using Json = nlohmann::ordered_json;

/// The special strings of the format.
inline constexpr const char *kBeginOfDocument = "]~!b[";
inline constexpr const char *kRoleMarker = "]~b]";
inline constexpr const char *kEndOfMessage = "[e~[";
inline constexpr const char *kThinkBegin = "<think>";
inline constexpr const char *kThinkEnd = "</think>";
inline constexpr const char *kToolCallBegin = "<minimax:tool_call>";
inline constexpr const char *kToolCallEnd = "</minimax:tool_call>";

struct ToolCall {
  std::string name;
  /// An object; string values render raw, others as JSON.
  Json arguments = Json::object();
};

struct Message {
  /// "system", "user", "assistant" (or its alias "ai") or "tool".
  std::string role;
  std::string content;
  /// Assistant reasoning; when absent it is taken from a "...</think>" in
  /// content, as the template does.
  std::optional<std::string> reasoningContent;
  std::vector<ToolCall> toolCalls;
  /// System message only: appended as "Current date: ..." lines.
  std::string currentDate, currentLocation;
};

struct RenderOptions {
  /// Ends the prompt with "]~b]ai\n<think>\n" so the model answers.
  bool addGenerationPrompt = true;
  /// The system text when there is no system message (the template's
  /// model_identity).
  std::string modelIdentity = "You are a helpful assistant.";
};

/// Renders the prompt. `tools` are OpenAI-style entries, each with a
/// "function" object ({"name", "description", "parameters"}). Fails for a
/// tool message with no preceding assistant tool call (the template raises),
/// an unknown role, or a tool without "function".
StatusOr<std::string> renderChat(const std::vector<Message> &messages,
                                 const std::vector<Json> &tools = {},
                                 const RenderOptions &options = {});

/// Reads OpenAI-style messages ([{"role", "content", "reasoning_content",
/// "tool_calls": [{"function": {"name", "arguments"}}]}]); content may be a
/// string or a list of {"type": "text", "text"} parts; arguments may be an
/// object or a JSON string holding one.
StatusOr<std::vector<Message>> messagesFromJson(const Json &messages);

/// Python's json.dumps(value, ensure_ascii=False): ", " and ": "
/// separators, keys in order, floats as repr() writes them.
std::string pythonJsonDumps(const Json &value);

} // namespace m2c::chat

#endif // M2C_RUNTIME_CHAT_CHATTEMPLATE_H
