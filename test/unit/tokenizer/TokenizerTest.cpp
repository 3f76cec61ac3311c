// Units for the tokenizer on small synthetic tokenizer.json files: BPE
// merge order, byte-level spelling, byte fallback, added/special tokens and
// their flags, split behaviors, streaming decode across split UTF-8, and
// clear errors (never a crash) for malformed or unsupported files.
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace m2c;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

std::string spell(const std::string &raw) {
  std::string out;
  tokenizer::bytelevel::appendSpelled(raw, out);
  return out;
}

// A byte-level BPE tokenizer: ids 0..255 are the bytes, merges (given in raw
// text) add ids from 256 in order.
json byteLevelJson(const std::vector<std::pair<std::string, std::string>> &merges,
                   json added = json::array(), bool pairForm = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[tokenizer::bytelevel::charForByte(static_cast<uint8_t>(b))] = b;
  json mergeList = json::array();
  int next = 256;
  for (const auto &[l, r] : merges) {
    std::string left = spell(l), right = spell(r);
    if (!vocab.contains(left + right))
      vocab[left + right] = next++;
    if (pairForm)
      mergeList.push_back(json::array({left, right}));
    else
      mergeList.push_back(left + " " + right);
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array(
             {{{"type", "Split"},
               {"pattern",
                {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                           "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|"
                           "\\s+"}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", mergeList}, {"ignore_merges", false}}}};
}

json addedToken(int id, const std::string &content, bool special = true) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false}, {"special", special}};
}

std::unique_ptr<Tokenizer> load(const json &j) {
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromJson(j.dump());
  EXPECT_TRUE(tok.isOk()) << tok.status().message();
  return tok ? tok.take() : nullptr;
}

Ids encode(const Tokenizer &tok, const std::string &text, bool special = false) {
  EncodeOptions options;
  options.addSpecialTokens = special;
  StatusOr<Ids> ids = tok.encode(text, options);
  EXPECT_TRUE(ids.isOk()) << ids.status().message();
  return ids ? *ids : Ids{};
}

std::string loadError(const std::string &text) {
  StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromJson(text);
  return tok.isOk() ? "<ok>" : tok.status().message();
}

std::string loadJsonError(const json &j) { return loadError(j.dump()); }

} // namespace

TEST(TokenizerTest, MergesApplyInRankOrder) {
  auto tok = load(byteLevelJson({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {" ", "w"}}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "hello"), (Ids{258, 'o'}));
  EXPECT_EQ(encode(*tok, "hello world"), (Ids{258, 'o', 259, 'o', 'r', 'l', 'd'}));
  // Rank decides, not position: "e l" outranks "h e" here.
  auto tok2 = load(byteLevelJson({{"e", "l"}, {"h", "e"}}));
  EXPECT_EQ(encode(*tok2, "hel"), (Ids{'h', 256}));
  // Ties at one rank go left to right.
  auto tok3 = load(byteLevelJson({{"a", "a"}}));
  EXPECT_EQ(encode(*tok3, "aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(encode(*tok3, "aaaa"), (Ids{256, 256}));
  // Both merge spellings in tokenizer.json load the same model.
  auto tok4 = load(byteLevelJson({{"h", "e"}, {"l", "l"}, {"he", "ll"}}, json::array(), true));
  EXPECT_EQ(encode(*tok4, "hello"), (Ids{258, 'o'}));
  // Repeated encodes (word cache) agree.
  EXPECT_EQ(encode(*tok, "hello hello"), encode(*tok, "hello hello"));
}

TEST(TokenizerTest, ByteLevelSpellingRoundTrips) {
  auto tok = load(byteLevelJson({}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "\xC3\xA9"), (Ids{0xC3, 0xA9}));
  EXPECT_EQ(encode(*tok, " \n"), (Ids{' ', '\n'}));
  EXPECT_EQ(tok->idToToken(' '), std::optional<std::string>("\xC4\xA0")); // Ġ
  std::string text = "héllo 世界 🙂\n\ttabs  and\r\nCRLF";
  EXPECT_EQ(tok->decode(encode(*tok, text)), text);
  EXPECT_EQ(tok->tokenToId("\xC4\xA0"), std::optional<int32_t>(' '));
  EXPECT_FALSE(tok->tokenToId("nope").has_value());
  EXPECT_EQ(tok->vocabSize(), 256);
}

TEST(TokenizerTest, InvalidUtf8InputIsAnError) {
  auto tok = load(byteLevelJson({}));
  StatusOr<Ids> ids = tok->encode("ok\xFFno");
  ASSERT_FALSE(ids.isOk());
  EXPECT_EQ(ids.status().message(), "input is not valid UTF-8 (byte 2)");
}

TEST(TokenizerTest, IgnoreMergesTakesWholeWordsFromTheVocab) {
  json j = byteLevelJson({{"a", "b"}});
  j["model"]["vocab"]["abc"] = 300;
  j["model"]["ignore_merges"] = true;
  auto tok = load(j);
  EXPECT_EQ(encode(*tok, "abc"), (Ids{300}));
  EXPECT_EQ(encode(*tok, "abd"), (Ids{256, 'd'}));
}

TEST(TokenizerTest, ByteFallbackAndUnknown) {
  json j = {{"model",
             {{"type", "BPE"},
              {"vocab", {{"a", 0}, {"<0xC3>", 1}, {"<0xA9>", 2}, {"<unk>", 3}, {"b", 4}}},
              {"merges", json::array()},
              {"unk_token", "<unk>"},
              {"byte_fallback", true}}}};
  auto tok = load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "a\xC3\xA9"), (Ids{0, 1, 2})); // é as its two bytes
  EXPECT_EQ(encode(*tok, "a\xC3\xA8" "b"), (Ids{0, 3, 4})); // è: no <0xA8>, so <unk>
  j["model"]["byte_fallback"] = false;
  j["model"]["fuse_unk"] = true;
  auto tok2 = load(j);
  EXPECT_EQ(encode(*tok2, "a\xC3\xA9\xC3\xA9" "b"), (Ids{0, 3, 4})); // fused unknowns
  // No decoder: HF joins the token strings with spaces.
  EXPECT_EQ(tok2->decode({0, 4}), "a b");
}

TEST(TokenizerTest, SpecialTokensAreMatchedFirstLongestLeftmost) {
  json added = json::array({addedToken(300, "<|end|>"), addedToken(301, "<|e", false),
                            addedToken(302, "]~b]")});
  auto tok = load(byteLevelJson({}, added));
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "a<|end|>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(encode(*tok, "<|ex"), (Ids{301, 'x'}));
  EXPECT_EQ(encode(*tok, "]~b]user"), (Ids{302, 'u', 's', 'e', 'r'}));
  EXPECT_TRUE(tok->isSpecial(300));
  EXPECT_FALSE(tok->isSpecial(301));
  EXPECT_EQ(tok->decode({'a', 300, 301, 'b'}), "a<|end|><|eb");
  EXPECT_EQ(tok->decode({'a', 300, 301, 'b'}, /*skipSpecialTokens=*/true), "a<|eb");
  EXPECT_EQ(tok->tokenToId("<|end|>"), std::optional<int32_t>(300));
  EXPECT_EQ(tok->vocabSize(), 303);
}

TEST(TokenizerTest, AddedTokenFlags) {
  json lstrip = addedToken(300, "<mask>");
  lstrip["lstrip"] = true;
  json rstrip = addedToken(301, "<r>");
  rstrip["rstrip"] = true;
  json word = addedToken(302, "<w>");
  word["single_word"] = true;
  auto tok = load(byteLevelJson({}, json::array({lstrip, rstrip, word})));
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "a  <mask>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(encode(*tok, "a<r>  b"), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(encode(*tok, "x <w> y"), (Ids{'x', ' ', 302, ' ', 'y'}));
  // single_word: not inside a word.
  EXPECT_EQ(encode(*tok, "x<w>"), (Ids{'x', '<', 'w', '>'}));
}

TEST(TokenizerTest, NormalizedAddedTokensMatchAfterNfc) {
  json normalizedTok = addedToken(300, "\xC3\xA9", false); // é
  normalizedTok["normalized"] = true;
  json rawTok = addedToken(301, "o\xCC\x81", false); // o + combining acute
  json j = byteLevelJson({}, json::array({normalizedTok, rawTok}));
  j["normalizer"] = {{"type", "NFC"}};
  auto tok = load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "e\xCC\x81"), (Ids{300}));  // NFC makes é, then it matches
  EXPECT_EQ(encode(*tok, "o\xCC\x81"), (Ids{301})); // raw match before NFC
  EXPECT_EQ(encode(*tok, "a\xCC\x81"), (Ids{0xC3, 0xA1})); // á composed by NFC
}

