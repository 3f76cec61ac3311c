// Unit tests for KvCacheManager: exact block tables through add, append, commit, free and prefix reuse.
#include "runtime/kvcache/KvCacheManager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

using namespace m2c;
using Ids = std::vector<int32_t>;

namespace {

KvCacheManager makeManager(int32_t numBlocks, int32_t blockSize = 4,
                           bool caching = true) {
  KvCacheConfig config;
  config.numBlocks = numBlocks;
  config.blockSize = blockSize;
  config.enablePrefixCaching = caching;
  StatusOr<KvCacheManager> m = KvCacheManager::create(config);
  EXPECT_TRUE(m.isOk()) << m.status().message();
  return m.take();
}

/// Tokens first, first+1, ..., first+n-1.
Ids iota(int32_t first, int32_t n) {
  Ids v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

Ids concat(Ids a, const Ids &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

int64_t add(KvCacheManager &m, SeqId id, const Ids &prompt) {
  StatusOr<int64_t> cached = m.addSequence(id, prompt);
  EXPECT_TRUE(cached.isOk()) << cached.status().message();
  return cached.isOk() ? *cached : -1;
}

Ids table(const KvCacheManager &m, SeqId id) {
  StatusOr<Ids> t = m.blockTable(id);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return t.isOk() ? t.take() : Ids{-1};
}

#define EXPECT_OK(expr)                                                        \
  do {                                                                         \
    Status s_ = (expr);                                                        \
    EXPECT_TRUE(s_.isOk()) << s_.message();                                    \
  } while (0)

#define EXPECT_ERROR(expr, msg)                                                \
  do {                                                                         \
    Status s_ = (expr);                                                        \
    ASSERT_FALSE(s_.isOk());                                                   \
    EXPECT_EQ(s_.message(), msg);                                              \
  } while (0)

#define EXPECT_INVARIANTS(m) EXPECT_OK((m).checkInvariants())

} // namespace

TEST(KvCacheManagerTest, CreateRejectsBadConfig) {
  KvCacheConfig config; // numBlocks left at 0
  StatusOr<KvCacheManager> m = KvCacheManager::create(config);
  ASSERT_FALSE(m.isOk());
  EXPECT_EQ(m.status().message(),
            "kv cache needs at least 2 blocks (block 0 is the null block), "
            "got num_blocks = 0");
}

TEST(KvCacheManagerTest, AddSequenceAllocatesPromptSlots) {
  KvCacheManager m = makeManager(10);
  EXPECT_EQ(add(m, 1, iota(0, 10)), 0);
  EXPECT_EQ(table(m, 1), (Ids{1, 2, 3}));
  EXPECT_EQ(*m.numSlots(1), 10);
  EXPECT_EQ(*m.numCommittedTokens(1), 0);
  EXPECT_EQ(m.numFreeBlocks(), 6);

  StatusOr<KvSlot> first = m.slotFor(1, 0);
  ASSERT_TRUE(first.isOk());
  EXPECT_EQ(first->block, 1);
  EXPECT_EQ(first->offset, 0);
  StatusOr<KvSlot> last = m.slotFor(1, 9);
  ASSERT_TRUE(last.isOk());
  EXPECT_EQ(last->block, 3);
  EXPECT_EQ(last->offset, 1);
  EXPECT_EQ(last->flatIndex(m.blockSize()), 13);
  StatusOr<KvSlot> past = m.slotFor(1, 10);
  ASSERT_FALSE(past.isOk());
  EXPECT_EQ(past.status().message(),
            "sequence 1: position 10 is outside its 10 slots");
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, AppendSlotsAllocatesAtBlockBoundaries) {
  KvCacheManager m = makeManager(10);
  add(m, 1, iota(0, 4));
  EXPECT_EQ(table(m, 1), Ids{1});
  EXPECT_EQ(*m.numBlocksNeeded(1, 1), 1);
  EXPECT_OK(m.appendSlots(1, 1));
  EXPECT_EQ(table(m, 1), (Ids{1, 2}));
  EXPECT_EQ(*m.numBlocksNeeded(1, 3), 0);
  EXPECT_OK(m.appendSlots(1, 3));
  EXPECT_EQ(table(m, 1), (Ids{1, 2}));
  EXPECT_OK(m.appendSlots(1, 0));
  EXPECT_OK(m.appendSlots(1, 1));
  EXPECT_EQ(table(m, 1), (Ids{1, 2, 3}));
  EXPECT_EQ(*m.numSlots(1), 9);
  EXPECT_ERROR(m.appendSlots(1, -2),
               "sequence 1: invalid number of new tokens (-2)");
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, PaddedBlockTable) {
  KvCacheManager m = makeManager(10);
  add(m, 1, iota(0, 6));
  int32_t row[4] = {-1, -1, -1, -1};
  EXPECT_OK(m.fillBlockTable(1, 4, row));
  EXPECT_EQ(Ids(row, row + 4), (Ids{1, 2, 0, 0}));
  EXPECT_ERROR(m.fillBlockTable(1, 1, row),
               "sequence 1 holds 2 blocks, more than the block table width 1");
}

TEST(KvCacheManagerTest, ExhaustionChangesNothing) {
  KvCacheManager m = makeManager(5); // 4 usable blocks
  add(m, 1, iota(0, 8));              // 1 2
  add(m, 2, iota(100, 4));            // 3
  const Ids freeBefore = m.pool().freeListOrder();
  EXPECT_EQ(freeBefore, Ids{4});

  EXPECT_ERROR(m.appendSlots(2, 8), "kv cache exhausted: need 2 blocks, 1 free");
  EXPECT_EQ(table(m, 1), (Ids{1, 2}));
  EXPECT_EQ(table(m, 2), Ids{3});
  EXPECT_EQ(*m.numSlots(2), 4);

  StatusOr<int64_t> third = m.addSequence(3, iota(200, 12));
  ASSERT_FALSE(third.isOk());
  EXPECT_EQ(third.status().message(),
            "kv cache exhausted: need 3 blocks, 1 free");
  EXPECT_FALSE(m.hasSequence(3));
  EXPECT_EQ(table(m, 1), (Ids{1, 2}));
  EXPECT_EQ(table(m, 2), Ids{3});
  EXPECT_EQ(m.pool().freeListOrder(), freeBefore);
  EXPECT_INVARIANTS(m);

  // What does fit still works afterwards.
  EXPECT_OK(m.appendSlots(2, 4));
  EXPECT_EQ(table(m, 2), (Ids{3, 4}));
  EXPECT_EQ(m.numFreeBlocks(), 0);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, FreeSequenceReturnsBlocksTailFirst) {
  KvCacheManager m = makeManager(8);
  add(m, 1, iota(0, 12)); // 1 2 3
  add(m, 2, iota(50, 4)); // 4
  EXPECT_OK(m.freeSequence(1));
  EXPECT_FALSE(m.hasSequence(1));
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{5, 6, 7, 3, 2, 1}));
  add(m, 3, iota(100, 16));
  EXPECT_EQ(table(m, 3), (Ids{5, 6, 7, 3}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, UnknownSequenceIsAnError) {
  KvCacheManager m = makeManager(8);
  EXPECT_ERROR(m.appendSlots(42, 1), "unknown sequence 42");
  EXPECT_ERROR(m.commitTokens(42, {1}), "unknown sequence 42");
  EXPECT_ERROR(m.freeSequence(42), "unknown sequence 42");
  EXPECT_FALSE(m.slotFor(42, 0).isOk());
  EXPECT_FALSE(m.blockTable(42).isOk());
  EXPECT_FALSE(m.numSlots(42).isOk());
  EXPECT_FALSE(m.numBlocksNeeded(42, 1).isOk());
  int32_t row[2];
  EXPECT_ERROR(m.fillBlockTable(42, 2, row), "unknown sequence 42");

  add(m, 1, iota(0, 3));
  StatusOr<int64_t> again = m.addSequence(1, iota(0, 3));
  ASSERT_FALSE(again.isOk());
  EXPECT_EQ(again.status().message(), "sequence 1 already exists");
  EXPECT_EQ(table(m, 1), Ids{1});
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, CommitPastSlotsIsAnError) {
  KvCacheManager m = makeManager(8);
  add(m, 1, iota(0, 5));
  EXPECT_OK(m.commitTokens(1, iota(0, 3)));
  EXPECT_ERROR(m.commitTokens(1, iota(3, 3)),
               "sequence 1: committing 3 tokens at position 3 exceeds its 5 "
               "slots");
  EXPECT_EQ(*m.numCommittedTokens(1), 3);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, BlockIsCachedOnceItsLastTokenIsCommitted) {
  KvCacheManager m = makeManager(8);
  add(m, 1, iota(0, 6)); // 1 2
  EXPECT_OK(m.commitTokens(1, iota(0, 3)));
  EXPECT_FALSE(m.pool().isCached(1));
  EXPECT_OK(m.commitTokens(1, iota(3, 2)));
  EXPECT_TRUE(m.pool().isCached(1));
  EXPECT_FALSE(m.pool().isCached(2)); // partial
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, PrefixHitSharesBlocks) {
  KvCacheManager m = makeManager(16);
  const Ids prompt = iota(0, 10);
  EXPECT_EQ(add(m, 1, prompt), 0);
  EXPECT_EQ(table(m, 1), (Ids{1, 2, 3}));
  EXPECT_OK(m.commitTokens(1, prompt));

  EXPECT_EQ(add(m, 2, prompt), 8);
  EXPECT_EQ(table(m, 2), (Ids{1, 2, 4}));
  EXPECT_EQ(*m.numCommittedTokens(2), 8);
  EXPECT_EQ(m.pool().refCount(1), 2);
  EXPECT_EQ(m.pool().refCount(2), 2);
  EXPECT_EQ(m.pool().refCount(3), 1);
  EXPECT_EQ(m.pool().refCount(4), 1);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, PrefixMissOnChangedToken) {
  KvCacheManager m = makeManager(16);
  const Ids prompt = iota(0, 10);
  add(m, 1, prompt); // 1 2 3
  EXPECT_OK(m.commitTokens(1, prompt));

  Ids secondBlockChanged = prompt;
  secondBlockChanged[5] = 99;
  EXPECT_EQ(add(m, 2, secondBlockChanged), 4);
  EXPECT_EQ(table(m, 2), (Ids{1, 4, 5}));

  Ids firstBlockChanged = prompt;
  firstBlockChanged[0] = 99;
  EXPECT_EQ(add(m, 3, firstBlockChanged), 0);
  EXPECT_EQ(table(m, 3), (Ids{6, 7, 8}));

  // Same tokens one block later: position is part of the hash.
  EXPECT_EQ(add(m, 4, concat(iota(50, 4), prompt)), 0);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, PrefixHitNeverCoversTheWholePrompt) {
  KvCacheManager m = makeManager(16);
  const Ids prompt = iota(0, 8);
  add(m, 1, prompt); // 1 2
  EXPECT_OK(m.commitTokens(1, prompt));
  // Both blocks are cached, but the last token must be recomputed for its
  // logits, so only the first block is reused.
  EXPECT_EQ(add(m, 2, prompt), 4);
  EXPECT_EQ(table(m, 2), (Ids{1, 3}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, CachedBlocksOutliveTheirSequence) {
  KvCacheManager m = makeManager(8);
  const Ids prompt = iota(0, 9);
  add(m, 1, prompt); // 1 2 3
  EXPECT_OK(m.commitTokens(1, prompt));
  EXPECT_OK(m.freeSequence(1));
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{4, 5, 6, 7, 3, 2, 1}));

  EXPECT_EQ(add(m, 2, prompt), 8);
  EXPECT_EQ(table(m, 2), (Ids{1, 2, 4}));
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{5, 6, 7, 3}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, LruEvictionOrder) {
  KvCacheManager m = makeManager(7); // 6 usable blocks
  const Ids p = iota(0, 9), q = iota(100, 9);
  add(m, 1, p); // 1 2 3
  add(m, 2, q); // 4 5 6
  EXPECT_OK(m.commitTokens(1, p));
  EXPECT_OK(m.commitTokens(2, q));
  EXPECT_OK(m.freeSequence(1));
  EXPECT_OK(m.freeSequence(2));
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{3, 2, 1, 6, 5, 4}));

