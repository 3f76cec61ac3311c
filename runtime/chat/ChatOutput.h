//===- ChatOutput.h - Reading MiniMax-M2's replies: reasoning, answer, tools -*- C++ -*-===//
//
// A reply generated after the "<think>\n" prefill is
//   reasoning </think>\n\n answer [<minimax:tool_call> invokes </minimax:tool_call>]
// parseReply() splits it into reasoning, answer and tool calls (argument
// values converted by the tool's JSON-schema types when tools are given);
// ReplyStream does the reasoning/answer split incrementally for streaming,
// holding back text that may be the start of a marker.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHAT_CHATOUTPUT_H
#define M2C_RUNTIME_CHAT_CHATOUTPUT_H

#include "runtime/chat/ChatTemplate.h"

#include <string>
#include <string_view>
#include <vector>

namespace m2c::chat {

struct ParsedReply {
  std::string reasoning;
  /// The answer without tool-call blocks, trimmed of surrounding newlines.
  std::string content;
  std::vector<ToolCall> toolCalls;
  /// </think> never came (the reply is all reasoning so far).
  bool reasoningOpen = false;
  /// A tool-call block or invoke was cut off (e.g. by max tokens).
  bool truncatedToolCall = false;
};

/// Parses generated text (without the prompt). A leading "<think>" is
/// accepted for replies generated without the prefill; text from "[e~[" on
/// is not part of the reply.
ParsedReply parseReply(std::string_view text, const std::vector<Json> &tools = {});

/// The Message to append to the history for a reply (role assistant, content
/// and reasoning as parsed, tool calls kept).
Message replyToMessage(const ParsedReply &reply);

/// Splits streamed reply text into reasoning and answer as it arrives.
class ReplyStream {
public:
  /// Appends what became certain to `reasoning` and `answer`.
  void push(std::string_view text, std::string &reasoning, std::string &answer);
  /// Flushes text held back for a possible marker.
  void finish(std::string &reasoning, std::string &answer);
  bool inAnswer() const { return inAnswer_; }

private:
  std::string pending_;
  bool inAnswer_ = false;
  bool answerStarted_ = false;
  bool started_ = false;
};

} // namespace m2c::chat

#endif // M2C_RUNTIME_CHAT_CHATOUTPUT_H