TEST(TokenizerTest, TemplatePostProcessorAddsSpecialTokens) {
  json j = byteLevelJson({}, json::array({addedToken(300, "<s>"), addedToken(301, "</s>")}));
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
        {"</s>", {{"id", "</s>"}, {"ids", {301}}, {"tokens", {"</s>"}}}}}}};
  auto tok = load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "a", true), (Ids{300, 'a', 301}));
  EXPECT_EQ(encode(*tok, "a", false), (Ids{'a'}));
}

TEST(TokenizerTest, SplitBehaviors) {
  using tokenizer::PreTokenizer;
  auto pieces = [](const std::string &behavior, bool invert, const std::string &text) {
    json j = {{"type", "Split"},
              {"pattern", {{"String", "-"}}},
              {"behavior", behavior},
              {"invert", invert}};
    StatusOr<PreTokenizer> pre = PreTokenizer::fromJson(j, "pre_tokenizer");
    EXPECT_TRUE(pre.isOk()) << pre.status().message();
    std::vector<std::string_view> out;
    tokenizer::PreTokenizeScratch scratch;
    pre->apply(text, out, scratch);
    return std::vector<std::string>(out.begin(), out.end());
  };
  using S = std::vector<std::string>;
  EXPECT_EQ(pieces("Isolated", false, "a-b--c"), (S{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pieces("Removed", false, "a-b--c"), (S{"a", "b", "c"}));
  EXPECT_EQ(pieces("MergedWithPrevious", false, "a-b--c"), (S{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pieces("MergedWithNext", false, "a-b--c"), (S{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pieces("Contiguous", false, "a-b--c"), (S{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pieces("Removed", true, "a-b--c"), (S{"-", "-", "-"}));

  json digits = {{"type", "Digits"}, {"individual_digits", true}};
  StatusOr<PreTokenizer> pre = PreTokenizer::fromJson(digits, "pre_tokenizer");
  ASSERT_TRUE(pre.isOk());
  std::vector<std::string_view> out;
  tokenizer::PreTokenizeScratch scratch;
  pre->apply("ab12c", out, scratch);
  EXPECT_EQ(std::vector<std::string>(out.begin(), out.end()), (S{"ab", "1", "2", "c"}));
}

TEST(TokenizerTest, ByteLevelPreTokenizerWithRegexAndPrefixSpace) {
  json j = byteLevelJson({{" ", "h"}});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  auto tok = load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(encode(*tok, "hi"), (Ids{256, 'i'})); // " hi": the prefix space merges
}

TEST(TokenizerTest, StreamingHoldsBackSplitCharacters) {
  auto tok = load(byteLevelJson({}));
  ASSERT_TRUE(tok);
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push('a'), "a");
  EXPECT_EQ(stream.push(0xC3), "");
  EXPECT_EQ(stream.pending(), 1u);
  EXPECT_EQ(stream.push(0xA9), "\xC3\xA9");
  // An emoji over four tokens appears only with its last byte.
  EXPECT_EQ(stream.push(0xF0), "");
  EXPECT_EQ(stream.push(0x9F), "");
  EXPECT_EQ(stream.push(0x99), "");
  EXPECT_EQ(stream.push(0x82), "\xF0\x9F\x99\x82");
  // A byte that can never start a character is replaced at once.
  EXPECT_EQ(stream.push(0xFF), "\xEF\xBF\xBD");
  // A character cut short by a new lead byte is replaced; the new one waits.
  EXPECT_EQ(stream.push(0xE4), "");
  EXPECT_EQ(stream.push('x'), "\xEF\xBF\xBDx");
  EXPECT_EQ(stream.push(0xE4), "");
  EXPECT_EQ(stream.push(0xB8), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD"); // incomplete at the end
  // Streaming equals decoding everything at once.
  Ids ids = {'a', 0xC3, 0xA9, 0xF0, 0x9F, 0x99, 0x82, 0xFF, 0xE4, 'x', 0xE4, 0xB8};
  StreamDecoder again(*tok);
  std::string streamed;
  for (int32_t id : ids)
    streamed += again.push(id);
  streamed += again.finish();
  EXPECT_EQ(streamed, tok->decode(ids));
}

TEST(TokenizerTest, LossyUtf8UsesMaximalSubparts) {
  auto lossy = [](std::string bytes) { return decodeUtf8Lossy(bytes, true); };
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("\xE0\x80"), r + r);         // E0 needs A0..BF next
  EXPECT_EQ(lossy("\xF0\x9F\x98"), r);         // one truncated character
  EXPECT_EQ(lossy("\xED\xA0\x80"), r + r + r); // surrogates are ill-formed
  EXPECT_EQ(lossy("a\xC3" "b"), "a" + r + "b");
  std::string keep = "ok\xE4\xB8";
  EXPECT_EQ(decodeUtf8Lossy(keep, false), "ok");
  EXPECT_EQ(keep, "\xE4\xB8");
}

TEST(TokenizerTest, MalformedFilesGiveClearErrors) {
  // The JSON library's own wording varies between versions (the GPU
  // machines carry another): check the part m2c writes.
  EXPECT_EQ(loadError("").rfind("not valid JSON: parse error at line 1", 0), 0u) << loadError("");
  EXPECT_EQ(loadError("[1, 2]"), "expected a JSON object at the top level");
  EXPECT_EQ(loadError("{}"), "model is missing");
  EXPECT_EQ(loadJsonError(json{{"model", {{"type", "WordPiece"}, {"vocab", json::object()}}}}),
            "model: unsupported model type 'WordPiece' (supported: BPE)");
  EXPECT_EQ(loadJsonError(json{{"model", {{"type", "BPE"}, {"vocab", json::array()}}}}),
            "model.vocab must be an object of token -> id");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", "x"}}}}}}),
            "model.vocab[\"a\"] must be an integer id, got string");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", -1}}}}}}),
            "model.vocab[\"a\"] is out of range (-1)");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"merges", {"a"}}}}}),
            "model.merges[0]: expected \"left right\", got \"a\"");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"merges", {"a b"}}}}}),
            "model.merges[0]: 'b' is not in model.vocab");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"merges", {"a a"}}}}}),
            "model.merges[0]: merged token 'aa' is not in model.vocab");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"merges", {{1, 2}}}}}}),
            "model.merges[0]: expected \"left right\" or [\"left\", \"right\"]");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"unk_token", "<unk>"}}}}),
            "model.unk_token '<unk>' is not in model.vocab");
  EXPECT_EQ(loadJsonError(json{{"model", {{"vocab", {{"a", 0}}}, {"dropout", 0.1}}}}),
            "model.dropout: BPE dropout is unsupported (tokenization must be deterministic)");

  json j = byteLevelJson({});
  j["normalizer"] = {{"type", "NFKC"}};
  EXPECT_EQ(loadJsonError(j), "normalizer: unsupported normalizer 'NFKC'");
  j = byteLevelJson({});
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_EQ(loadJsonError(j), "pre_tokenizer: unsupported pre-tokenizer 'Metaspace'");
  j = byteLevelJson({});
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(?<=x)y";
  EXPECT_EQ(loadJsonError(j), "pre_tokenizer.pretokenizers[0].pattern.Regex: unsupported group "
                          "construct '(?<' at offset 2");
  j = byteLevelJson({});
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  EXPECT_EQ(loadJsonError(j),
            "pre_tokenizer.pretokenizers[0].behavior: unsupported split behavior 'Sideways'");
  j = byteLevelJson({});
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_EQ(loadJsonError(j), "decoder: unsupported decoder 'WordPiece' (supported: ByteLevel)");
  j = byteLevelJson({});
  j["post_processor"] = {{"type", "BertProcessing"}};
  EXPECT_EQ(loadJsonError(j), "post_processor: unsupported post-processor 'BertProcessing' "
                          "(supported: ByteLevel, TemplateProcessing, Sequence)");
  j = byteLevelJson({}, json::array({{{"id", -5}, {"content", "x"}}}));
  EXPECT_EQ(loadJsonError(j), "added_tokens[0].id is out of range (-5)");
  j = byteLevelJson({}, json::array({{{"id", 3}, {"content", 7}}}));
  EXPECT_EQ(loadJsonError(j), "added_tokens[0].content must be a string, got number");
  j = byteLevelJson({}, json::array({{{"id", 3}, {"content", "x"}, {"special", "yes"}}}));
  EXPECT_EQ(loadJsonError(j), "added_tokens[0].special must be a boolean, got string");

  StatusOr<std::unique_ptr<Tokenizer>> missing = Tokenizer::fromFile("/nonexistent/t.json");
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().message(), "/nonexistent/t.json: cannot open file");
}

TEST(TokenizerTest, TruncatedAndGarbageInputsNeverCrash) {
  std::string good = byteLevelJson({{"h", "e"}}, json::array({addedToken(300, "<|x|>")})).dump();
  // Every prefix of a valid file either loads or fails with a message.
  for (size_t len = 0; len < good.size(); len += 97) {
    StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromJson(good.substr(0, len));
    if (!tok)
      EXPECT_FALSE(tok.status().message().empty());
  }
  // Wrong types anywhere in the tree.
  for (const char *key : {"model", "added_tokens", "normalizer", "pre_tokenizer", "decoder",
                          "post_processor"}) {
    for (json bad : {json(1), json("s"), json::array({1}), json{{"type", 5}}}) {
      json j = json::parse(good);
      j[key] = bad;
      StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromJson(j.dump());
      if (!tok)
        EXPECT_FALSE(tok.status().message().empty()) << key;
    }
  }
}
