//===- Unicode.cpp - UTF-8, general categories, case folding and NFC -----===//

#include "runtime/tokenizer/Unicode.h"

#include <algorithm>
#include <vector>

namespace m2c::unicode {

namespace {

struct CodeRange {
  uint32_t first, last, value;
};
struct Decomposition {
  uint32_t cp, first, second; // second == 0: a singleton
};
struct Composition {
  uint32_t first, second, composite;
};
struct CaseFold {
  uint32_t cp, folded;
};

#include "UnicodeTables.inc"

uint32_t rangeValue(const CodeRange *begin, const CodeRange *end, char32_t cp) {
  const CodeRange *it = std::upper_bound(
      begin, end, static_cast<uint32_t>(cp),
      [](uint32_t value, const CodeRange &range) { return value < range.first; });
  if (it == begin)
    return 0;
  --it;
  return cp <= it->last ? it->value : 0;
}

template <typename T, size_t N> const T *endOf(const T (&array)[N]) { return array + N; }

uint32_t combiningClass(char32_t cp) {
  if (cp < 0x300)
    return 0;
  return rangeValue(kCombiningClass, endOf(kCombiningClass), cp);
}

bool isNfcUnstable(char32_t cp) {
  if (cp < 0x300)
    return false;
  return rangeValue(kNfcUnstable, endOf(kNfcUnstable), cp) != 0;
}

// Hangul syllable arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::vector<char32_t> &out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount)
      out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition *end = endOf(kDecompositions);
  const Decomposition *it = std::lower_bound(
      kDecompositions, end, static_cast<uint32_t>(cp),
      [](const Decomposition &d, uint32_t value) { return d.cp < value; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second)
    decompose(it->second, out);
}

char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount)
    return first + (second - kTBase);
  const Composition *end = endOf(kCompositions);
  const Composition *it = std::lower_bound(
      kCompositions, end, std::make_pair(uint32_t(first), uint32_t(second)),
      [](const Composition &c, const std::pair<uint32_t, uint32_t> &key) {
        return c.first != key.first ? c.first < key.first : c.second < key.second;
      });
  if (it != end && it->first == first && it->second == second)
    return it->composite;
  return 0;
}

struct NameMask {
  const char *name;
  CategoryMask mask;
};

constexpr CategoryMask kLetter = (1u << Lu) | (1u << Ll) | (1u << Lt) | (1u << Lm) | (1u << Lo);
constexpr CategoryMask kMark = (1u << Mn) | (1u << Mc) | (1u << Me);
constexpr CategoryMask kNumber = (1u << Nd) | (1u << Nl) | (1u << No);
constexpr CategoryMask kPunct = (1u << Pc) | (1u << Pd) | (1u << Ps) | (1u << Pe) | (1u << Pi) |
                                (1u << Pf) | (1u << Po);
constexpr CategoryMask kSymbol = (1u << Sm) | (1u << Sc) | (1u << Sk) | (1u << So);
constexpr CategoryMask kSeparator = (1u << Zs) | (1u << Zl) | (1u << Zp);
constexpr CategoryMask kOther = (1u << Cc) | (1u << Cf) | (1u << Cs) | (1u << Co) | (1u << Cn);

const NameMask kNames[] = {
    {"L", kLetter}, {"Letter", kLetter}, {"M", kMark}, {"Mark", kMark},
    {"Combining_Mark", kMark}, {"N", kNumber}, {"Number", kNumber}, {"P", kPunct},
    {"Punctuation", kPunct}, {"S", kSymbol}, {"Symbol", kSymbol}, {"Z", kSeparator},
    {"Separator", kSeparator}, {"C", kOther}, {"Other", kOther},
    {"LC", (1u << Lu) | (1u << Ll) | (1u << Lt)}, {"Cased_Letter", (1u << Lu) | (1u << Ll) | (1u << Lt)},
    {"Lu", 1u << Lu}, {"Uppercase_Letter", 1u << Lu}, {"Ll", 1u << Ll},
    {"Lowercase_Letter", 1u << Ll}, {"Lt", 1u << Lt}, {"Titlecase_Letter", 1u << Lt},
    {"Lm", 1u << Lm}, {"Modifier_Letter", 1u << Lm}, {"Lo", 1u << Lo},
    {"Other_Letter", 1u << Lo}, {"Mn", 1u << Mn}, {"Nonspacing_Mark", 1u << Mn},
    {"Mc", 1u << Mc}, {"Spacing_Mark", 1u << Mc}, {"Me", 1u << Me},
    {"Enclosing_Mark", 1u << Me}, {"Nd", 1u << Nd}, {"Decimal_Number", 1u << Nd},
    {"Nl", 1u << Nl}, {"Letter_Number", 1u << Nl}, {"No", 1u << No},
    {"Other_Number", 1u << No}, {"Pc", 1u << Pc}, {"Connector_Punctuation", 1u << Pc},
    {"Pd", 1u << Pd}, {"Dash_Punctuation", 1u << Pd}, {"Ps", 1u << Ps},
    {"Open_Punctuation", 1u << Ps}, {"Pe", 1u << Pe}, {"Close_Punctuation", 1u << Pe},
    {"Pi", 1u << Pi}, {"Initial_Punctuation", 1u << Pi}, {"Pf", 1u << Pf},
    {"Final_Punctuation", 1u << Pf}, {"Po", 1u << Po}, {"Other_Punctuation", 1u << Po},
    {"Sm", 1u << Sm}, {"Math_Symbol", 1u << Sm}, {"Sc", 1u << Sc},
    {"Currency_Symbol", 1u << Sc}, {"Sk", 1u << Sk}, {"Modifier_Symbol", 1u << Sk},
    {"So", 1u << So}, {"Other_Symbol", 1u << So}, {"Zs", 1u << Zs},
    {"Space_Separator", 1u << Zs}, {"Zl", 1u << Zl}, {"Line_Separator", 1u << Zl},
    {"Zp", 1u << Zp}, {"Paragraph_Separator", 1u << Zp}, {"Cc", 1u << Cc},
    {"Control", 1u << Cc}, {"Cf", 1u << Cf}, {"Format", 1u << Cf}, {"Cs", 1u << Cs},
    {"Surrogate", 1u << Cs}, {"Co", 1u << Co}, {"Private_Use", 1u << Co},
    {"Cn", 1u << Cn}, {"Unassigned", 1u << Cn},
};

} // namespace

