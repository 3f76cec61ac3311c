// Randomized KvCacheManager test: thousands of ops against a fake KV arena, invariants after each.
//
// The fake backend writes each committed token id into its slot of a shadow
// arena. That turns prefix-cache correctness into something checkable: a
// prefix hit must return blocks whose arena contents are exactly the
// prompt's tokens, and a slot is only ever written while its block is held
// by the writing sequence alone.
#include "runtime/kvcache/KvCacheManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <vector>

using namespace m2c;

namespace {

// splitmix64: the test must replay identically everywhere.
struct TestRng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int32_t below(int32_t n) { return static_cast<int32_t>(next() % uint64_t(n)); }
};

struct Shadow {
  std::vector<int32_t> tokens; // every token with a slot
  int64_t committed = 0;
};

struct Snapshot {
  std::map<SeqId, std::vector<int32_t>> tables;
  std::vector<int32_t> freeList;
  bool operator==(const Snapshot &o) const {
    return tables == o.tables && freeList == o.freeList;
  }
};

Snapshot snapshot(const KvCacheManager &m, const std::map<SeqId, Shadow> &seqs) {
  Snapshot s;
  for (const auto &entry : seqs)
    s.tables[entry.first] = *m.blockTable(entry.first);
  s.freeList = m.pool().freeListOrder();
  return s;
}

void runRandomOps(int32_t numBlocks, int32_t blockSize, bool caching,
                  uint64_t seed, int numOps) {
  KvCacheConfig config;
  config.numBlocks = numBlocks;
  config.blockSize = blockSize;
  config.enablePrefixCaching = caching;
  StatusOr<KvCacheManager> made = KvCacheManager::create(config);
  ASSERT_TRUE(made.isOk()) << made.status().message();
  KvCacheManager m = made.take();

  TestRng rng{seed};
  std::vector<int32_t> arena(static_cast<size_t>(numBlocks) * blockSize, -1);
  std::map<SeqId, Shadow> seqs;
  SeqId nextId = 0;
  // A few shared stems make prefix hits (and partial hits) common.
  std::vector<std::vector<int32_t>> stems;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> stem;
    for (int j = 0; j < 3 * blockSize + 1; ++j)
      stem.push_back(rng.below(6));
    stems.push_back(stem);
  }
  int hits = 0, exhausted = 0;

  auto pickSeq = [&]() -> SeqId {
    auto it = seqs.begin();
    std::advance(it, rng.below(static_cast<int32_t>(seqs.size())));
    return it->first;
  };

  for (int op = 0; op < numOps; ++op) {
    int kind = rng.below(10);
    if (seqs.empty() || kind < 3) {
      // addSequence: a stem prefix plus a random tail.
      const auto &stem = stems[static_cast<size_t>(rng.below(4))];
      std::vector<int32_t> prompt(
          stem.begin(), stem.begin() + rng.below(int32_t(stem.size()) + 1));
      for (int32_t n = rng.below(2 * blockSize); n > 0; --n)
        prompt.push_back(rng.below(6));
      Snapshot before = snapshot(m, seqs);
      SeqId id = nextId++;
      StatusOr<int64_t> cached = m.addSequence(id, prompt);
      if (!cached.isOk()) {
        ++exhausted;
        ASSERT_EQ(cached.status().message().rfind("kv cache exhausted", 0), 0u)
            << cached.status().message();
        ASSERT_FALSE(m.hasSequence(id));
        ASSERT_TRUE(snapshot(m, seqs) == before) << "failed add changed state";
      } else {
        ASSERT_EQ(*cached % blockSize, 0);
        ASSERT_LT(*cached, std::max<int64_t>(1, int64_t(prompt.size())));
        hits += *cached > 0;
        // The reused slots must already hold exactly this prompt's tokens.
        for (int64_t p = 0; p < *cached; ++p) {
          StatusOr<KvSlot> slot = m.slotFor(id, p);
          ASSERT_TRUE(slot.isOk());
          ASSERT_EQ(arena[size_t(slot->flatIndex(blockSize))],
                    prompt[size_t(p)])
              << "prefix hit returned wrong KV at position " << p;
        }
        seqs[id] = Shadow{prompt, *cached};
      }
    } else if (kind < 5) {
      // appendSlots with fresh (not yet committed) tokens.
      SeqId id = pickSeq();
      int32_t n = rng.below(2 * blockSize + 1);
      Snapshot before = snapshot(m, seqs);
      Status s = m.appendSlots(id, n);
      if (!s.isOk()) {
        ++exhausted;
        ASSERT_EQ(s.message().rfind("kv cache exhausted", 0), 0u) << s.message();
        ASSERT_TRUE(snapshot(m, seqs) == before) << "failed append changed state";
      } else {
        for (int32_t i = 0; i < n; ++i)
          seqs[id].tokens.push_back(rng.below(6));
      }
    } else if (kind < 8) {
      // The backend writes KV for some uncommitted slots, then commits.
      SeqId id = pickSeq();
      Shadow &sh = seqs[id];
      int64_t open = int64_t(sh.tokens.size()) - sh.committed;
      int64_t n = open == 0 ? 0 : 1 + rng.below(int32_t(open));
      std::vector<int32_t> toks(sh.tokens.begin() + sh.committed,
                                sh.tokens.begin() + sh.committed + n);
      for (int64_t p = sh.committed; p < sh.committed + n; ++p) {
        StatusOr<KvSlot> slot = m.slotFor(id, p);
        ASSERT_TRUE(slot.isOk()) << slot.status().message();
        ASSERT_EQ(m.pool().refCount(slot->block), 1)
            << "writing into a shared block " << slot->block;
        arena[size_t(slot->flatIndex(blockSize))] = sh.tokens[size_t(p)];
      }
      Status s = m.commitTokens(id, toks);
      ASSERT_TRUE(s.isOk()) << s.message();
      sh.committed += n;
    } else {
      SeqId id = pickSeq();
      Status s = m.freeSequence(id);
      ASSERT_TRUE(s.isOk()) << s.message();
      seqs.erase(id);
    }
    Status inv = m.checkInvariants();
    ASSERT_TRUE(inv.isOk()) << "after op " << op << ": " << inv.message();
    for (const auto &entry : seqs) {
      ASSERT_EQ(*m.numSlots(entry.first), int64_t(entry.second.tokens.size()));
      ASSERT_EQ(*m.numCommittedTokens(entry.first), entry.second.committed);
    }
  }
  // The run must actually exercise the interesting paths.
  EXPECT_GT(exhausted, 0);
  if (caching)
    EXPECT_GT(hits, 0);
  else
    EXPECT_EQ(hits, 0);
}

} // namespace

TEST(KvCacheRandomTest, PrefixCachingBlockSize4) {
  runRandomOps(/*numBlocks=*/24, /*blockSize=*/4, true, 1, 5000);
}

TEST(KvCacheRandomTest, PrefixCachingBlockSize1) {
  runRandomOps(/*numBlocks=*/40, /*blockSize=*/1, true, 2, 5000);
}

TEST(KvCacheRandomTest, PrefixCachingBlockSize3) {
  runRandomOps(/*numBlocks=*/16, /*blockSize=*/3, true, 3, 5000);
}

TEST(KvCacheRandomTest, NoPrefixCaching) {
  runRandomOps(/*numBlocks=*/24, /*blockSize=*/4, false, 4, 5000);
}
