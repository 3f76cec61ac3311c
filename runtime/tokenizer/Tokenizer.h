//===- Tokenizer.h - Hugging Face tokenizer.json: text <-> token ids -*- C++ -*-===//
//
// Loads a BPE tokenizer.json (the byte-level kind GPT-2, Llama 3, Qwen,
// GPT-4o and MiniMax-M2 use) and encodes and decodes exactly like Hugging
// Face `tokenizers`: added/special tokens first, then the normalizer, the
// pre-tokenizer split pattern, byte-level spelling and BPE merges.
//
// Every expected failure (unreadable file, malformed JSON, an unsupported
// component, invalid UTF-8 input) is a Status; nothing throws or aborts.
// encode() is safe to call from several threads; its word cache is used by
// one caller at a time and skipped by the others.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_TOKENIZER_H
#define M2C_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m2c {

struct EncodeOptions {
  /// Apply the post-processor's template (e.g. a leading BOS), like
  /// `tokenizer.encode(text, add_special_tokens=True)`.
  bool addSpecialTokens = false;
};

class Tokenizer {
public:
  ~Tokenizer();
  Tokenizer(Tokenizer &&) noexcept;

  /// Errors are prefixed with the path.
  static StatusOr<std::unique_ptr<Tokenizer>> fromFile(const std::string &path);
  static StatusOr<std::unique_ptr<Tokenizer>> fromJson(std::string_view jsonText);

  /// Fails only on input that is not valid UTF-8.
  StatusOr<std::vector<int32_t>> encode(std::string_view text,
                                        const EncodeOptions &options = {}) const;
  /// The text of `ids`; ids with no token are skipped (as HF does).
  /// Invalid UTF-8 in the decoded bytes becomes U+FFFD.
  std::string decode(const std::vector<int32_t> &ids, bool skipSpecialTokens = false) const;

  std::optional<int32_t> tokenToId(std::string_view token) const;
  /// The vocabulary string of an id (byte-level spelled for model tokens).
  std::optional<std::string> idToToken(int32_t id) const;
  bool hasId(int32_t id) const;
  bool isSpecial(int32_t id) const;
  /// One past the largest id.
  int32_t vocabSize() const;

  /// The bytes `id` contributes to decoded text (possibly a partial UTF-8
  /// sequence), with the separator the decoder puts before it when it is
  /// not the first token. Used by StreamDecoder.
  void appendTokenBytes(int32_t id, bool first, std::string &out) const;

private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Decodes tokens one at a time and returns only complete UTF-8: bytes of a
/// character split across tokens are held back until the character is
/// complete. The concatenation of every push() and finish() equals
/// Tokenizer::decode() of the same ids.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &tokenizer, bool skipSpecialTokens = false)
      : tokenizer_(tokenizer), skipSpecial_(skipSpecialTokens) {}
  /// Text completed by this token (may be empty).
  std::string push(int32_t id);
  /// Whatever is still held back, with U+FFFD for an incomplete character.
  std::string finish();
  /// Bytes currently held back.
  size_t pending() const { return pending_.size(); }

private:
  const Tokenizer &tokenizer_;
  bool skipSpecial_;
  bool first_ = true;
  std::string pending_;
};

/// Lossy UTF-8: each maximal ill-formed subsequence becomes one U+FFFD (the
/// Unicode "substitution of maximal subparts" practice, as Rust's
/// from_utf8_lossy). With `final == false`, an incomplete sequence at the end
/// is left in `bytes` instead of being replaced.
std::string decodeUtf8Lossy(std::string &bytes, bool final);

} // namespace m2c

#endif // M2C_RUNTIME_TOKENIZER_TOKENIZER_H
