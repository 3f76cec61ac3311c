//===- ServeTest.cpp - Batch files and the runtime tools' flags ------------===//

#include "runtime/serve/BatchFile.h"
#include "runtime/support/Flags.h"

#include <gtest/gtest.h>

using namespace m2c;

namespace {

GenerationRequest defaults() {
  GenerationRequest r;
  r.maxNewTokens = 7;
  r.sampling.temperature = 0.5f;
  r.sampling.seed = 9;
  return r;
}

TEST(BatchFileTest, KeysOverrideTheDefaultsAndBlankLinesAreSkipped) {
  StatusOr<std::vector<BatchEntry>> entries = parseBatchFile(
      "{\"id\": {\"k\": [1]}, \"prompt_ids\": [1, 2], \"top_k\": 3}\n\n   \n"
      "{\"prompt_ids\": [5], \"max_new_tokens\": 2, \"temperature\": 0, \"stop_ids\": [4]}\n",
      "b.jsonl", defaults(), nullptr);
  ASSERT_TRUE(entries) << entries.status().message();
  ASSERT_EQ(entries->size(), 2u);
  const BatchEntry &a = (*entries)[0], &b = (*entries)[1];
  EXPECT_EQ(a.idJson, "{\"k\":[1]}");
  EXPECT_EQ(a.request.promptIds, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(a.request.maxNewTokens, 7);
  EXPECT_EQ(a.request.sampling.topK, 3);
  EXPECT_EQ(a.request.sampling.temperature, 0.5f);
  EXPECT_EQ(a.request.sampling.seed, 9u);
  EXPECT_EQ(b.idJson, "null");
  EXPECT_EQ(b.request.maxNewTokens, 2);
  EXPECT_EQ(b.request.sampling.temperature, 0.0f);
  EXPECT_EQ(b.request.stopIds, (std::vector<int32_t>{4}));
}

TEST(BatchFileTest, ErrorsNameTheFileAndLine) {
  auto error = [](const std::string &text) {
    StatusOr<std::vector<BatchEntry>> entries = parseBatchFile(text, "b.jsonl", defaults(), nullptr);
    return entries ? std::string("ok") : entries.status().message();
  };
  EXPECT_EQ(error("{\"prompt_ids\": [1]}\n[1, 2]\n"), "b.jsonl:2: expected a JSON object");
  EXPECT_EQ(error("{\"prompt_ids\": [1]\n"), "b.jsonl:1: not valid JSON");
  EXPECT_EQ(error("{\"max_new_tokens\": 3}\n"),
            "b.jsonl:1: a request needs \"prompt_ids\" or \"prompt\"");
  EXPECT_EQ(error("{\"prompt_ids\": []}\n"), "b.jsonl:1: the prompt is empty");
  EXPECT_EQ(error("{\"prompt_ids\": [1.5]}\n"),
            "b.jsonl:1: \"prompt_ids\" holds 1.5, not a token id");
  EXPECT_EQ(error("{\"prompt_ids\": [1], \"temperature\": -1}\n"),
            "b.jsonl:1: temperature must be a finite number >= 0, got -1");
  EXPECT_EQ(error("{\"prompt_ids\": [1], \"temperature\": \"hot\"}\n"),
            "b.jsonl:1: \"temperature\" must be a number, got \"hot\"");
  EXPECT_EQ(error("{\"prompt_ids\": [1], \"top_p\": 2}\n"),
            "b.jsonl:1: top_p must be in (0, 1], got 2");
  EXPECT_EQ(error("{\"prompt_ids\": [1], \"top_p\": 0}\n"),
            "b.jsonl:1: top_p must be in (0, 1], got 0");
  EXPECT_EQ(error("{\"prompt_ids\": [1], \"max_new_tokens\": -1}\n"),
            "b.jsonl:1: \"max_new_tokens\" must be an integer in [0, 2147483647], got -1");
  EXPECT_EQ(error("{\"prompt\": \"hi\"}\n"),
            "b.jsonl:1: \"prompt\" needs a tokenizer (pass --tokenizer or use prompt_ids)");
  EXPECT_EQ(error("\n\n"), "b.jsonl: no requests");
}

TEST(BatchFileTest, RepliesSayWhyARequestEnded) {
  StatusOr<std::vector<BatchEntry>> entries = parseBatchFile(
      "{\"id\": \"x\", \"prompt_ids\": [1], \"stop_ids\": [9]}\n", "b", defaults(), nullptr);
  ASSERT_TRUE(entries);
  GenerationResult result;
  result.generatedIds = {3, 9};
  EXPECT_EQ(batchReply((*entries)[0], 0, result, nullptr),
            "{\"id\":\"x\",\"index\":0,\"prompt_tokens\":1,\"generated_ids\":[3,9],"
            "\"finish_reason\":\"stop\"}");
  result.generatedIds = {3, 4};
  EXPECT_NE(batchReply((*entries)[0], 0, result, nullptr).find("\"finish_reason\":\"length\""),
            std::string::npos);
  result.status = Status::error("request 0: kv cache exhausted");
  EXPECT_NE(batchReply((*entries)[0], 0, result, nullptr)
                .find("\"finish_reason\":\"error\",\"error\":\"request 0: kv cache exhausted\""),
            std::string::npos);
}

TEST(FlagSetTest, TypedFlagsPositionalsAndErrors) {
  int64_t n = 0;
  double x = 0;
  bool on = false;
  std::string s;
  std::vector<std::string> seen;
  FlagSet flags("help\n", "v1");
  flags.addInt("count", 1, 10, [&](int64_t v) { n = v; });
  flags.addReal("ratio", 0, 1, [&](double v) { x = v; });
  flags.addSwitch("on", &on);
  flags.addString("name", &s);
  flags.addCustom("item", [&](const std::string &v) {
    seen.push_back(v);
    return Status::ok();
  });
  auto parse = [&](std::vector<const char *> args, std::vector<std::string> *positionals = nullptr) {
    args.insert(args.begin(), "tool");
    std::vector<std::string> rest;
    bool exitNow = false;
    Status status = flags.parse(static_cast<int>(args.size()), const_cast<char **>(args.data()),
                                positionals ? *positionals : rest, exitNow);
    return status ? std::string("ok") : status.message();
  };
  std::vector<std::string> positionals;
  EXPECT_EQ(parse({"a.m2a", "--count", "3", "--ratio=0.25", "--on", "--name", "z", "--item", "p",
                   "--item=q"},
                  &positionals),
            "ok");
  EXPECT_EQ(n, 3);
  EXPECT_EQ(x, 0.25);
  EXPECT_TRUE(on);
  EXPECT_EQ(s, "z");
  EXPECT_EQ(seen, (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(positionals, (std::vector<std::string>{"a.m2a"}));
  EXPECT_EQ(parse({"--count", "11"}), "--count: expected an integer in [1, 10], got '11'");
  EXPECT_EQ(parse({"--count", "3x"}), "--count: expected an integer in [1, 10], got '3x'");
  EXPECT_EQ(parse({"--ratio", "nan"}), "--ratio: expected a number in [0, 1], got 'nan'");
  EXPECT_EQ(parse({"--on=1"}), "--on: takes no value");
  EXPECT_EQ(parse({"--count"}), "--count: needs a value");
  EXPECT_EQ(parse({"--nope"}), "--nope: unknown flag (see --help)");
}

TEST(FlagSetTest, IntegerLists) {
  StatusOr<std::vector<int64_t>> ok = parseIntList("--ids", "1,22,333", 0, 1000, "an id");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, (std::vector<int64_t>{1, 22, 333}));
  for (const char *bad : {"", "1,", ",1", "1,,2", "1,x", "-1", "1001", "99999999999999999999"}) {
    StatusOr<std::vector<int64_t>> parsed = parseIntList("--ids", bad, 0, 1000, "an id");
    EXPECT_FALSE(parsed) << bad;
  }
  EXPECT_EQ(parseIntList("--ids", "1,x", 0, 10, "an id").status().message(),
            "--ids: 'x' is not an id");

  // The same as a flag.
  std::vector<int64_t> batches = {7};
  FlagSet flags("help\n", "v1");
  flags.addIntList("batches", 1, 64, "a batch size", &batches);
  auto parse = [&](std::vector<const char *> args) {
    args.insert(args.begin(), "tool");
    std::vector<std::string> rest;
    bool exitNow = false;
    Status status = flags.parse(static_cast<int>(args.size()), const_cast<char **>(args.data()),
                                rest, exitNow);
    return status ? std::string("ok") : status.message();
  };
  EXPECT_EQ(parse({"--batches", "1,8,32"}), "ok");
  EXPECT_EQ(batches, (std::vector<int64_t>{1, 8, 32}));
  EXPECT_EQ(parse({"--batches=65"}), "--batches: '65' is not a batch size");
  EXPECT_EQ(batches, (std::vector<int64_t>{1, 8, 32})) << "a bad list changes nothing";
}

} // namespace
