// KvCacheManager: per-sequence append-only block tables and prefix-cache commits.
#include "runtime/kvcache/KvCacheManager.h"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_set>

namespace m2c {

namespace {

std::string seqName(SeqId seqId) { return "sequence " + std::to_string(seqId); }

// Requests beyond this many tokens cannot fit any arena (numBlocks and
// blockSize are int32) and would overflow slot arithmetic.
constexpr int64_t kMaxTokens = int64_t(1) << 62;

} // namespace

StatusOr<KvCacheManager> KvCacheManager::create(const KvCacheConfig &config) {
  StatusOr<BlockPool> pool = BlockPool::create(
      config.numBlocks, config.blockSize, config.enablePrefixCaching);
  if (!pool)
    return pool.status();
  return KvCacheManager(pool.take());
}

StatusOr<KvCacheManager::Sequence *> KvCacheManager::find(SeqId seqId) {
  auto it = seqs_.find(seqId);
  if (it == seqs_.end())
    return Status::error("unknown " + seqName(seqId));
  return &it->second;
}

StatusOr<const KvCacheManager::Sequence *>
KvCacheManager::find(SeqId seqId) const {
  auto it = seqs_.find(seqId);
  if (it == seqs_.end())
    return Status::error("unknown " + seqName(seqId));
  return &it->second;
}

int64_t KvCacheManager::blocksFor(int64_t numTokens) const {
  return (numTokens + blockSize() - 1) / blockSize();
}

StatusOr<int64_t>
KvCacheManager::addSequence(SeqId seqId,
                            const std::vector<int32_t> &promptTokenIds) {
  if (hasSequence(seqId))
    return Status::error(seqName(seqId) + " already exists");
  const int64_t numPrompt = static_cast<int64_t>(promptTokenIds.size());

  // Look up at most numPrompt - 1 tokens: the last prompt token must run
  // through the model to produce the logits of the first generated token.
  std::vector<int32_t> hits = pool_.findCachedPrefix(
      promptTokenIds.data(), std::max<int64_t>(0, numPrompt - 1));

  // Check capacity before touching anything. Hits sitting in the free list
  // (refcount 0) leave it when touched, so they count against it too.
  int64_t numNew = blocksFor(numPrompt) - static_cast<int64_t>(hits.size());
  int64_t freeHits = std::count_if(hits.begin(), hits.end(), [&](int32_t b) {
    return pool_.refCount(b) == 0;
  });
  if (numNew + freeHits > numFreeBlocks())
    return Status::error("kv cache exhausted: need " +
                         std::to_string(numNew + freeHits) + " blocks, " +
                         std::to_string(numFreeBlocks()) + " free");

  pool_.touch(hits);
  StatusOr<std::vector<int32_t>> fresh =
      pool_.allocate(static_cast<int32_t>(numNew));
  assert(fresh.isOk() && "capacity was checked above");

  Sequence seq;
  seq.blocks = std::move(hits);
  seq.blocks.insert(seq.blocks.end(), fresh->begin(), fresh->end());
  seq.numSlots = numPrompt;
  int64_t numHitBlocks = static_cast<int64_t>(seq.blocks.size()) - numNew;
  seq.numCommitted = numHitBlocks * blockSize();
  if (numHitBlocks > 0) {
    int32_t last = seq.blocks[static_cast<size_t>(numHitBlocks - 1)];
    seq.cachedTail = {last, pool_.cacheIdOf(last)};
  }
  int64_t cached = seq.numCommitted;
  seqs_.emplace(seqId, std::move(seq));
  return cached;
}

StatusOr<int64_t> KvCacheManager::numBlocksNeeded(SeqId seqId,
                                                  int64_t numNewTokens) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  if (numNewTokens < 0 || numNewTokens > kMaxTokens)
    return Status::error(seqName(seqId) + ": invalid number of new tokens (" +
                         std::to_string(numNewTokens) + ")");
  return blocksFor((*seq)->numSlots + numNewTokens) -
         static_cast<int64_t>((*seq)->blocks.size());
}

Status KvCacheManager::appendSlots(SeqId seqId, int64_t numNewTokens) {
  StatusOr<int64_t> need = numBlocksNeeded(seqId, numNewTokens);
  if (!need)
    return need.status();
  Sequence &seq = seqs_.find(seqId)->second; // numBlocksNeeded found it
  if (*need > numFreeBlocks())
    return Status::error("kv cache exhausted: need " + std::to_string(*need) +
                         " blocks, " + std::to_string(numFreeBlocks()) +
                         " free");
  StatusOr<std::vector<int32_t>> fresh =
      pool_.allocate(static_cast<int32_t>(*need));
  if (!fresh)
    return fresh.status();
  seq.blocks.insert(seq.blocks.end(), fresh->begin(), fresh->end());
  seq.numSlots += numNewTokens;
  return Status::ok();
}

