// Unit tests for BlockPool: exact block ids through allocation, free order, caching and eviction.
#include "runtime/kvcache/BlockPool.h"

#include <gtest/gtest.h>

#include <vector>

using namespace m2c;
using Ids = std::vector<int32_t>;

namespace {

BlockPool makePool(int32_t numBlocks, int32_t blockSize = 4,
                   bool caching = true) {
  StatusOr<BlockPool> pool = BlockPool::create(numBlocks, blockSize, caching);
  EXPECT_TRUE(pool.isOk()) << pool.status().message();
  return pool.take();
}

Ids alloc(BlockPool &pool, int32_t n) {
  StatusOr<Ids> ids = pool.allocate(n);
  EXPECT_TRUE(ids.isOk()) << ids.status().message();
  return ids.isOk() ? ids.take() : Ids();
}

#define EXPECT_INVARIANTS(pool)                                                \
  do {                                                                         \
    Status s_ = (pool).checkInvariants();                                      \
    EXPECT_TRUE(s_.isOk()) << s_.message();                                    \
  } while (0)

} // namespace

TEST(BlockPoolTest, CreateRejectsBadSizes) {
  StatusOr<BlockPool> one = BlockPool::create(1, 4, true);
  ASSERT_FALSE(one.isOk());
  EXPECT_EQ(one.status().message(),
            "kv cache needs at least 2 blocks (block 0 is the null block), "
            "got num_blocks = 1");
  StatusOr<BlockPool> zeroSize = BlockPool::create(8, 0, true);
  ASSERT_FALSE(zeroSize.isOk());
  EXPECT_EQ(zeroSize.status().message(),
            "kv cache block_size must be >= 1, got 0");
}