  // An unrelated prompt evicts from the head: p's partial block 3, then p's
  // second block 2; p's first block survives.
  EXPECT_EQ(add(m, 3, iota(200, 8)), 0);
  EXPECT_EQ(table(m, 3), (Ids{3, 2}));
  EXPECT_FALSE(m.pool().isCached(2));
  EXPECT_TRUE(m.pool().isCached(1));

  // p now hits its first block only; the two new blocks evict q's tail.
  EXPECT_EQ(add(m, 4, p), 4);
  EXPECT_EQ(table(m, 4), (Ids{1, 6, 5}));
  EXPECT_FALSE(m.pool().isCached(5));
  EXPECT_TRUE(m.pool().isCached(4));
  EXPECT_EQ(m.pool().freeListOrder(), Ids{4});

  // q would reuse block 4 but needs two more: nothing changes, block 4 stays
  // free and cached.
  StatusOr<int64_t> r = m.addSequence(5, q);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "kv cache exhausted: need 3 blocks, 1 free");
  EXPECT_EQ(m.pool().freeListOrder(), Ids{4});
  EXPECT_TRUE(m.pool().isCached(4));
  EXPECT_EQ(m.pool().refCount(4), 0);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, RefcountsFollowSharingAcrossFrees) {
  KvCacheManager m = makeManager(10);
  const Ids p = iota(0, 12);
  add(m, 1, p); // 1 2 3
  EXPECT_OK(m.commitTokens(1, p));
  // Shares p's first two blocks, then diverges.
  EXPECT_EQ(add(m, 2, concat(iota(0, 8), iota(500, 5))), 8);
  EXPECT_EQ(table(m, 2), (Ids{1, 2, 4, 5}));
  EXPECT_EQ(m.pool().refCount(1), 2);
  EXPECT_EQ(m.pool().refCount(2), 2);
  EXPECT_EQ(m.pool().refCount(3), 1);

  EXPECT_OK(m.freeSequence(1));
  EXPECT_EQ(m.pool().refCount(1), 1);
  EXPECT_EQ(m.pool().refCount(2), 1);
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{6, 7, 8, 9, 3}));
  EXPECT_EQ(table(m, 2), (Ids{1, 2, 4, 5}));
  EXPECT_INVARIANTS(m);

  EXPECT_OK(m.freeSequence(2));
  EXPECT_EQ(m.pool().freeListOrder(), (Ids{6, 7, 8, 9, 3, 5, 4, 2, 1}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, ExhaustionWithPrefixHitLeavesOthersAlone) {
  KvCacheManager m = makeManager(5); // 4 usable
  const Ids p = iota(0, 9);
  add(m, 1, p); // 1 2 3
  EXPECT_OK(m.commitTokens(1, p));
  // Hits 1 2 (held by seq 1) but needs 2 new blocks with 1 free.
  StatusOr<int64_t> r = m.addSequence(2, concat(iota(0, 8), iota(70, 5)));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "kv cache exhausted: need 2 blocks, 1 free");
  EXPECT_EQ(table(m, 1), (Ids{1, 2, 3}));
  EXPECT_EQ(m.pool().refCount(1), 1);
  EXPECT_EQ(m.pool().refCount(2), 1);
  EXPECT_EQ(m.pool().freeListOrder(), Ids{4});
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, DuplicateComputationChainsThroughTheFirstCopy) {
  KvCacheManager m = makeManager(12);
  const Ids p = iota(0, 13);
  add(m, 1, p); // 1 2 3 4 (computed concurrently, nothing cached yet)
  add(m, 2, p); // 5 6 7 8
  EXPECT_OK(m.commitTokens(1, iota(0, 4)));     // caches block 1
  EXPECT_OK(m.commitTokens(2, p));              // 5 duplicates 1; 6, 7 cached
  EXPECT_OK(m.commitTokens(1, iota(4, 9)));     // 2, 3 duplicate 6, 7
  EXPECT_TRUE(m.pool().isCached(1));
  EXPECT_FALSE(m.pool().isCached(5));
  EXPECT_TRUE(m.pool().isCached(6));
  EXPECT_TRUE(m.pool().isCached(7));
  EXPECT_FALSE(m.pool().isCached(2));
  EXPECT_FALSE(m.pool().isCached(3));

  EXPECT_EQ(add(m, 3, p), 12);
  EXPECT_EQ(table(m, 3), (Ids{1, 6, 7, 9}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, EvictedParentStopsCachingButNeverMisleads) {
  KvCacheManager m = makeManager(6); // 5 usable
  const Ids p = iota(0, 8);
  add(m, 1, p);                        // 1 2
  add(m, 2, p);                        // 3 4
  EXPECT_OK(m.commitTokens(1, iota(0, 4))); // caches 1
  EXPECT_OK(m.commitTokens(2, iota(0, 4))); // 3 duplicates 1 -> chain via 1
  EXPECT_OK(m.freeSequence(1));             // free: 5 2 1
  add(m, 3, iota(300, 12));                 // takes 5 2 1: evicts block 1
  EXPECT_FALSE(m.pool().isCached(1));
  EXPECT_OK(m.commitTokens(2, iota(4, 4))); // parent gone: 4 not cached
  EXPECT_FALSE(m.pool().isCached(4));
  EXPECT_OK(m.freeSequence(3));
  EXPECT_EQ(add(m, 4, p), 0);
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, PrefixCachingDisabled) {
  KvCacheManager m = makeManager(16, 4, /*caching=*/false);
  const Ids p = iota(0, 10);
  add(m, 1, p);
  EXPECT_OK(m.commitTokens(1, p));
  EXPECT_FALSE(m.pool().isCached(1));
  EXPECT_EQ(add(m, 2, p), 0);
  EXPECT_EQ(table(m, 2), (Ids{4, 5, 6}));
  EXPECT_INVARIANTS(m);
}

TEST(KvCacheManagerTest, EmptyPromptHoldsNoBlocks) {
  KvCacheManager m = makeManager(4);
  EXPECT_EQ(add(m, 1, {}), 0);
  EXPECT_EQ(table(m, 1), Ids{});
  EXPECT_OK(m.appendSlots(1, 1));
  EXPECT_EQ(table(m, 1), Ids{1});
  EXPECT_INVARIANTS(m);
}
