// The MiniMax-M2 chat template in C++ against the published Jinja template.
//
// test/data/tokenizers/minimax-m2/chat_cases.json holds, per case, the
// messages and tools and what Jinja renders with the published
// chat_template.jinja under transformers' settings
// (scripts/tokenizer/render_chat_reference.py). The renderer must match it
// byte for byte.
#include "runtime/chat/ChatTemplate.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace m2c;
using namespace m2c::chat;

namespace {

Json loadCases() {
  const char *dir = std::getenv("M2C_TEST_DATA");
  std::string path = std::string(dir ? dir : M2C_SOURCE_TEST_DATA) +
                     "/tokenizers/minimax-m2/chat_cases.json";
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return Json::parse(s.str(), nullptr, false);
}

std::string render(const Json &c) {
  StatusOr<std::vector<Message>> messages = messagesFromJson(c["messages"]);
  EXPECT_TRUE(messages.isOk()) << messages.status().message();
  std::vector<Json> tools;
  if (c.contains("tools") && c["tools"].is_array())
    tools.assign(c["tools"].begin(), c["tools"].end());
  RenderOptions options;
  options.addGenerationPrompt = c["add_generation_prompt"].get<bool>();
  StatusOr<std::string> out = renderChat(*messages, tools, options);
  EXPECT_TRUE(out.isOk()) << out.status().message();
  return out ? *out : "";
}

class PublishedTemplate : public ::testing::TestWithParam<std::string> {};

TEST_P(PublishedTemplate, MatchesJinjaByteForByte) {
  Json cases = loadCases();
  ASSERT_FALSE(cases.is_discarded()) << "cannot read chat_cases.json";
  for (const Json &c : cases["cases"]) {
    if (c["name"] != GetParam())
      continue;
    EXPECT_EQ(render(c), c["expected"].get<std::string>());
    return;
  }
  FAIL() << "no case named " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    ChatTemplateTest, PublishedTemplate,
    ::testing::Values("system_and_user", "user_only_default_identity",
                      "empty_system_content_and_date", "no_generation_prompt",
                      "multi_turn_think_blocks", "multi_turn_then_prompt",
                      "think_close_without_open", "tools_and_tool_results",
                      "tool_call_without_content", "content_parts"),
    [](const auto &info) { return info.param; });

} // namespace

TEST(ChatTemplateTest, SystemAndUserByHand) {
  // The format in docs/minimax-m2.md, spelled out.
  std::vector<Message> messages = {{"system", "Be brief."}, {"user", "Hi"}};
  StatusOr<std::string> out = renderChat(messages);
  ASSERT_TRUE(out.isOk());
  EXPECT_EQ(*out, "]~!b[]~b]system\nBe brief.[e~[\n]~b]user\nHi[e~[\n]~b]ai\n<think>\n");
}

TEST(ChatTemplateTest, AiIsAnAliasForAssistant) {
  Message ai{"ai", "Hello"};
  Message assistant{"assistant", "Hello"};
  RenderOptions o;
  o.addGenerationPrompt = false;
  EXPECT_EQ(*renderChat({{"user", "x"}, ai}, {}, o), *renderChat({{"user", "x"}, assistant}, {}, o));
}

TEST(ChatTemplateTest, Errors) {
  StatusOr<std::string> out = renderChat({{"user", "x"}, {"tool", "result"}});
  ASSERT_FALSE(out.isOk());
  EXPECT_EQ(out.status().message(),
            "messages[1]: a tool message needs a preceding assistant message with a tool call");
  out = renderChat({{"narrator", "x"}});
  ASSERT_FALSE(out.isOk());
  EXPECT_EQ(out.status().message(),
            "messages[0]: unknown role 'narrator' (expected system, user, assistant or tool)");
  out = renderChat({{"user", "x"}}, {Json{{"name", "f"}}});
  ASSERT_FALSE(out.isOk());
  EXPECT_EQ(out.status().message(), "tools[0]: expected an object with a \"function\" member");

  StatusOr<std::vector<Message>> m = messagesFromJson(Json::parse(R"([{"content": "x"}])"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(), "messages[0]: expected an object with a string \"role\"");
  m = messagesFromJson(Json::parse(
      R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}])"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(),
            "messages[0].tool_calls[0]: arguments must be an object or a JSON object string");
  m = messagesFromJson(Json::parse(R"([{"role": "user", "content": 5}])"));
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(),
            "messages[0]: content must be a string, a list of parts or null");
}

TEST(ChatTemplateTest, ArgumentsAsJsonStringAndNullContent) {
  // OpenAI clients send arguments as a JSON string and content as null.
  StatusOr<std::vector<Message>> m = messagesFromJson(Json::parse(R"([
    {"role": "user", "content": "go"},
    {"role": "assistant", "content": null,
     "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"a\": 1, \"b\": \"x\"}"}}]},
    {"role": "tool", "content": "ok"}])"));
  ASSERT_TRUE(m.isOk()) << m.status().message();
  StatusOr<std::string> out = renderChat(*m);
  ASSERT_TRUE(out.isOk());
  EXPECT_NE(out->find("]~b]ai\n\n<minimax:tool_call>\n<invoke name=\"f\">\n<parameter "
                      "name=\"a\">1</parameter>\n<parameter name=\"b\">x</parameter>\n</invoke>\n"
                      "</minimax:tool_call>[e~[\n]~b]tool\n<response>ok</response>[e~[\n"),
            std::string::npos)
      << *out;
}

TEST(ChatTemplateTest, PythonJsonDumps) {
  EXPECT_EQ(pythonJsonDumps(Json::parse(R"({"b": [1, 2.5, true, null], "a": {}})")),
            R"({"b": [1, 2.5, true, null], "a": {}})");
  EXPECT_EQ(pythonJsonDumps(Json("tab\tquote\"nl\nü\x01")), "\"tab\\tquote\\\"nl\\nü\\u0001\"");
  EXPECT_EQ(pythonJsonDumps(Json(1.0)), "1.0");
  EXPECT_EQ(pythonJsonDumps(Json(0.1)), "0.1");
  EXPECT_EQ(pythonJsonDumps(Json(1e16)), "1e+16");
  EXPECT_EQ(pythonJsonDumps(Json(1e15)), "1000000000000000.0");
  EXPECT_EQ(pythonJsonDumps(Json(0.0001)), "0.0001");
  EXPECT_EQ(pythonJsonDumps(Json(1e-05)), "1e-05");
  EXPECT_EQ(pythonJsonDumps(Json(-2.5e-07)), "-2.5e-07");
  EXPECT_EQ(pythonJsonDumps(Json(123456.789)), "123456.789");
  EXPECT_EQ(pythonJsonDumps(Json(-7)), "-7");
  EXPECT_EQ(pythonJsonDumps(Json::array()), "[]");
}
