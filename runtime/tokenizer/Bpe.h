//===- Bpe.h - BPE model: vocabulary, merge ranks, per-word merging -*- C++ -*-===//
//
// Merging follows Hugging Face's Word::merge_all: a min-heap of candidate
// pairs ordered by (rank, position) over a linked list of symbols, with
// stale heap entries skipped. Ranks live in an open-addressing hash map
// keyed by the pair of ids, so a lookup is one multiply and a probe or two.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_BPE_H
#define M2C_RUNTIME_TOKENIZER_BPE_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace m2c::tokenizer {

/// (left id, right id) -> (rank, merged id), open addressing.
class MergeMap {
public:
  void reserve(size_t count);
  /// Inserts or overwrites (a later duplicate merge wins, as in HF).
  void insert(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged);
  /// Returns false when the pair has no merge.
  bool find(uint32_t left, uint32_t right, uint32_t &rank, uint32_t &merged) const {
    if (slots_.empty())
      return false;
    uint64_t key = (uint64_t(left) << 32) | right;
    size_t i = hash(key) & mask_;
    while (true) {
      const Slot &s = slots_[i];
      if (s.key == key && s.used) {
        rank = s.rank;
        merged = s.merged;
        return true;
      }
      if (!s.used)
        return false;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return count_; }

private:
  struct Slot {
    uint64_t key = 0;
    uint32_t rank = 0, merged = 0;
    bool used = false;
  };
  static size_t hash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 20; }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

struct BpeOptions {
  std::string unkToken; // empty: none
  std::string continuingSubwordPrefix;
  std::string endOfWordSuffix;
  bool fuseUnk = false;
  bool byteFallback = false;
  bool ignoreMerges = false;
};

class BpeModel {
public:
  /// vocab: token -> id; merges: pairs of tokens in rank order.
  static StatusOr<BpeModel>
  create(std::unordered_map<std::string, int32_t> vocab,
         const std::vector<std::pair<std::string, std::string>> &merges, BpeOptions options);

  /// Appends the ids of one pre-tokenized word (already byte-level spelled
  /// when the tokenizer is byte-level).
  void tokenize(std::string_view word, std::vector<int32_t> &out) const;

  const std::unordered_map<std::string, int32_t> &vocab() const { return vocab_; }
  const MergeMap &merges() const { return merges_; }

private:
  void mergeWord(std::vector<int32_t> &symbols) const;

  std::unordered_map<std::string, int32_t> vocab_;
  MergeMap merges_;
  BpeOptions options_;
  int32_t unkId_ = -1;
};

} // namespace m2c::tokenizer

#endif // M2C_RUNTIME_TOKENIZER_BPE_H
