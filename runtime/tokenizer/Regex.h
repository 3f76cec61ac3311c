//===- Regex.h - The split-pattern matcher of tokenizer.json files --*- C++ -*-===//
//
// Hugging Face tokenizers run pre-tokenizer Split patterns through
// Oniguruma. This is a small backtracking matcher with Oniguruma's
// leftmost-first semantics for the subset those patterns use: literals,
// classes with \p{..}/\s/\d/\w and ranges, (?:..), (?i:..) over literals,
// (?=..)/(?!..), alternation, greedy/lazy/possessive ? * + {m,n}, ^ $ \A \z.
// Anything else is rejected at compile time with the offending offset, so a
// pattern either means what Oniguruma means or fails to load.
//
// It matches over pre-decoded code points with their general categories
// (see DecodedText) so a class test is a table lookup, and a repeat of one
// character class runs as one instruction that gives back one character at a
// time on backtracking.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_REGEX_H
#define M2C_RUNTIME_TOKENIZER_REGEX_H

#include "runtime/support/Status.h"
#include "runtime/tokenizer/Unicode.h"

#include <bitset>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace m2c::tokenizer {

/// UTF-8 text decoded once: code points, their categories, and the byte
/// offset of each code point (plus one past the end).
struct DecodedText {
  std::vector<char32_t> cps;
  std::vector<uint8_t> cats;
  std::vector<uint32_t> offsets;
  void assign(std::string_view utf8);
  size_t size() const { return cps.size(); }
};

class Regex {
public:
  static StatusOr<Regex> compile(std::string_view pattern);

  /// Scratch space for matching; reuse one per thread to avoid allocation.
  struct Frame {
    uint32_t kind, pc;
    uint32_t pos, limit;
  };
  using Scratch = std::vector<Frame>;

  /// The leftmost-first match starting at or after code point `from`.
  /// Returns false when there is none. An empty match is reported as such;
  /// callers advance past it.
  bool search(const DecodedText &text, size_t from, size_t &matchBegin, size_t &matchEnd,
              Scratch &scratch) const;

  const std::string &pattern() const { return pattern_; }

  /// Repeat bound meaning "no upper limit".
  static constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
  enum RepeatMode : uint8_t { kGreedy = 0, kLazy = 1, kPossessive = 2 };

  /// Internal representation, public for the compiler in Regex.cpp.
  struct ClassItem {
    enum Kind : uint8_t { Range, Categories, Space, Digit, Word } kind;
    bool negated = false;
    char32_t lo = 0, hi = 0;
    unicode::CategoryMask mask = 0;
  };
  struct CharClass {
    bool negated = false;
    std::vector<ClassItem> items;
    std::bitset<128> ascii; // final answer for ASCII, negation applied
    bool matchesSlow(char32_t cp, uint8_t cat) const;
    bool matches(char32_t cp, uint8_t cat) const {
      return cp < 128 ? ascii.test(cp) : matchesSlow(cp, cat);
    }
  };
  enum class Op : uint8_t {
    Char,      // a: code point
    CharFold,  // a: folded code point
    Class,     // a: class index
    Any,       // any code point but '\n'
    Repeat,    // one-character matcher repeated: x = matcher inst, a..b counts
    Split,     // try x first, then y
    Jmp,       // x
    Look,      // x: sub-program, a: 1 = negative
    LineStart,
    LineEnd,
    TextStart,
    TextEnd,
    Match,
  };
  struct Inst {
    Op op;
    uint8_t mode = 0; // Repeat: 0 greedy, 1 lazy, 2 possessive
    uint32_t x = 0, y = 0;
    uint32_t a = 0, b = 0;
  };
  /// A conservative set of the code points a match can start with from
  /// some instruction: exact for ASCII, by category otherwise. Lets Split
  /// skip alternatives that cannot match the next character.
  struct FirstSet {
    std::bitset<128> ascii;
    unicode::CategoryMask nonAscii = 0;
    bool nullable = false; // can match without consuming
    bool mayStart(char32_t cp, uint8_t cat) const {
      return cp < 128 ? ascii.test(cp) : ((nonAscii >> cat) & 1);
    }
  };

private:
  bool run(uint32_t pc, size_t pos, const DecodedText &text, size_t &end,
           Scratch &scratch) const;
  bool single(const Inst &inst, char32_t cp, uint8_t cat) const;

  void computeFirstSets();
  FirstSet firstOf(uint32_t pc) const;
  FirstSet singleFirst(Op op, uint32_t arg) const;

  std::string pattern_;
  std::vector<Inst> program_;
  std::vector<CharClass> classes_;
  std::vector<FirstSet> first_; // per instruction
  friend class RegexCompiler;
};

} // namespace m2c::tokenizer

#endif // M2C_RUNTIME_TOKENIZER_REGEX_H
