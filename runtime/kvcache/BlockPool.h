//===- BlockPool.h - Ref-counted KV blocks with an LRU prefix cache -*- C++ -*-===//
//
// Host-side bookkeeping for a paged KV cache, modelled on vLLM v1's
// block_pool.py. The pool owns no KV storage: it hands out block ids that
// index an arena owned by the backend. Per-sequence block tables live in
// KvCacheManager; the pool only knows ids, reference counts, the free list
// and which blocks hold a cached (reusable) full-block prefix.
//
// Invariants (checked by checkInvariants()):
//  1. Block 0 is the null block: never allocated, never free, never cached;
//     block tables pad with it.
//  2. A block is in the free list iff its reference count is 0, so
//     numFreeBlocks() + (blocks with refcount > 0) == numBlocks() - 1.
//  3. The free list is ordered: allocate() takes from the head, free()
//     appends to the tail. A fresh pool hands out 1, 2, 3, ... in order.
//  4. allocate(n) is all-or-nothing: on shortage it returns an error and the
//     pool (free-list order included) is unchanged.
//  5. Cached blocks stay cached at refcount 0 (lazy eviction): a cached block
//     loses its hash only when it reaches the head of the free list and is
//     allocated, so eviction is LRU by release time.
//  6. The hash index maps each hash to exactly one block, and a block is in
//     the index iff it is cached; a cached block records its tokens and the
//     (block, cacheId) of its parent, so a lookup hit is exact, never a hash
//     collision.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_KVCACHE_BLOCKPOOL_H
#define M2C_RUNTIME_KVCACHE_BLOCKPOOL_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace m2c {

/// The hash of the empty prefix for a given block size; the first block of
/// every sequence chains from it. Including the block size keeps hashes of
/// differently-blocked caches apart.
uint64_t rootBlockHash(int32_t blockSize);

/// Deterministic 64-bit hash of one full block: chains the parent block's
/// hash with the block's token ids, so it encodes content and position.
/// Portable across compilers and standard libraries (splitmix64 mixing, no
/// std::hash).
uint64_t hashBlockTokens(uint64_t parentHash, const int32_t *tokenIds,
                         int32_t numTokens);

/// Names one caching of one block. cacheId is unique over the pool's
/// lifetime (0 = not cached), so a stale reference to a block that has since
/// been evicted and reused never matches. {0, 0} is the root (empty prefix).
struct CachedBlockRef {
  int32_t block = 0;
  uint64_t cacheId = 0;
  bool operator==(const CachedBlockRef &o) const {
    return block == o.block && cacheId == o.cacheId;
  }
};

class BlockPool {
public:
  /// `numBlocks` counts the null block, so at most numBlocks - 1 blocks are
  /// ever handed out. Fails on numBlocks < 2 or blockSize < 1.
  static StatusOr<BlockPool> create(int32_t numBlocks, int32_t blockSize,
                                    bool enablePrefixCaching);

  int32_t numBlocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t blockSize() const { return blockSize_; }
  bool prefixCachingEnabled() const { return enableCaching_; }
  int32_t numFreeBlocks() const { return numFree_; }
  int32_t refCount(int32_t block) const;
  bool isCached(int32_t block) const;
  /// 0 when the block is not cached.
  uint64_t cacheIdOf(int32_t block) const;
  /// Hash of a cached block; meaningless when not cached.
  uint64_t hashOf(int32_t block) const;

  /// Takes `n` blocks from the head of the free list, evicting any cached
  /// prefix they held, each with refcount 1. All-or-nothing.
  StatusOr<std::vector<int32_t>> allocate(int32_t n);

  /// Drops one reference to each block of a block table (given in table
  /// order). Blocks that reach refcount 0 are appended to the free-list tail
  /// in *reverse* table order, so a released sequence's last block is evicted
  /// before its first: later blocks extend longer prefixes and are less
  /// likely to be shared. Block 0 entries are ignored.
  void free(const std::vector<int32_t> &blocks);

  /// Adds a reference to each block, taking refcount-0 (cached) blocks out
  /// of the free list.
  void touch(const std::vector<int32_t> &blocks);

  /// Longest run of cached full blocks matching the first `numTokens` token
  /// ids, without touching them. Partial trailing blocks never match.
  std::vector<int32_t> findCachedPrefix(const int32_t *tokenIds,
                                        int64_t numTokens) const;
  /// findCachedPrefix, then touch() the hits; the caller owns a reference
  /// to each returned block and must free() them.
  std::vector<int32_t> lookupPrefix(const int32_t *tokenIds,
                                    int64_t numTokens);
  std::vector<int32_t> lookupPrefix(const std::vector<int32_t> &tokenIds) {
    return lookupPrefix(tokenIds.data(),
                        static_cast<int64_t>(tokenIds.size()));
  }

  /// The cached block holding `tokenIds` (blockSize of them) directly after
  /// `parent`, or {0, 0}.
  CachedBlockRef findCachedBlock(CachedBlockRef parent,
                                 const int32_t *tokenIds) const;

  /// Offers full block `block`, whose KV now holds `tokenIds` (blockSize of
  /// them) following `parent`, to the prefix cache. Returns the block that
  /// represents this prefix in the cache from now on: `block` itself, or an
  /// existing cached block with identical prefix (which stays canonical).
  /// Returns {0, 0} when caching is disabled or `parent` is no longer cached
  /// (its chain was evicted), in which case nothing is cached.
  CachedBlockRef cacheBlock(int32_t block, CachedBlockRef parent,
                            const int32_t *tokenIds);

  /// Free-list contents from head (next to allocate) to tail.
  std::vector<int32_t> freeListOrder() const;

  Status checkInvariants() const;

private:
  struct Block {
    int32_t refCount = 0;
    // Intrusive free-list links; -1 = none. Makes touching a cached block
    // in the middle of the list O(1), like vLLM's FreeKVCacheBlockQueue.
    int32_t prev = -1;
    int32_t next = -1;
    bool inFreeList = false;
    uint64_t cacheId = 0; // 0 = not cached
    uint64_t hash = 0;
    CachedBlockRef parent;
    std::vector<int32_t> tokens; // the block's token ids while cached
  };

  BlockPool(int32_t numBlocks, int32_t blockSize, bool enablePrefixCaching);
  void pushBack(int32_t block);
  void unlink(int32_t block);
  void uncache(int32_t block);
  uint64_t parentHash(CachedBlockRef parent) const;
  bool isLive(CachedBlockRef ref) const;

  std::vector<Block> blocks_;
  int32_t blockSize_ = 0;
  bool enableCaching_ = false;
  int32_t head_ = -1;
  int32_t tail_ = -1;
  int32_t numFree_ = 0;
  uint64_t nextCacheId_ = 1;
  std::unordered_map<uint64_t, int32_t> hashToBlock_;
};

} // namespace m2c

#endif // M2C_RUNTIME_KVCACHE_BLOCKPOOL_H
