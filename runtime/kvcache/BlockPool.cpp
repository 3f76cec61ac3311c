// BlockPool: ref-counted KV block ids, the ordered free list and the prefix-cache index.
#include "runtime/kvcache/BlockPool.h"

#include <algorithm>
#include <string>

namespace m2c {

namespace {

// The splitmix64 finalizer: a bijective, well-avalanching 64-bit mix, so the
// hash is identical on every platform (unlike std::hash).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

} // namespace

uint64_t rootBlockHash(int32_t blockSize) {
  return mix64(0x6D32632D6B762D30ULL /* "m2c-kv-0" */ +
               static_cast<uint64_t>(static_cast<uint32_t>(blockSize)));
}

uint64_t hashBlockTokens(uint64_t parentHash, const int32_t *tokenIds,
                         int32_t numTokens) {
  uint64_t h = mix64(parentHash + kGolden);
  for (int32_t i = 0; i < numTokens; ++i)
    h = mix64(h + kGolden +
              static_cast<uint64_t>(static_cast<uint32_t>(tokenIds[i])));
  return h;
}

StatusOr<BlockPool> BlockPool::create(int32_t numBlocks, int32_t blockSize,
                                      bool enablePrefixCaching) {
  if (numBlocks < 2)
    return Status::error("kv cache needs at least 2 blocks (block 0 is the "
                         "null block), got num_blocks = " +
                         std::to_string(numBlocks));
  if (blockSize < 1)
    return Status::error("kv cache block_size must be >= 1, got " +
                         std::to_string(blockSize));
  return BlockPool(numBlocks, blockSize, enablePrefixCaching);
}

BlockPool::BlockPool(int32_t numBlocks, int32_t blockSize,
                     bool enablePrefixCaching)
    : blocks_(static_cast<size_t>(numBlocks)), blockSize_(blockSize),
      enableCaching_(enablePrefixCaching) {
  for (int32_t b = 1; b < numBlocks; ++b)
    pushBack(b);
}

int32_t BlockPool::refCount(int32_t block) const {
  if (block < 0 || block >= numBlocks())
    return 0;
  return blocks_[block].refCount;
}

bool BlockPool::isCached(int32_t block) const { return cacheIdOf(block) != 0; }

uint64_t BlockPool::cacheIdOf(int32_t block) const {
  if (block < 0 || block >= numBlocks())
    return 0;
  return blocks_[block].cacheId;
}

uint64_t BlockPool::hashOf(int32_t block) const {
  if (block < 0 || block >= numBlocks())
    return 0;
  return blocks_[block].hash;
}

void BlockPool::pushBack(int32_t block) {
  Block &blk = blocks_[block];
  assert(!blk.inFreeList && blk.refCount == 0);
  blk.prev = tail_;
  blk.next = -1;
  if (tail_ >= 0)
    blocks_[tail_].next = block;
  else
    head_ = block;
  tail_ = block;
  blk.inFreeList = true;
  ++numFree_;
}

void BlockPool::unlink(int32_t block) {
  Block &blk = blocks_[block];
  assert(blk.inFreeList);
  if (blk.prev >= 0)
    blocks_[blk.prev].next = blk.next;
  else
    head_ = blk.next;
  if (blk.next >= 0)
    blocks_[blk.next].prev = blk.prev;
  else
    tail_ = blk.prev;
  blk.prev = blk.next = -1;
  blk.inFreeList = false;
  --numFree_;
}

void BlockPool::uncache(int32_t block) {
  Block &blk = blocks_[block];
  if (blk.cacheId == 0)
    return;
  auto it = hashToBlock_.find(blk.hash);
  if (it != hashToBlock_.end() && it->second == block)
    hashToBlock_.erase(it);
  blk.cacheId = 0;
  blk.hash = 0;
  blk.parent = CachedBlockRef();
  blk.tokens.clear();
}

StatusOr<std::vector<int32_t>> BlockPool::allocate(int32_t n) {
  if (n < 0)
    return Status::error("cannot allocate a negative number of kv blocks (" +
                         std::to_string(n) + ")");
  if (n > numFree_)
    return Status::error("kv cache exhausted: need " + std::to_string(n) +
                         " blocks, " + std::to_string(numFree_) + " free");
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    int32_t b = head_;
    unlink(b);
    // Lazy eviction: the least recently released cached block loses its
    // prefix only now, when its storage is actually reused.
    uncache(b);
    blocks_[b].refCount = 1;
    out.push_back(b);
  }
  return out;
}

