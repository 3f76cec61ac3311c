//===- KvCacheManager.h - Per-sequence block tables over a BlockPool -*- C++ -*-===//
//
// The per-sequence half of the paged KV cache, modelled on vLLM v1's
// kv_cache_manager.py: it owns a BlockPool and maps each sequence to an
// append-only block table. Token `p` of a sequence lives in slot
// (table[p / blockSize], p % blockSize) of the backend's KV arena.
//
// Life of a sequence:
//   addSequence(id, prompt)  reuse cached prefix blocks, allocate the rest
//   <backend writes KV for prompt[cached:]>; commitTokens(id, prompt[cached:])
//   loop: appendSlots(id, 1); <write KV of the new token>; commitTokens(id, {t})
//   freeSequence(id)
// commitTokens is what makes a full block shareable: only blocks whose KV has
// been written (and whose token ids are known) enter the prefix cache.
//
// Invariants (checked by checkInvariants(), in addition to BlockPool's):
//  1. Block 0 never appears in a block table; padded tables pad with 0.
//  2. Every block's refcount equals the number of block tables holding it,
//     so a block is free iff no table holds it, and
//     numFreeBlocks() + (blocks held by some table) == numBlocks - 1.
//  3. Block tables are append-only and hold exactly
//     ceil(numSlots / blockSize) blocks; no table holds a block twice.
//  4. Every mutating call is all-or-nothing: on any error (unknown sequence,
//     bad argument, exhaustion) no table, refcount or free-list position
//     changes, in particular no other sequence's table.
//  5. A prefix hit never covers the whole prompt: at least its last token is
//     recomputed so the model produces logits for it.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_KVCACHE_KVCACHEMANAGER_H
#define M2C_RUNTIME_KVCACHE_KVCACHEMANAGER_H

#include "runtime/kvcache/BlockPool.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace m2c {

using SeqId = int64_t;

/// Zero-initialisable apart from the defaults below; numBlocks must be set.
struct KvCacheConfig {
  /// Total blocks in the backend arena, including the null block 0.
  int32_t numBlocks = 0;
  /// Tokens per block.
  int32_t blockSize = 16;
  bool enablePrefixCaching = true;
};

/// Where one token's K/V lives in the arena.
struct KvSlot {
  int32_t block = 0;
  int32_t offset = 0;
  /// Flat slot index (vLLM's slot_mapping entry).
  int64_t flatIndex(int32_t blockSize) const {
    return static_cast<int64_t>(block) * blockSize + offset;
  }
};

class KvCacheManager {
public:
  static StatusOr<KvCacheManager> create(const KvCacheConfig &config);

  /// Registers `seqId` with slots for every prompt token, reusing the longest
  /// cached run of full prompt blocks (never the whole prompt, see
  /// invariant 5). Returns the number of cached tokens, a multiple of
  /// blockSize whose KV is already in the arena and counts as committed.
  StatusOr<int64_t> addSequence(SeqId seqId,
                                const std::vector<int32_t> &promptTokenIds);

  /// Makes room for `numNewTokens` more tokens, allocating blocks as needed.
  /// On exhaustion returns "kv cache exhausted: need N blocks, M free".
  Status appendSlots(SeqId seqId, int64_t numNewTokens);

  /// Blocks appendSlots(seqId, numNewTokens) would take from the free list.
  StatusOr<int64_t> numBlocksNeeded(SeqId seqId, int64_t numNewTokens) const;

  /// Records that the KV of the next `tokenIds.size()` slots has been
  /// written for these token ids; each block this fills is offered to the
  /// prefix cache. Committing past the allocated slots is an error.
  Status commitTokens(SeqId seqId, const std::vector<int32_t> &tokenIds);

  /// Releases the sequence's blocks (see BlockPool::free for the order).
  Status freeSequence(SeqId seqId);

  StatusOr<KvSlot> slotFor(SeqId seqId, int64_t position) const;
  StatusOr<std::vector<int32_t>> blockTable(SeqId seqId) const;
  /// Writes the block table into out[0, width), padding with block 0; fails
  /// when the table has more than `width` blocks.
  Status fillBlockTable(SeqId seqId, int64_t width, int32_t *out) const;
  /// Tokens that have a slot.
  StatusOr<int64_t> numSlots(SeqId seqId) const;
  /// Tokens whose KV has been committed (cached prefix included).
  StatusOr<int64_t> numCommittedTokens(SeqId seqId) const;

  bool hasSequence(SeqId seqId) const { return seqs_.count(seqId) != 0; }
  size_t numSequences() const { return seqs_.size(); }
  int32_t numFreeBlocks() const { return pool_.numFreeBlocks(); }
  int32_t blockSize() const { return pool_.blockSize(); }
  const BlockPool &pool() const { return pool_; }

  Status checkInvariants() const;

private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t numSlots = 0;
    int64_t numCommitted = 0;
    /// Committed token ids of the trailing partial block.
    std::vector<int32_t> pending;
    /// The cached block standing for this sequence's last full block; the
    /// parent link for the next one. May be another sequence's identical
    /// block when this one was computed twice.
    CachedBlockRef cachedTail;
    /// Set once a block could not be cached: later blocks have no cached
    /// parent to hang from.
    bool chainBroken = false;
  };

  explicit KvCacheManager(BlockPool pool) : pool_(std::move(pool)) {}
  StatusOr<Sequence *> find(SeqId seqId);
  StatusOr<const Sequence *> find(SeqId seqId) const;
  int64_t blocksFor(int64_t numTokens) const;

  BlockPool pool_;
  std::unordered_map<SeqId, Sequence> seqs_;
};

} // namespace m2c

#endif // M2C_RUNTIME_KVCACHE_KVCACHEMANAGER_H
