// Reading MiniMax-M2 replies: reasoning vs answer, <minimax:tool_call>
// invocations with schema-typed arguments, truncation, and the streaming
// splitter (runtime/chat/ChatOutput.h).
#include "runtime/chat/ChatOutput.h"

#include <gtest/gtest.h>

using namespace m2c::chat;

namespace {

const std::vector<Json> kTools = {Json::parse(R"({"type": "function", "function": {
  "name": "get_weather",
  "parameters": {"type": "object", "properties": {
    "location": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"},
    "ratio": {"type": "number"}, "tags": {"type": "array"}, "opts": {"type": "object"},
    "maybe": {"type": ["integer", "null"]}}}}})")};

} // namespace

TEST(ChatOutputTest, ReasoningAndAnswer) {
  ParsedReply r = parseReply("Let me think.\nMore.\n</think>\n\nThe answer is 4.[e~[");
  EXPECT_EQ(r.reasoning, "Let me think.\nMore.");
  EXPECT_EQ(r.content, "The answer is 4.");
  EXPECT_FALSE(r.reasoningOpen);
  EXPECT_TRUE(r.toolCalls.empty());
  // Generated without the prefill: the reply opens with <think> itself.
  r = parseReply("<think>\nhmm\n</think>\n\nok");
  EXPECT_EQ(r.reasoning, "hmm");
  EXPECT_EQ(r.content, "ok");
  // Cut off while thinking.
  r = parseReply("still thinking about");
  EXPECT_TRUE(r.reasoningOpen);
  EXPECT_EQ(r.reasoning, "still thinking about");
  EXPECT_EQ(r.content, "");
}

TEST(ChatOutputTest, ToolCallsWithSchemaTypes) {
  std::string text =
      "I need the weather.\n</think>\n\nChecking.\n<minimax:tool_call>\n"
      "<invoke name=\"get_weather\">\n"
      "<parameter name=\"location\">Paris, FR</parameter>\n"
      "<parameter name=\"days\">3</parameter>\n"
      "<parameter name=\"metric\">true</parameter>\n"
      "<parameter name=\"ratio\">0.5</parameter>\n"
      "<parameter name=\"tags\">[\"a\", \"b\"]</parameter>\n"
      "<parameter name=\"opts\">{\"x\": 1}</parameter>\n"
      "<parameter name=\"maybe\">7</parameter>\n"
      "<parameter name=\"unknown\">42</parameter>\n"
      "</invoke>\n"
      "<invoke name=\"other\">\n<parameter name=\"q\">\nmulti\nline\n</parameter>\n</invoke>\n"
      "</minimax:tool_call>";
  ParsedReply r = parseReply(text, kTools);
  EXPECT_EQ(r.reasoning, "I need the weather.");
  EXPECT_EQ(r.content, "Checking.");
  ASSERT_EQ(r.toolCalls.size(), 2u);
  EXPECT_EQ(r.toolCalls[0].name, "get_weather");
  EXPECT_EQ(r.toolCalls[0].arguments,
            Json::parse(R"({"location": "Paris, FR", "days": 3, "metric": true, "ratio": 0.5,
                            "tags": ["a", "b"], "opts": {"x": 1}, "maybe": 7, "unknown": "42"})"));
  EXPECT_EQ(r.toolCalls[1].name, "other");
  EXPECT_EQ(r.toolCalls[1].arguments, Json::parse(R"({"q": "multi\nline"})"));
  EXPECT_FALSE(r.truncatedToolCall);
  // Values that do not fit the schema stay strings.
  r = parseReply("</think><minimax:tool_call><invoke name=\"get_weather\"><parameter "
                 "name=\"days\">three</parameter></invoke></minimax:tool_call>",
                 kTools);
  ASSERT_EQ(r.toolCalls.size(), 1u);
  EXPECT_EQ(r.toolCalls[0].arguments, Json::parse(R"({"days": "three"})"));
}

TEST(ChatOutputTest, RoundTripsThroughTheTemplate) {
  // What the template renders for a tool-calling turn parses back to it.
  Message m;
  m.role = "assistant";
  m.content = "Checking.";
  m.reasoningContent = "Why not.";
  m.toolCalls = {{"get_weather", Json::parse(R"({"location": "Oslo", "days": 2})")}};
  RenderOptions o;
  o.addGenerationPrompt = false;
  std::string rendered = *renderChat({{"user", "q"}, m}, kTools, o);
  std::string reply = rendered.substr(rendered.rfind("]~b]ai\n<think>\n") + 15);
  ParsedReply r = parseReply(reply, kTools);
  EXPECT_EQ(r.reasoning, "Why not.");
  EXPECT_EQ(r.content, "Checking.");
  ASSERT_EQ(r.toolCalls.size(), 1u);
  EXPECT_EQ(r.toolCalls[0].arguments, m.toolCalls[0].arguments);
  Message back = replyToMessage(r);
  EXPECT_EQ(*renderChat({{"user", "q"}, back}, kTools, o), rendered);
}

TEST(ChatOutputTest, TruncatedToolCall) {
  ParsedReply r = parseReply("</think>\n\n<minimax:tool_call>\n<invoke name=\"f\">\n<parameter "
                             "name=\"a\">1</parameter>\n<parameter name=\"b\">2");
  EXPECT_TRUE(r.truncatedToolCall);
  ASSERT_EQ(r.toolCalls.size(), 1u);
  EXPECT_EQ(r.toolCalls[0].arguments, Json::parse(R"({"a": "1"})"));
}

TEST(ChatOutputTest, StreamingSplitHoldsBackPartialMarkers) {
  std::string text = "<think>\nreason</think>\n\nanswer text";
  // Every way of cutting the text into two chunks gives the same split.
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    ReplyStream stream;
    std::string reasoning, answer;
    stream.push(text.substr(0, cut), reasoning, answer);
    stream.push(text.substr(cut), reasoning, answer);
    stream.finish(reasoning, answer);
    EXPECT_EQ(reasoning, "\nreason") << cut;
    EXPECT_EQ(answer, "answer text") << cut;
  }
  // One character at a time; nothing of "</think>" leaks into the reasoning.
  ReplyStream stream;
  std::string reasoning, answer;
  for (char c : std::string("abc</thi"))
    stream.push(std::string(1, c), reasoning, answer);
  EXPECT_EQ(reasoning, "abc");
  stream.push("nk>\n\nx", reasoning, answer);
  EXPECT_TRUE(stream.inAnswer());
  EXPECT_EQ(answer, "x");
  // A false alarm is released.
  ReplyStream other;
  std::string r2, a2;
  other.push("a</th", r2, a2);
  other.push("ing", r2, a2);
  EXPECT_EQ(r2, "a</thing");
}