void BlockPool::free(const std::vector<int32_t> &blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    int32_t b = *it;
    if (b == 0)
      continue;
    assert(b > 0 && b < numBlocks() && "freeing an out-of-range block");
    assert(blocks_[b].refCount > 0 && "freeing a block with refcount 0");
    // Release builds skip a misuse rather than corrupt the free list.
    if (b < 0 || b >= numBlocks() || blocks_[b].refCount == 0)
      continue;
    if (--blocks_[b].refCount == 0)
      pushBack(b);
  }
}

void BlockPool::touch(const std::vector<int32_t> &blocks) {
  for (int32_t b : blocks) {
    assert(b > 0 && b < numBlocks() && "touching an out-of-range block");
    if (b <= 0 || b >= numBlocks())
      continue;
    if (blocks_[b].refCount == 0)
      unlink(b);
    ++blocks_[b].refCount;
  }
}

bool BlockPool::isLive(CachedBlockRef ref) const {
  if (ref.block == 0)
    return ref.cacheId == 0;
  return ref.block > 0 && ref.block < numBlocks() && ref.cacheId != 0 &&
         blocks_[ref.block].cacheId == ref.cacheId;
}

uint64_t BlockPool::parentHash(CachedBlockRef parent) const {
  return parent.block == 0 ? rootBlockHash(blockSize_)
                           : blocks_[parent.block].hash;
}

CachedBlockRef BlockPool::findCachedBlock(CachedBlockRef parent,
                                          const int32_t *tokenIds) const {
  if (!enableCaching_ || !isLive(parent))
    return {};
  uint64_t h = hashBlockTokens(parentHash(parent), tokenIds, blockSize_);
  auto it = hashToBlock_.find(h);
  if (it == hashToBlock_.end())
    return {};
  const Block &blk = blocks_[it->second];
  // The hash only finds a candidate; the stored parent link and tokens make
  // the hit exact, so a 64-bit collision can never alias two prefixes.
  if (!(blk.parent == parent) ||
      !std::equal(blk.tokens.begin(), blk.tokens.end(), tokenIds))
    return {};
  return {it->second, blk.cacheId};
}

std::vector<int32_t> BlockPool::findCachedPrefix(const int32_t *tokenIds,
                                                 int64_t numTokens) const {
  std::vector<int32_t> hits;
  if (!enableCaching_)
    return hits;
  CachedBlockRef parent;
  for (int64_t start = 0; start + blockSize_ <= numTokens;
       start += blockSize_) {
    CachedBlockRef ref = findCachedBlock(parent, tokenIds + start);
    if (ref.block == 0)
      break;
    hits.push_back(ref.block);
    parent = ref;
  }
  return hits;
}

std::vector<int32_t> BlockPool::lookupPrefix(const int32_t *tokenIds,
                                             int64_t numTokens) {
  std::vector<int32_t> hits = findCachedPrefix(tokenIds, numTokens);
  touch(hits);
  return hits;
}

