//===- Unicode.h - UTF-8, general categories, case folding and NFC --*- C++ -*-===//
//
// What the tokenizer needs from Unicode, with tables generated at build time
// from Python's unicodedata (scripts/tokenizer/gen_unicode_tables.py).
// Nothing here allocates per code point; the NFC fast path returns the input
// untouched when no code point in it can change under NFC.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_UNICODE_H
#define M2C_RUNTIME_TOKENIZER_UNICODE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace m2c::unicode {

/// General categories; the order matches the generator's CATEGORIES list.
enum Category : uint8_t {
  Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po,
  Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co,
  kNumCategories
};

/// A set of categories as a bit mask (bit i = Category i).
using CategoryMask = uint32_t;
inline constexpr CategoryMask maskOf(Category c) { return CategoryMask(1) << c; }

/// The mask for a property name as written in \p{...}: a one-letter group
/// ("L", "N", ...), a two-letter category ("Lu"), or a long name
/// ("Letter", "Number", ...). Returns 0 for unknown names.
CategoryMask categoryMaskForName(std::string_view name);

Category category(char32_t cp);
/// Unicode White_Space (what Oniguruma's \s matches).
bool isWhiteSpace(char32_t cp);
/// Simple case folding: the one-code-point fold of cp, or cp itself.
char32_t simpleFold(char32_t cp);
/// Unicode version of the generated tables.
const char *tableVersion();

/// Decodes one code point at text[pos]. Invalid or truncated sequences
/// decode as U+FFFD and consume one byte, so every byte is visited.
char32_t decodeUtf8(std::string_view text, size_t &pos);
void appendUtf8(std::string &out, char32_t cp);
/// Whether text is well-formed UTF-8.
bool isValidUtf8(std::string_view text);

/// NFC of valid UTF-8 text (canonical decomposition, canonical ordering,
/// canonical composition, Hangul included).
std::string toNfc(std::string_view text);
/// Whether toNfc(text) would return text unchanged without computing it
/// (a conservative quick check: false means "maybe").
bool isNfcQuick(std::string_view text);

} // namespace m2c::unicode

#endif // M2C_RUNTIME_TOKENIZER_UNICODE_H
