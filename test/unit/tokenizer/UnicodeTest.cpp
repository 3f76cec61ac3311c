// Units for the tokenizer's Unicode support: categories, white space, case
// folding, UTF-8 and NFC (runtime/tokenizer/Unicode.h).
#include "runtime/tokenizer/Unicode.h"

#include <gtest/gtest.h>

using namespace m2c::unicode;

TEST(UnicodeTest, GeneralCategories) {
  EXPECT_EQ(category('A'), Lu);
  EXPECT_EQ(category('z'), Ll);
  EXPECT_EQ(category('7'), Nd);
  EXPECT_EQ(category(' '), Zs);
  EXPECT_EQ(category('\n'), Cc);
  EXPECT_EQ(category(0x4E2D), Lo);  // 中
  EXPECT_EQ(category(0x0301), Mn);  // combining acute
  EXPECT_EQ(category(0x00BD), No);  // ½
  EXPECT_EQ(category(0x1F600), So); // 😀
  EXPECT_EQ(category(0xE000), Co);
  EXPECT_EQ(category(0x10FFFF), Cn);
  EXPECT_EQ(category(0x110000), Cn);
  EXPECT_STRNE(tableVersion(), "");
}

TEST(UnicodeTest, PropertyNames) {
  EXPECT_EQ(categoryMaskForName("L"), categoryMaskForName("Letter"));
  EXPECT_TRUE(categoryMaskForName("N") & maskOf(No));
  EXPECT_EQ(categoryMaskForName("Lu"), maskOf(Lu));
  EXPECT_EQ(categoryMaskForName("Bogus"), 0u);
}

TEST(UnicodeTest, WhiteSpaceIsTheUnicodeProperty) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x2000, 0x2028, 0x3000})
    EXPECT_TRUE(isWhiteSpace(cp)) << std::hex << cp;
  // Python's str.isspace() says yes to these; Unicode White_Space does not.
  for (char32_t cp : {0x1C, 0x1D, 0x1E, 0x1F, 0x200B, 0xFEFF})
    EXPECT_FALSE(isWhiteSpace(cp)) << std::hex << cp;
}

TEST(UnicodeTest, SimpleCaseFolding) {
  EXPECT_EQ(simpleFold('S'), U's');
  EXPECT_EQ(simpleFold(0x017F), U's'); // ſ
  EXPECT_EQ(simpleFold(0x0130), 0x0130u); // İ folds to two code points: unchanged
  EXPECT_EQ(simpleFold(0x0410), 0x0430u); // А -> а
}

TEST(UnicodeTest, Utf8DecodeEncode) {
  std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
  size_t pos = 0;
  EXPECT_EQ(decodeUtf8(s, pos), U'a');
  EXPECT_EQ(decodeUtf8(s, pos), 0xE9u);
  EXPECT_EQ(decodeUtf8(s, pos), 0x4E2Du);
  EXPECT_EQ(decodeUtf8(s, pos), 0x1F600u);
  EXPECT_EQ(pos, s.size());
  std::string out;
  for (char32_t cp : {U'a', char32_t(0xE9), char32_t(0x4E2D), char32_t(0x1F600)})
    appendUtf8(out, cp);
  EXPECT_EQ(out, s);
  EXPECT_TRUE(isValidUtf8(s));
  EXPECT_TRUE(isValidUtf8("\xEF\xBF\xBD")); // U+FFFD itself
  EXPECT_FALSE(isValidUtf8("\xC3"));         // truncated
  EXPECT_FALSE(isValidUtf8("\xC0\x80"));     // overlong
  EXPECT_FALSE(isValidUtf8("\xED\xA0\x80")); // surrogate
  EXPECT_FALSE(isValidUtf8("\xFF"));
}

TEST(UnicodeTest, Nfc) {
  EXPECT_EQ(toNfc("plain ascii"), "plain ascii");
  EXPECT_TRUE(isNfcQuick("caf\xC3\xA9"));
  EXPECT_FALSE(isNfcQuick("cafe\xCC\x81"));
  EXPECT_EQ(toNfc("cafe\xCC\x81"), "caf\xC3\xA9");        // e + U+0301 -> é
  EXPECT_EQ(toNfc("\xE2\x84\xAB"), "\xC3\x85");           // Å (U+212B) -> U+00C5
  EXPECT_EQ(toNfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81"); // jamo -> 각
  // Canonical reordering: dot below (220) sorts before acute (230), then composes.
  EXPECT_EQ(toNfc("a\xCC\x81\xCC\xA3"), "\xE1\xBA\xA1\xCC\x81");
  // A leading combining mark has no starter to compose with.
  EXPECT_EQ(toNfc("\xCC\x81" "a"), "\xCC\x81" "a");
  // Composition exclusions stay decomposed (U+0958 -> U+0915 U+093C).
  EXPECT_EQ(toNfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");
}