CachedBlockRef BlockPool::cacheBlock(int32_t block, CachedBlockRef parent,
                                     const int32_t *tokenIds) {
  if (!enableCaching_ || block <= 0 || block >= numBlocks() ||
      !isLive(parent) || parent.block == block)
    return {};
  Block &blk = blocks_[block];
  assert(blk.refCount > 0 && "caching a block nobody holds");
  if (blk.cacheId != 0) {
    // Already cached (e.g. a prefix hit offered again): fine if identical.
    bool same = blk.parent == parent &&
                std::equal(blk.tokens.begin(), blk.tokens.end(), tokenIds);
    return same ? CachedBlockRef{block, blk.cacheId} : CachedBlockRef{};
  }
  uint64_t h = hashBlockTokens(parentHash(parent), tokenIds, blockSize_);
  auto it = hashToBlock_.find(h);
  if (it != hashToBlock_.end()) {
    int32_t other = it->second;
    const Block &o = blocks_[other];
    if (o.parent == parent &&
        std::equal(o.tokens.begin(), o.tokens.end(), tokenIds))
      return {other, o.cacheId}; // same prefix computed twice: keep the first
    // A collision or an entry whose parent was evicted (unreachable): the
    // newcomer is reachable, so it takes the slot.
    uncache(other);
  }
  blk.cacheId = nextCacheId_++;
  blk.hash = h;
  blk.parent = parent;
  blk.tokens.assign(tokenIds, tokenIds + blockSize_);
  hashToBlock_[h] = block;
  return {block, blk.cacheId};
}

std::vector<int32_t> BlockPool::freeListOrder() const {
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(numFree_));
  for (int32_t b = head_; b >= 0 && order.size() <= blocks_.size();
       b = blocks_[b].next)
    order.push_back(b);
  return order;
}

Status BlockPool::checkInvariants() const {
  auto fail = [](const std::string &msg) {
    return Status::error("block pool invariant violated: " + msg);
  };
  const Block &null = blocks_[0];
  if (null.refCount != 0 || null.inFreeList || null.cacheId != 0)
    return fail("null block 0 is in use, free or cached");

  // Walk the free list: links consistent, no cycles, only refcount-0 blocks.
  int32_t count = 0;
  int32_t prev = -1;
  for (int32_t b = head_; b >= 0; b = blocks_[b].next) {
    if (b == 0 || b >= numBlocks())
      return fail("free list holds invalid block " + std::to_string(b));
    if (++count > numBlocks())
      return fail("free list has a cycle");
    const Block &blk = blocks_[b];
    if (blk.prev != prev)
      return fail("free list back link of block " + std::to_string(b) +
                  " is " + std::to_string(blk.prev) + ", expected " +
                  std::to_string(prev));
    if (!blk.inFreeList || blk.refCount != 0)
      return fail("block " + std::to_string(b) + " in free list with refcount " +
                  std::to_string(blk.refCount));
    prev = b;
  }
  if (prev != tail_)
    return fail("free list tail is " + std::to_string(tail_) +
                ", last linked block is " + std::to_string(prev));
  if (count != numFree_)
    return fail("free list has " + std::to_string(count) +
                " blocks, counter says " + std::to_string(numFree_));

  int32_t numCached = 0;
  for (int32_t b = 1; b < numBlocks(); ++b) {
    const Block &blk = blocks_[b];
    if (blk.refCount < 0)
      return fail("block " + std::to_string(b) + " has refcount " +
                  std::to_string(blk.refCount));
    if (blk.inFreeList != (blk.refCount == 0))
      return fail("block " + std::to_string(b) + " has refcount " +
                  std::to_string(blk.refCount) +
                  (blk.inFreeList ? " but is free" : " but is not free"));
    if (blk.cacheId == 0)
      continue;
    ++numCached;
    if (!enableCaching_)
      return fail("block " + std::to_string(b) +
                  " is cached with prefix caching disabled");
    if (blk.cacheId >= nextCacheId_)
      return fail("block " + std::to_string(b) + " has unissued cache id");
    if (static_cast<int32_t>(blk.tokens.size()) != blockSize_)
      return fail("cached block " + std::to_string(b) + " records " +
                  std::to_string(blk.tokens.size()) + " tokens, block size " +
                  std::to_string(blockSize_));
    auto it = hashToBlock_.find(blk.hash);
    if (it == hashToBlock_.end() || it->second != b)
      return fail("cached block " + std::to_string(b) +
                  " is missing from the hash index");
    if (blk.parent.block == b)
      return fail("cached block " + std::to_string(b) + " is its own parent");
  }
  if (numCached != static_cast<int32_t>(hashToBlock_.size()))
    return fail("hash index has " + std::to_string(hashToBlock_.size()) +
                " entries for " + std::to_string(numCached) + " cached blocks");
  return Status::ok();
}

} // namespace m2c