Status KvCacheManager::commitTokens(SeqId seqId,
                                    const std::vector<int32_t> &tokenIds) {
  StatusOr<Sequence *> found = find(seqId);
  if (!found)
    return found.status();
  Sequence &seq = **found;
  const int64_t n = static_cast<int64_t>(tokenIds.size());
  if (n > seq.numSlots - seq.numCommitted)
    return Status::error(
        seqName(seqId) + ": committing " + std::to_string(n) +
        " tokens at position " + std::to_string(seq.numCommitted) +
        " exceeds its " + std::to_string(seq.numSlots) + " slots");
  const int32_t bs = blockSize();
  for (int32_t token : tokenIds) {
    seq.pending.push_back(token);
    ++seq.numCommitted;
    if (static_cast<int32_t>(seq.pending.size()) < bs)
      continue;
    if (pool_.prefixCachingEnabled() && !seq.chainBroken) {
      int32_t block =
          seq.blocks[static_cast<size_t>(seq.numCommitted / bs - 1)];
      CachedBlockRef ref =
          pool_.cacheBlock(block, seq.cachedTail, seq.pending.data());
      if (ref.block == 0)
        seq.chainBroken = true; // parent evicted meanwhile; stop caching
      else
        seq.cachedTail = ref;
    }
    seq.pending.clear();
  }
  return Status::ok();
}

Status KvCacheManager::freeSequence(SeqId seqId) {
  auto it = seqs_.find(seqId);
  if (it == seqs_.end())
    return Status::error("unknown " + seqName(seqId));
  pool_.free(it->second.blocks);
  seqs_.erase(it);
  return Status::ok();
}

StatusOr<KvSlot> KvCacheManager::slotFor(SeqId seqId, int64_t position) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  if (position < 0 || position >= (*seq)->numSlots)
    return Status::error(seqName(seqId) + ": position " +
                         std::to_string(position) + " is outside its " +
                         std::to_string((*seq)->numSlots) + " slots");
  KvSlot slot;
  slot.block = (*seq)->blocks[static_cast<size_t>(position / blockSize())];
  slot.offset = static_cast<int32_t>(position % blockSize());
  return slot;
}

StatusOr<std::vector<int32_t>> KvCacheManager::blockTable(SeqId seqId) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  return (*seq)->blocks;
}

Status KvCacheManager::fillBlockTable(SeqId seqId, int64_t width,
                                      int32_t *out) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  const std::vector<int32_t> &blocks = (*seq)->blocks;
  if (width < static_cast<int64_t>(blocks.size()))
    return Status::error(seqName(seqId) + " holds " +
                         std::to_string(blocks.size()) +
                         " blocks, more than the block table width " +
                         std::to_string(width));
  std::copy(blocks.begin(), blocks.end(), out);
  std::fill(out + blocks.size(), out + width, 0);
  return Status::ok();
}

StatusOr<int64_t> KvCacheManager::numSlots(SeqId seqId) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  return (*seq)->numSlots;
}

StatusOr<int64_t> KvCacheManager::numCommittedTokens(SeqId seqId) const {
  StatusOr<const Sequence *> seq = find(seqId);
  if (!seq)
    return seq.status();
  return (*seq)->numCommitted;
}

Status KvCacheManager::checkInvariants() const {
  M2C_RETURN_IF_ERROR(pool_.checkInvariants());
  auto fail = [](const std::string &msg) {
    return Status::error("kv cache invariant violated: " + msg);
  };
  const int32_t bs = blockSize();
  std::vector<int32_t> holders(static_cast<size_t>(pool_.numBlocks()), 0);
  for (const auto &[id, seq] : seqs_) {
    std::unordered_set<int32_t> seen;
    if (static_cast<int64_t>(seq.blocks.size()) != blocksFor(seq.numSlots))
      return fail(seqName(id) + " has " + std::to_string(seq.blocks.size()) +
                  " blocks for " + std::to_string(seq.numSlots) + " slots");
    if (seq.numCommitted < 0 || seq.numCommitted > seq.numSlots)
      return fail(seqName(id) + " committed " +
                  std::to_string(seq.numCommitted) + " of " +
                  std::to_string(seq.numSlots) + " slots");
    if (static_cast<int64_t>(seq.pending.size()) != seq.numCommitted % bs)
      return fail(seqName(id) + " has " + std::to_string(seq.pending.size()) +
                  " pending tokens at position " +
                  std::to_string(seq.numCommitted));
    for (int32_t b : seq.blocks) {
      if (b <= 0 || b >= pool_.numBlocks())
        return fail(seqName(id) + " holds invalid block " + std::to_string(b));
      if (!seen.insert(b).second)
        return fail(seqName(id) + " holds block " + std::to_string(b) +
                    " twice");
      ++holders[static_cast<size_t>(b)];
    }
  }
  int32_t used = 0;
  for (int32_t b = 1; b < pool_.numBlocks(); ++b) {
    if (pool_.refCount(b) != holders[static_cast<size_t>(b)])
      return fail("block " + std::to_string(b) + " has refcount " +
                  std::to_string(pool_.refCount(b)) + " but " +
                  std::to_string(holders[static_cast<size_t>(b)]) +
                  " block tables hold it");
    used += holders[static_cast<size_t>(b)] > 0;
  }
  if (used + numFreeBlocks() != pool_.numBlocks() - 1)
    return fail(std::to_string(used) + " used + " +
                std::to_string(numFreeBlocks()) + " free blocks != " +
                std::to_string(pool_.numBlocks() - 1));
  return Status::ok();
}

} // namespace m2c
