//===- Bpe.cpp - BPE model: vocabulary, merge ranks, per-word merging -----===//

#include "runtime/tokenizer/Bpe.h"

#include "runtime/tokenizer/Unicode.h"

#include <algorithm>
#include <cstdio>
#include <queue>

namespace m2c::tokenizer {

void MergeMap::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2)
    capacity *= 2;
  if (capacity <= slots_.size())
    return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot());
  mask_ = capacity - 1;
  count_ = 0;
  for (const Slot &s : old)
    if (s.used)
      insert(uint32_t(s.key >> 32), uint32_t(s.key), s.rank, s.merged);
}

void MergeMap::grow() { reserve(std::max<size_t>(16, count_ * 2)); }

void MergeMap::insert(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged) {
  if ((count_ + 1) * 2 > slots_.size())
    grow();
  uint64_t key = (uint64_t(left) << 32) | right;
  size_t i = hash(key) & mask_;
  while (slots_[i].used && slots_[i].key != key)
    i = (i + 1) & mask_;
  if (!slots_[i].used)
    ++count_;
  slots_[i] = {key, rank, merged, true};
}

StatusOr<BpeModel>
BpeModel::create(std::unordered_map<std::string, int32_t> vocab,
                 const std::vector<std::pair<std::string, std::string>> &merges,
                 BpeOptions options) {
  BpeModel model;
  model.vocab_ = std::move(vocab);
  model.options_ = std::move(options);
  if (!model.options_.unkToken.empty()) {
    auto it = model.vocab_.find(model.options_.unkToken);
    if (it == model.vocab_.end())
      return Status::error("model.unk_token '" + model.options_.unkToken +
                           "' is not in model.vocab");
    model.unkId_ = it->second;
  }
  size_t prefixLen = model.options_.continuingSubwordPrefix.size();
  model.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto &[left, right] = merges[rank];
    auto l = model.vocab_.find(left);
    auto r = model.vocab_.find(right);
    if (l == model.vocab_.end() || r == model.vocab_.end())
      return Status::error("model.merges[" + std::to_string(rank) + "]: '" +
                           (l == model.vocab_.end() ? left : right) + "' is not in model.vocab");
    std::string merged = left + right.substr(std::min(prefixLen, right.size()));
    auto m = model.vocab_.find(merged);
    if (m == model.vocab_.end())
      return Status::error("model.merges[" + std::to_string(rank) + "]: merged token '" + merged +
                           "' is not in model.vocab");
    model.merges_.insert(static_cast<uint32_t>(l->second), static_cast<uint32_t>(r->second),
                         static_cast<uint32_t>(rank), static_cast<uint32_t>(m->second));
  }
  return model;
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t> &out) const {
  if (word.empty())
    return;
  if (options_.ignoreMerges) {
    auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // One symbol per character (with the subword prefix/suffix decorations).
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  int32_t pendingUnk = -1;
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    size_t start = pos;
    unicode::decodeUtf8(word, pos);
    piece.clear();
    if (start > 0)
      piece += options_.continuingSubwordPrefix;
    piece.append(word.substr(start, pos - start));
    if (pos == word.size())
      piece += options_.endOfWordSuffix;
    auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      if (pendingUnk >= 0) {
        symbols.push_back(pendingUnk);
        pendingUnk = -1;
      }
      symbols.push_back(it->second);
      continue;
    }
    if (options_.byteFallback) {
      std::vector<int32_t> bytes;
      bool all = true;
      for (char c : piece) {
        char code[8];
        std::snprintf(code, sizeof(code), "<0x%02X>", static_cast<unsigned char>(c));
        auto b = vocab_.find(code);
        if (b == vocab_.end()) {
          all = false;
          break;
        }
        bytes.push_back(b->second);
      }
      if (all) {
        // Byte-fallback tokens never merge with their neighbours' pending unk.
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unkId_ >= 0) {
      if (pendingUnk >= 0 && !options_.fuseUnk)
        symbols.push_back(pendingUnk);
      pendingUnk = unkId_;
    }
  }
  if (pendingUnk >= 0)
    symbols.push_back(pendingUnk);
  mergeWord(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::mergeWord(std::vector<int32_t> &ids) const {
  size_t n = ids.size();
  if (n < 2)
    return;
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    uint32_t merged;
    bool operator<(const Candidate &o) const {
      // std::priority_queue is a max-heap: invert for (rank, pos) minimum.
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> sym(n);
  for (size_t i = 0; i < n; ++i)
    sym[i] = {ids[i], static_cast<int32_t>(i) - 1,
              i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate> heap(std::less<Candidate>(), std::move(storage));
  uint32_t rank, merged;
  for (size_t i = 0; i + 1 < n; ++i)
    if (merges_.find(ids[i], ids[i + 1], rank, merged))
      heap.push({rank, static_cast<uint32_t>(i), merged});
  while (!heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    Symbol &left = sym[top.pos];
    if (!left.alive || left.next < 0)
      continue;
    Symbol &right = sym[left.next];
    // Skip entries made stale by an earlier merge.
    if (!merges_.find(left.id, right.id, rank, merged) || merged != top.merged)
      continue;
    left.id = static_cast<int32_t>(top.merged);
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0)
      sym[right.next].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0 && merges_.find(sym[left.prev].id, left.id, rank, merged))
      heap.push({rank, static_cast<uint32_t>(left.prev), merged});
    if (left.next >= 0 && merges_.find(left.id, sym[left.next].id, rank, merged))
      heap.push({rank, top.pos, merged});
  }
  ids.clear();
  for (int32_t i = 0; i >= 0; i = sym[i].next)
    ids.push_back(sym[i].id);
}

} // namespace m2c::tokenizer
