//===- PreTokenizer.h - tokenizer.json normalizers and pre-tokenizers -*- C++ -*-===//
//
// The text pipeline before BPE. Supported normalizers: NFC and Sequence
// (of supported ones). Supported pre-tokenizers: Split (Regex or String
// pattern, all five behaviors, invert), ByteLevel (add_prefix_space,
// use_regex), Digits and Sequence. Anything else fails to load with the JSON
// path and type name, so an unsupported file is never tokenized wrongly.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_PRETOKENIZER_H
#define M2C_RUNTIME_TOKENIZER_PRETOKENIZER_H

#include "runtime/tokenizer/JsonFields.h"
#include "runtime/tokenizer/Regex.h"

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace m2c::tokenizer {

class Normalizer {
public:
  /// `value` may be null (no normalization).
  static StatusOr<Normalizer> fromJson(const nlohmann::json &value, const std::string &path);
  bool isIdentity() const { return !nfc_; }
  /// Normalizes `text`; returns a view of `text` itself or of `storage`.
  std::string_view apply(std::string_view text, std::string &storage) const;

private:
  bool nfc_ = false;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

/// Per-call scratch so that pre-tokenizing does not allocate per piece.
struct PreTokenizeScratch {
  DecodedText text;
  Regex::Scratch regex;
  std::vector<std::pair<uint32_t, uint32_t>> ranges; // byte offsets within a piece
  std::vector<bool> isMatch;
  std::vector<std::string_view> next;
  std::deque<std::string> storage; // pieces that had a prefix space added
};

class PreTokenizer {
public:
  /// `value` may be null (the whole segment is one piece).
  static StatusOr<PreTokenizer> fromJson(const nlohmann::json &value, const std::string &path);

  /// Splits `segment` into pieces (views of `segment` or of scratch storage).
  void apply(std::string_view segment, std::vector<std::string_view> &pieces,
             PreTokenizeScratch &scratch) const;
  /// Whether a ByteLevel step spells pieces in the byte alphabet.
  bool byteLevel() const { return byteLevel_; }

private:
  struct Step {
    enum Kind { Split, ByteLevelPrefix, Digits } kind = Split;
    std::shared_ptr<Regex> regex; // Split with a Regex pattern
    std::string literal;          // Split with a String pattern
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool individualDigits = false;
  };
  Status addStep(const nlohmann::json &value, const std::string &path);
  void applyStep(const Step &step, std::string_view piece, std::vector<std::string_view> &out,
                 PreTokenizeScratch &scratch) const;

  std::vector<Step> steps_;
  bool byteLevel_ = false;
};

} // namespace m2c::tokenizer

#endif // M2C_RUNTIME_TOKENIZER_PRETOKENIZER_H