TEST(BlockPoolTest, FreshPoolHandsOutBlocksInOrder) {
  BlockPool pool = makePool(8);
  EXPECT_EQ(pool.numFreeBlocks(), 7);
  EXPECT_EQ(pool.freeListOrder(), (Ids{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(alloc(pool, 3), (Ids{1, 2, 3}));
  EXPECT_EQ(alloc(pool, 2), (Ids{4, 5}));
  EXPECT_EQ(pool.numFreeBlocks(), 2);
  EXPECT_EQ(pool.refCount(1), 1);
  EXPECT_EQ(alloc(pool, 0), Ids{});
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, NullBlockIsNeverHandedOut) {
  BlockPool pool = makePool(4);
  EXPECT_EQ(alloc(pool, 3), (Ids{1, 2, 3}));
  StatusOr<Ids> more = pool.allocate(1);
  ASSERT_FALSE(more.isOk());
  EXPECT_EQ(more.status().message(), "kv cache exhausted: need 1 blocks, 0 free");
  EXPECT_EQ(pool.refCount(0), 0);
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, ExhaustionIsAllOrNothing) {
  BlockPool pool = makePool(6);
  Ids a = alloc(pool, 3);
  pool.free({a[1]}); // free list: 4 5 2
  EXPECT_EQ(pool.freeListOrder(), (Ids{4, 5, 2}));
  StatusOr<Ids> big = pool.allocate(4);
  ASSERT_FALSE(big.isOk());
  EXPECT_EQ(big.status().message(), "kv cache exhausted: need 4 blocks, 3 free");
  EXPECT_EQ(pool.freeListOrder(), (Ids{4, 5, 2}));
  EXPECT_EQ(alloc(pool, 3), (Ids{4, 5, 2}));
  StatusOr<Ids> negative = pool.allocate(-1);
  ASSERT_FALSE(negative.isOk());
  EXPECT_EQ(negative.status().message(),
            "cannot allocate a negative number of kv blocks (-1)");
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, FreeAppendsInReverseTableOrder) {
  BlockPool pool = makePool(8);
  Ids table = alloc(pool, 3); // 1 2 3
  pool.free(table);
  // The sequence's last block goes out first, its first block last.
  EXPECT_EQ(pool.freeListOrder(), (Ids{4, 5, 6, 7, 3, 2, 1}));
  EXPECT_EQ(alloc(pool, 5), (Ids{4, 5, 6, 7, 3}));
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, SharedBlockReturnsOnLastReference) {
  BlockPool pool = makePool(4);
  Ids table = alloc(pool, 2); // 1 2
  pool.touch({1});
  EXPECT_EQ(pool.refCount(1), 2);
  pool.free(table);
  EXPECT_EQ(pool.refCount(1), 1);
  EXPECT_EQ(pool.freeListOrder(), (Ids{3, 2}));
  pool.free({1});
  EXPECT_EQ(pool.freeListOrder(), (Ids{3, 2, 1}));
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, HashIsPinnedAndChainsContentAndPosition) {
  const int32_t tokens[4] = {1, 2, 3, 4};
  const int32_t other[4] = {1, 2, 3, 5};
  uint64_t root = rootBlockHash(4);
  uint64_t h = hashBlockTokens(root, tokens, 4);
  // Pinned: the hash must not change across platforms or releases.
  EXPECT_EQ(root, 0x4bb9f7ca4084a6ddULL);
  EXPECT_EQ(h, 0xf37e61bb25ae7734ULL);
  EXPECT_NE(hashBlockTokens(root, other, 4), h);
  EXPECT_NE(hashBlockTokens(h, tokens, 4), h); // same tokens, next position
  EXPECT_NE(rootBlockHash(8), root);
}

TEST(BlockPoolTest, CachedBlockSurvivesFreeUntilEvicted) {
  BlockPool pool = makePool(5);
  const int32_t tokens[4] = {7, 8, 9, 10};
  Ids table = alloc(pool, 1); // 1
  CachedBlockRef ref = pool.cacheBlock(1, {}, tokens);
  EXPECT_EQ(ref.block, 1);
  EXPECT_NE(ref.cacheId, 0u);
  pool.free(table);
  EXPECT_EQ(pool.freeListOrder(), (Ids{2, 3, 4, 1}));
  EXPECT_TRUE(pool.isCached(1));

  // A hit takes the block out of the middle of the free list.
  EXPECT_EQ(pool.lookupPrefix({7, 8, 9, 10, 11}), Ids{1});
  EXPECT_EQ(pool.refCount(1), 1);
  EXPECT_EQ(pool.freeListOrder(), (Ids{2, 3, 4}));
  pool.free({1});
  EXPECT_EQ(pool.freeListOrder(), (Ids{2, 3, 4, 1}));

  // Allocation reaches block 1 last and only then evicts its prefix.
  EXPECT_EQ(alloc(pool, 3), (Ids{2, 3, 4}));
  EXPECT_TRUE(pool.isCached(1));
  EXPECT_EQ(alloc(pool, 1), Ids{1});
  EXPECT_FALSE(pool.isCached(1));
  EXPECT_EQ(pool.findCachedPrefix(tokens, 4), Ids{});
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, LookupVerifiesTokensAndParent) {
  BlockPool pool = makePool(8, 2);
  const int32_t a[2] = {1, 2};
  const int32_t b[2] = {3, 4};
  Ids table = alloc(pool, 2); // 1 2
  CachedBlockRef r1 = pool.cacheBlock(1, {}, a);
  CachedBlockRef r2 = pool.cacheBlock(2, r1, b);
  EXPECT_EQ(r2.block, 2);
  EXPECT_EQ(pool.findCachedBlock(r1, b), r2);
  EXPECT_EQ(pool.findCachedBlock({}, b), CachedBlockRef{}); // wrong position
  EXPECT_EQ(pool.findCachedPrefix(std::vector<int32_t>{1, 2, 3, 4}.data(), 4),
            (Ids{1, 2}));
  EXPECT_EQ(pool.findCachedPrefix(std::vector<int32_t>{1, 2, 3, 5}.data(), 4),
            Ids{1});
  EXPECT_EQ(pool.findCachedPrefix(std::vector<int32_t>{1, 2, 3}.data(), 3),
            Ids{1}); // a partial block never matches
  // A stale parent reference (old cache id) never matches.
  EXPECT_EQ(pool.findCachedBlock({1, r1.cacheId + 100}, b), CachedBlockRef{});
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, DuplicateBlockKeepsTheFirst) {
  BlockPool pool = makePool(8, 2);
  const int32_t a[2] = {1, 2};
  Ids table = alloc(pool, 2); // 1 2
  CachedBlockRef first = pool.cacheBlock(1, {}, a);
  CachedBlockRef second = pool.cacheBlock(2, {}, a);
  EXPECT_EQ(second, first);
  EXPECT_FALSE(pool.isCached(2));
  EXPECT_INVARIANTS(pool);
}

TEST(BlockPoolTest, CachingDisabledCachesNothing) {
  BlockPool pool = makePool(8, 2, /*caching=*/false);
  const int32_t a[2] = {1, 2};
  Ids table = alloc(pool, 1);
  EXPECT_EQ(pool.cacheBlock(1, {}, a), CachedBlockRef{});
  EXPECT_FALSE(pool.isCached(1));
  EXPECT_EQ(pool.findCachedPrefix(a, 2), Ids{});
  EXPECT_INVARIANTS(pool);
}
