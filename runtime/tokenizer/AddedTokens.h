//===- AddedTokens.h - Matching added and special tokens in text --*- C++ -*-===//
//
// Added tokens are cut out of the text before pre-tokenization, the way
// Hugging Face's AddedVocabulary does it: leftmost-longest matches (its
// Aho-Corasick MatchKind::LeftmostLongest), tokens with normalized=false
// matched on the raw text and the others on the normalized text, then the
// single_word, lstrip and rstrip rules applied to each match.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_ADDEDTOKENS_H
#define M2C_RUNTIME_TOKENIZER_ADDEDTOKENS_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace m2c::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool singleWord = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

/// One cut of a text: either an added token (id >= 0) or plain text.
struct Cut {
  int32_t id;
  uint32_t begin, end; // byte offsets
};

/// A byte trie over token contents; finds leftmost-longest matches.
class TokenMatcher {
public:
  void add(std::string_view content, uint32_t tokenIndex);
  bool empty() const { return nodes_.size() <= 1; }
  /// Cuts `text` at the matches of the tokens in `tokens`.
  void cut(std::string_view text, const std::vector<AddedToken> &tokens,
           std::vector<Cut> &out) const;

private:
  struct Node {
    std::vector<std::pair<uint8_t, uint32_t>> next;
    int32_t token = -1; // index into the token list
  };
  bool firstByte_[256] = {};
  std::vector<Node> nodes_{Node()};
};

} // namespace m2c::tokenizer

#endif // M2C_RUNTIME_TOKENIZER_ADDEDTOKENS_H
