// Units for the split-pattern matcher (runtime/tokenizer/Regex.h): the
// constructs tokenizer.json patterns use, leftmost-first alternation,
// backtracking, look-ahead, case folding, and clear errors for the rest.
#include "runtime/tokenizer/Regex.h"

#include <gtest/gtest.h>

using namespace m2c;
using namespace m2c::tokenizer;

namespace {

// All matches of `pattern` in `text`, as UTF-8 strings.
std::vector<std::string> findAll(const std::string &pattern, const std::string &text) {
  StatusOr<Regex> re = Regex::compile(pattern);
  EXPECT_TRUE(re.isOk()) << re.status().message();
  if (!re)
    return {};
  DecodedText t;
  t.assign(text);
  Regex::Scratch scratch;
  std::vector<std::string> out;
  size_t from = 0, b, e;
  while (from <= t.size() && re->search(t, from, b, e, scratch)) {
    out.push_back(text.substr(t.offsets[b], t.offsets[e] - t.offsets[b]));
    from = e > b ? e : b + 1;
  }
  return out;
}

std::string errorOf(const std::string &pattern) {
  StatusOr<Regex> re = Regex::compile(pattern);
  return re.isOk() ? "<ok>" : re.status().message();
}

const char *kLlama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

using Strings = std::vector<std::string>;

} // namespace

TEST(RegexTest, LiteralsClassesAndQuantifiers) {
  EXPECT_EQ(findAll("ab", "xabyab"), (Strings{"ab", "ab"}));
  EXPECT_EQ(findAll("a+", "caaab a"), (Strings{"aaa", "a"}));
  EXPECT_EQ(findAll("[a-c]{2}", "abcabc"), (Strings{"ab", "ca", "bc"}));
  EXPECT_EQ(findAll("\\d{1,3}", "1234567"), (Strings{"123", "456", "7"}));
  EXPECT_EQ(findAll("x{2,}", "x xx xxxx"), (Strings{"xx", "xxxx"}));
  EXPECT_EQ(findAll("[^a]+", "aXYaZ"), (Strings{"XY", "Z"}));
  EXPECT_EQ(findAll("[\\-\\]]", "a-b]c"), (Strings{"-", "]"}));
  EXPECT_EQ(findAll("\\x41\\u0042\\x{43}", "ABC"), (Strings{"ABC"}));
  EXPECT_EQ(findAll("a{,2}b", "aaab"), (Strings{"aab"}));
  EXPECT_EQ(findAll("a{x", "a{x"), (Strings{"a{x"})); // not a quantifier: literal
}

TEST(RegexTest, UnicodeProperties) {
  EXPECT_EQ(findAll("\\p{L}+", "héllo 世界 123"), (Strings{"héllo", "世界"}));
  EXPECT_EQ(findAll("\\p{N}+", "x١٢٣ ½ 7"), (Strings{"١٢٣", "½", "7"}));
  EXPECT_EQ(findAll("\\P{L}+", "ab12cd"), (Strings{"12"}));
  EXPECT_EQ(findAll("[\\p{Lu}]+", "abcDEFghi"), (Strings{"DEF"}));
  EXPECT_EQ(findAll("\\pL+", "ab1"), (Strings{"ab"}));
  EXPECT_EQ(findAll("[一-龥]+", "abc中文def"), (Strings{"中文"}));
}

TEST(RegexTest, LeftmostFirstAlternationAndBacktracking) {
  // The first alternative that matches wins, not the longest.
  EXPECT_EQ(findAll("a|ab", "ab"), (Strings{"a"}));
  EXPECT_EQ(findAll("(?:ab|a)c", "ac abc"), (Strings{"ac", "abc"}));
  // Greedy repeats give back what the rest needs.
  EXPECT_EQ(findAll("\\s*[\\r\\n]+", "  \n\n x"), (Strings{"  \n\n"}));
  EXPECT_EQ(findAll("a*?b", "aaab"), (Strings{"aaab"}));
  EXPECT_EQ(findAll("a+?", "aaa"), (Strings{"a", "a", "a"}));
  EXPECT_EQ(findAll("a?+a", "aa"), (Strings{"aa"}));
  EXPECT_EQ(findAll("a?+a", "a"), Strings{}); // possessive gives nothing back
}

TEST(RegexTest, LookAheadAndAnchors) {
  // \s+(?!\S) leaves the last space for the next word.
  EXPECT_EQ(findAll("\\s+(?!\\S)", "a   b"), (Strings{"  "}));
  EXPECT_EQ(findAll("\\s+(?!\\S)", "a   "), (Strings{"   "}));
  EXPECT_EQ(findAll("a(?=b)", "ab ac"), (Strings{"a"}));
  EXPECT_EQ(findAll("^a", "a\na a"), (Strings{"a", "a"}));
  EXPECT_EQ(findAll("a$", "a a\na"), (Strings{"a", "a"}));
  EXPECT_EQ(findAll("\\Aa|a\\z", "a a a"), (Strings{"a", "a"}));
}

TEST(RegexTest, CaseInsensitiveLiterals) {
  EXPECT_EQ(findAll("(?i:'s|'ll)", "it's IT'S WE'LL x'\xC5\xBF"),
            (Strings{"'s", "'S", "'LL", "'\xC5\xBF"}));
  EXPECT_EQ(findAll("(?i)ab", "AB aB"), (Strings{"AB", "aB"}));
}

TEST(RegexTest, Llama3Pattern) {
  EXPECT_EQ(findAll(kLlama3, "Hello world's 12345 \n\n  x"),
            (Strings{"Hello", " world", "'s", " ", "123", "45", " \n\n", " ", " x"}));
  EXPECT_EQ(findAll(kLlama3, "if (a&&b) {\n\treturn;\n}"),
            (Strings{"if", " (", "a", "&&", "b", ")", " {\n", "\treturn", ";\n", "}"}));
}

TEST(RegexTest, UnsupportedConstructsFailClearly) {
  EXPECT_EQ(errorOf("(?<=a)b"), "unsupported group construct '(?<' at offset 2");
  EXPECT_EQ(errorOf("a\\bb"), "unsupported escape '\\b' at offset 2");
  EXPECT_EQ(errorOf("(a"), "missing ')' at offset 2");
  EXPECT_EQ(errorOf("a)"), "unbalanced ')' at offset 1");
  EXPECT_EQ(errorOf("[abc"), "unterminated character class at offset 4");
  EXPECT_EQ(errorOf("*a"), "nothing to repeat at offset 0");
  EXPECT_EQ(errorOf("\\p{Bogus}"), "unsupported property '\\p{Bogus}' at offset 9");
  EXPECT_EQ(errorOf("(?i:[a-z])"), "character classes inside (?i) are unsupported at offset 9");
  EXPECT_EQ(errorOf("(a*)*"), "unbounded repeat of a group that can match empty is "
                              "unsupported at offset 5");
  EXPECT_EQ(errorOf("[z-a]"), "class range is backwards at offset 4");
  EXPECT_EQ(errorOf("a{3,1}"), "repeat range {3,1} is backwards at offset 6");
}
