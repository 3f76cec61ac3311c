//===- AddedTokens.cpp - Matching added and special tokens in text --------===//

#include "runtime/tokenizer/AddedTokens.h"

#include "runtime/tokenizer/Unicode.h"

namespace m2c::tokenizer {

namespace {

bool isWordChar(char32_t cp) {
  using namespace unicode;
  Category c = category(cp);
  return cp == '_' || c == Lu || c == Ll || c == Lt || c == Lm || c == Lo || c == Mn ||
         c == Mc || c == Me || c == Nd || c == Pc;
}

// The code point that ends text[0, end).
char32_t lastCodePoint(std::string_view text, size_t end) {
  size_t start = end;
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80)
    --start;
  if (start > 0)
    --start;
  return unicode::decodeUtf8(text, start);
}

} // namespace

void TokenMatcher::add(std::string_view content, uint32_t tokenIndex) {
  if (content.empty())
    return;
  uint32_t node = 0;
  for (char c : content) {
    uint8_t b = static_cast<uint8_t>(c);
    uint32_t child = 0;
    for (auto &[byte, index] : nodes_[node].next)
      if (byte == b)
        child = index;
    if (!child) {
      child = static_cast<uint32_t>(nodes_.size());
      nodes_[node].next.emplace_back(b, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  // A later duplicate of the same content keeps the first token, as HF's
  // vocabulary map does for repeated contents.
  if (nodes_[node].token < 0)
    nodes_[node].token = static_cast<int32_t>(tokenIndex);
  firstByte_[static_cast<uint8_t>(content[0])] = true;
}

void TokenMatcher::cut(std::string_view text, const std::vector<AddedToken> &tokens,
                       std::vector<Cut> &out) const {
  size_t startOffset = 0, pos = 0, n = text.size();
  while (pos < n) {
    if (!firstByte_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    // Longest token starting here.
    uint32_t node = 0;
    int32_t best = -1;
    size_t bestEnd = 0;
    for (size_t i = pos; i < n; ++i) {
      uint8_t b = static_cast<uint8_t>(text[i]);
      uint32_t child = 0;
      for (const auto &[byte, index] : nodes_[node].next)
        if (byte == b) {
          child = index;
          break;
        }
      if (!child)
        break;
      node = child;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        bestEnd = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken &token = tokens[best];
    size_t start = pos, stop = bestEnd;
    if (token.singleWord) {
      bool startOk = start == 0 || !isWordChar(lastCodePoint(text, start));
      size_t after = stop;
      bool stopOk = stop == n || !isWordChar(unicode::decodeUtf8(text, after));
      if (!startOk || !stopOk) {
        pos = stop; // the automaton resumes after a rejected match
        continue;
      }
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > startOffset && unicode::isWhiteSpace(lastCodePoint(text, s))) {
        size_t prev = s - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80)
          --prev;
        s = prev;
      }
      start = s;
    }
    if (token.rstrip) {
      size_t s = stop;
      while (s < n) {
        size_t next = s;
        if (!unicode::isWhiteSpace(unicode::decodeUtf8(text, next)))
          break;
        s = next;
      }
      stop = s;
    }
    if (startOffset < start)
      out.push_back({-1, static_cast<uint32_t>(startOffset), static_cast<uint32_t>(start)});
    out.push_back({token.id, static_cast<uint32_t>(start), static_cast<uint32_t>(stop)});
    startOffset = stop;
    pos = stop;
  }
  if (startOffset < n)
    out.push_back({-1, static_cast<uint32_t>(startOffset), static_cast<uint32_t>(n)});
}

} // namespace m2c::tokenizer