CategoryMask categoryMaskForName(std::string_view name) {
  for (const NameMask &entry : kNames)
    if (name == entry.name)
      return entry.mask;
  return 0;
}

Category category(char32_t cp) {
  if (cp >= 0x110000)
    return Cn;
  return static_cast<Category>(kCategoryStage2[kCategoryStage1[cp >> 8]][cp & 0xFF]);
}

bool isWhiteSpace(char32_t cp) {
  if (cp < 0x80)
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

char32_t simpleFold(char32_t cp) {
  if (cp < 0x80)
    return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const CaseFold *end = endOf(kCaseFolds);
  const CaseFold *it =
      std::lower_bound(kCaseFolds, end, static_cast<uint32_t>(cp),
                       [](const CaseFold &f, uint32_t value) { return f.cp < value; });
  return (it != end && it->cp == cp) ? it->folded : cp;
}

const char *tableVersion() { return kUnicodeVersion; }

char32_t decodeUtf8(std::string_view text, size_t &pos) {
  unsigned char c = static_cast<unsigned char>(text[pos]);
  if (c < 0x80) {
    ++pos;
    return c;
  }
  int length;
  char32_t cp, min;
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2, cp = c & 0x1F, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3, cp = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4, cp = c & 0x07, min = 0x10000;
  } else {
    ++pos;
    return 0xFFFD;
  }
  if (pos + length > text.size()) {
    ++pos;
    return 0xFFFD;
  }
  for (int i = 1; i < length; ++i) {
    unsigned char next = static_cast<unsigned char>(text[pos + i]);
    if ((next & 0xC0) != 0x80) {
      ++pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (next & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++pos;
    return 0xFFFD;
  }
  pos += length;
  return cp;
}

void appendUtf8(std::string &out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool isValidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t before = pos;
    char32_t cp = decodeUtf8(text, pos);
    // U+FFFD itself is three bytes; a one-byte step means an invalid byte.
    if (cp == 0xFFFD && pos - before == 1)
      return false;
  }
  return true;
}

bool isNfcQuick(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0xCC) { // below U+0300
      pos += static_cast<unsigned char>(text[pos]) < 0x80 ? 1 : 2;
      continue;
    }
    if (isNfcUnstable(decodeUtf8(text, pos)))
      return false;
  }
  return true;
}

std::string toNfc(std::string_view text) {
  if (isNfcQuick(text))
    return std::string(text);
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();)
    decompose(decodeUtf8(text, pos), cps);
  // Canonical ordering: stable-sort each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (combiningClass(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combiningClass(cps[j]) != 0)
      ++j;
    // Insertion sort: stable, and runs of marks are a few code points long.
    for (size_t k = i + 1; k < j; ++k)
      for (size_t m = k; m > i && combiningClass(cps[m - 1]) > combiningClass(cps[m]); --m)
        std::swap(cps[m - 1], cps[m]);
    i = j;
  }
  // Canonical composition (the Unicode sample algorithm).
  if (!cps.empty()) {
    size_t starterPos = 0, out = 1;
    bool hasStarter = combiningClass(cps[0]) == 0;
    uint32_t lastClass = hasStarter ? 0 : 256;
    for (size_t i = 1; i < cps.size(); ++i) {
      char32_t ch = cps[i];
      uint32_t chClass = combiningClass(ch);
      if (hasStarter && (lastClass < chClass || lastClass == 0)) {
        if (char32_t composite = compose(cps[starterPos], ch)) {
          cps[starterPos] = composite;
          continue;
        }
      }
      if (chClass == 0) {
        starterPos = out;
        hasStarter = true;
      }
      lastClass = chClass;
      cps[out++] = ch;
    }
    cps.resize(out);
  }
  std::string result;
  result.reserve(text.size());
  for (char32_t cp : cps)
    appendUtf8(result, cp);
  return result;
}

} // namespace m2c::unicode
