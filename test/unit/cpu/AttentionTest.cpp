//===- AttentionTest.cpp - RoPE and paged attention vs double refs --------===//
#include "runtime/cpu/Kernels.h"
#include "test/unit/cpu/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

namespace m2c::cpu {
namespace {
using test::randomVec;
using test::relErr;

struct Shape {
  int64_t heads = 4, kvHeads = 2, headDim = 32, rotaryDim = 16;
  double theta = 10000.0;
};

/// Owns KV storage for a view. Unwritten slots hold NaN, so reading a slot
/// the kernel should not read poisons the output.
struct TestCache {
  std::vector<float> f32;
  std::vector<uint16_t> b16;
  KvCacheView view;

  TestCache(const Shape &s, int64_t numBlocks, int64_t blockSize,
            bool bf16 = false, int64_t layers = 2) {
    view.bf16 = bf16;
    view.layers = layers;
    view.numBlocks = numBlocks;
    view.blockSize = blockSize;
    view.kvHeads = s.kvHeads;
    view.headDim = s.headDim;
    int64_t n = kvCacheNumElements(view);
    if (bf16) {
      b16.assign(n, 0x7FC0);
      view.data = b16.data();
    } else {
      f32.assign(n, std::numeric_limits<float>::quiet_NaN());
      view.data = f32.data();
    }
  }
  /// Element d of K (kv = 0) or V (kv = 1) for one head at (block, slot).
  float at(int64_t layer, int64_t block, int64_t slot, int kv, int64_t head,
           int64_t d) const {
    int64_t off =
        ((((layer * view.numBlocks + block) * view.blockSize + slot) * 2 + kv) *
             view.kvHeads +
         head) *
            view.headDim +
        d;
    return view.bf16 ? bf16ToFloat(b16[off]) : f32[off];
  }
  bool sameBytes(const TestCache &o) const {
    return f32.size() == o.f32.size() && b16.size() == o.b16.size() &&
           std::memcmp(f32.data(), o.f32.data(), f32.size() * 4) == 0 &&
           std::memcmp(b16.data(), o.b16.data(), b16.size() * 2) == 0;
  }
};

/// A batch of tokens with their inputs.
struct Batch {
  std::vector<int32_t> positions, seqs;
  std::vector<float> q, k, v;
  int64_t size() const { return int64_t(positions.size()); }

  static Batch random(const Shape &s, std::vector<int32_t> positions,
                      std::vector<int32_t> seqs, uint32_t seed) {
    Batch b;
    int64_t t = int64_t(positions.size());
    b.positions = std::move(positions);
    b.seqs = std::move(seqs);
    b.q = randomVec(t * s.heads * s.headDim, seed);
    b.k = randomVec(t * s.kvHeads * s.headDim, seed + 1);
    b.v = randomVec(t * s.kvHeads * s.headDim, seed + 2);
    return b;
  }
  /// The tokens listed in `rows`, in that order, as their own batch.
  Batch select(const Shape &s, const std::vector<int64_t> &rows) const {
    Batch b;
    int64_t qd = s.heads * s.headDim, kd = s.kvHeads * s.headDim;
    for (int64_t t : rows) {
      b.positions.push_back(positions[t]);
      b.seqs.push_back(seqs[t]);
      b.q.insert(b.q.end(), q.begin() + t * qd, q.begin() + (t + 1) * qd);
      b.k.insert(b.k.end(), k.begin() + t * kd, k.begin() + (t + 1) * kd);
      b.v.insert(b.v.end(), v.begin() + t * kd, v.begin() + (t + 1) * kd);
    }
    return b;
  }
};

Status run(const Shape &s, const Batch &b, const std::vector<int32_t> &tables,
           int64_t numSeqs, int64_t maxBlocks, TestCache &cache,
           std::vector<float> &out, ThreadPool &pool, bool causal = true,
           int64_t layer = 1) {
  AttentionParams p;
  p.layer = layer;
  p.numHeads = s.heads;
  p.numKvHeads = s.kvHeads;
  p.headDim = s.headDim;
  p.rotaryDim = s.rotaryDim;
  p.ropeTheta = s.theta;
  p.causal = causal;
  out.assign(b.size() * s.heads * s.headDim, 0.0f);
  return attention(b.q.data(), b.k.data(), b.v.data(), b.positions.data(),
                   b.seqs.data(), b.size(), tables.data(), numSeqs, maxBlocks,
                   p, cache.view, out.data(), pool);
}

void ropeRef(std::vector<double> &x, int64_t heads, int64_t d, int64_t rd,
             double theta, const std::vector<int32_t> &positions) {
  int64_t half = rd / 2;
  for (size_t t = 0; t < positions.size(); ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        double angle = positions[t] * std::pow(theta, -2.0 * i / rd);
        double *xh = x.data() + (t * heads + h) * d;
        double x1 = xh[i], x2 = xh[i + half];
        xh[i] = x1 * std::cos(angle) - x2 * std::sin(angle);
        xh[i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
      }
}

/// Attention where the batch is the whole history of its sequences.
std::vector<double> attentionRef(const Shape &s, const Batch &b, bool causal) {
  int64_t T = b.size(), H = s.heads, KV = s.kvHeads, D = s.headDim;
  std::vector<double> q(b.q.begin(), b.q.end()), k(b.k.begin(), b.k.end());
  ropeRef(q, H, D, s.rotaryDim, s.theta, b.positions);
  ropeRef(k, KV, D, s.rotaryDim, s.theta, b.positions);
  std::vector<double> out(T * H * D, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      int64_t kvh = h / (H / KV);
      std::vector<int64_t> keys;
      for (int64_t u = 0; u < T; ++u)
        if (b.seqs[u] == b.seqs[t] &&
            (!causal || b.positions[u] <= b.positions[t]))
          keys.push_back(u);
      std::vector<double> sc;
      double mx = -1e300;
      for (int64_t u : keys) {
        double d = 0;
        for (int64_t i = 0; i < D; ++i)
          d += q[(t * H + h) * D + i] * k[(u * KV + kvh) * D + i];
        sc.push_back(d / std::sqrt(double(D)));
        mx = std::max(mx, sc.back());
      }
      double sum = 0;
      for (double &x : sc)
        sum += (x = std::exp(x - mx));
      for (size_t j = 0; j < keys.size(); ++j)
        for (int64_t i = 0; i < D; ++i)
          out[(t * H + h) * D + i] +=
              sc[j] / sum * b.v[(keys[j] * KV + kvh) * D + i];
    }
  return out;
}

// Two sequences (13 and 6 tokens) interleaved, block size 4, scattered
// block tables; used by several tests below.
struct TwoSeqFixture {
  Shape shape;
  Batch batch;
  std::vector<int32_t> tables = {3, 7, 1, 12, 0,  // sequence 0
                                 5, 2, 0, 0,  0}; // sequence 1
  static constexpr int64_t kMaxBlocks = 5, kNumBlocks = 16, kBlockSize = 4;

  explicit TwoSeqFixture(Shape s = Shape(), uint32_t seed = 42) : shape(s) {
    std::vector<int32_t> pos, seq;
    for (int i = 0, a = 0, b = 0; i < 19; ++i) {
      bool first = (i % 3 != 2 && a < 13) || b >= 6;
      pos.push_back(first ? a++ : b++);
      seq.push_back(first ? 0 : 1);
    }
    batch = Batch::random(shape, pos, seq, seed);
  }
};

TEST(CpuRope, LeavesDimsBeyondRotaryDimUnchanged) {
  ThreadPool pool(2);
  const int64_t T = 3, heads = 3, D = 32;
  std::vector<int32_t> positions = {0, 7, 1000};
  for (int64_t rd : {0, 16, 32}) {
    std::vector<float> x = randomVec(T * heads * D, 11);
    std::vector<float> y = x;
    applyRope(y.data(), positions.data(), T, heads, D, rd, 5e6, pool);
    std::vector<double> ref(x.begin(), x.end());
    ropeRef(ref, heads, D, rd, 5e6, positions);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < D; ++d) {
          int64_t i = (t * heads + h) * D + d;
          if (d >= rd || positions[t] == 0)
            ASSERT_EQ(y[i], x[i]) << "rd " << rd << " t " << t << " d " << d;
        }
    EXPECT_LT(relErr(y, ref), 1e-5) << "rd " << rd;
  }
}

TEST(CpuRope, CachedKeysKeepPassThroughDims) {
  TwoSeqFixture f;
  TestCache cache(f.shape, f.kNumBlocks, f.kBlockSize);
  ThreadPool pool(2);
  std::vector<float> out;
  ASSERT_TRUE(run(f.shape, f.batch, f.tables, 2, f.kMaxBlocks, cache, out, pool)
                  .isOk());
  const Shape &s = f.shape;
  for (int64_t t = 0; t < f.batch.size(); ++t) {
    int64_t p = f.batch.positions[t], seq = f.batch.seqs[t];
    int64_t block = f.tables[seq * f.kMaxBlocks + p / f.kBlockSize];
    for (int64_t h = 0; h < s.kvHeads; ++h)
      for (int64_t d = 0; d < s.headDim; ++d) {
        float k = f.batch.k[(t * s.kvHeads + h) * s.headDim + d];
        float v = f.batch.v[(t * s.kvHeads + h) * s.headDim + d];
        if (d >= s.rotaryDim || p == 0)
          EXPECT_EQ(cache.at(1, block, p % f.kBlockSize, 0, h, d), k);
        EXPECT_EQ(cache.at(1, block, p % f.kBlockSize, 1, h, d), v);
      }
  }
}

TEST(CpuAttention, MatchesDoubleReference) {
  for (double theta : {10000.0, 5e6}) {
    Shape s;
    s.theta = theta;
    TwoSeqFixture f(s);
    ThreadPool pool(3);
    for (bool causal : {true, false}) {
      TestCache cache(s, f.kNumBlocks, f.kBlockSize);
      std::vector<float> out;
      ASSERT_TRUE(
          run(s, f.batch, f.tables, 2, f.kMaxBlocks, cache, out, pool, causal)
              .isOk());
      EXPECT_LT(relErr(out, attentionRef(s, f.batch, causal)), 1e-5)
          << "theta " << theta << " causal " << causal;
    }
  }
}

TEST(CpuAttention, MatchesReferenceWithoutGqaAndFullRotary) {
  Shape s;
  s.heads = 3;
  s.kvHeads = 3;
  s.headDim = 20; // not a multiple of the 8 dot lanes
  s.rotaryDim = 20;
  TwoSeqFixture f(s, 7);
  TestCache cache(s, f.kNumBlocks, f.kBlockSize);
  ThreadPool pool(2);
  std::vector<float> out;
  ASSERT_TRUE(
      run(s, f.batch, f.tables, 2, f.kMaxBlocks, cache, out, pool).isOk());
  EXPECT_LT(relErr(out, attentionRef(s, f.batch, true)), 1e-5);
}

TEST(CpuAttention, ScrambledBlockTableEqualsContiguous) {
  TwoSeqFixture f;
  ThreadPool pool(2);
  std::vector<int32_t> contiguous = {1, 2, 3, 4, 0, 5, 6, 0, 0, 0};
  TestCache a(f.shape, f.kNumBlocks, f.kBlockSize);
  TestCache b(f.shape, f.kNumBlocks, f.kBlockSize);
  std::vector<float> outA, outB;
  ASSERT_TRUE(
      run(f.shape, f.batch, contiguous, 2, f.kMaxBlocks, a, outA, pool).isOk());
  ASSERT_TRUE(
      run(f.shape, f.batch, f.tables, 2, f.kMaxBlocks, b, outB, pool).isOk());
  EXPECT_EQ(outA, outB);
  // Same slots hold the same values, wherever the table put them.
  for (int64_t seq = 0; seq < 2; ++seq)
    for (int64_t e = 0; e < (seq == 0 ? 4 : 2); ++e)
      for (int64_t slot = 0; slot < f.kBlockSize; ++slot)
        for (int kv = 0; kv < 2; ++kv)
          for (int64_t d = 0; d < f.shape.headDim; ++d) {
            float x = a.at(1, contiguous[seq * 5 + e], slot, kv, 1, d);
            float y = b.at(1, f.tables[seq * 5 + e], slot, kv, 1, d);
            if (!(std::isnan(x) && std::isnan(y)))
              ASSERT_EQ(x, y);
          }
}

TEST(CpuAttention, PrefillEqualsTokenByTokenDecode) {
  Shape s;
  std::vector<int32_t> pos;
  for (int i = 0; i < 11; ++i)
    pos.push_back(i);
  Batch all = Batch::random(s, pos, std::vector<int32_t>(11, 0), 5);
  std::vector<int32_t> table = {9, 4, 6};
  ThreadPool pool(3);
  TestCache prefill(s, 10, 4), decode(s, 10, 4);
  std::vector<float> outAll, outOne;
  ASSERT_TRUE(run(s, all, table, 1, 3, prefill, outAll, pool).isOk());
  int64_t row = s.heads * s.headDim;
  for (int64_t t = 0; t < 11; ++t) {
    ASSERT_TRUE(
        run(s, all.select(s, {t}), table, 1, 3, decode, outOne, pool).isOk());
    EXPECT_EQ(outOne, std::vector<float>(outAll.begin() + t * row,
                                         outAll.begin() + (t + 1) * row))
        << "token " << t;
  }
  EXPECT_TRUE(prefill.sameBytes(decode));
}

TEST(CpuAttention, BatchOfThreeSequencesEqualsSeparateCalls) {
  Shape s;
  // Prefill three sequences of 5, 9 and 3 tokens (interleaved), then one
  // decode step for all three: batched in one call per step vs one call per
  // sequence per step.
  const int lens[3] = {5, 9, 3};
  std::vector<int32_t> tables = {2, 8, 0, 6, 3, 5, 7, 0, 0};
  const int64_t maxBlocks = 3;
  ThreadPool pool(2);
  std::vector<int32_t> pos, seq;
  for (int i = 0; i < 9; ++i)
    for (int sq = 0; sq < 3; ++sq)
      if (i < lens[sq]) {
        pos.push_back(i);
        seq.push_back(sq);
      }
  // The step lists the sequences out of order: 2, 0, 1.
  Batch steps[2] = {Batch::random(s, pos, seq, 77),
                    Batch::random(s, {3, 5, 9}, {2, 0, 1}, 99)};
  TestCache batched(s, 9, 4), separate(s, 9, 4);
  int64_t row = s.heads * s.headDim;
  for (const Batch &b : steps) {
    std::vector<float> all;
    ASSERT_TRUE(run(s, b, tables, 3, maxBlocks, batched, all, pool).isOk());
    for (int sq = 0; sq < 3; ++sq) {
      std::vector<int64_t> rows;
      for (int64_t t = 0; t < b.size(); ++t)
        if (b.seqs[t] == sq)
          rows.push_back(t);
      std::vector<float> out;
      ASSERT_TRUE(
          run(s, b.select(s, rows), tables, 3, maxBlocks, separate, out, pool)
              .isOk());
      for (size_t i = 0; i < rows.size(); ++i)
        EXPECT_EQ(std::vector<float>(out.begin() + i * row,
                                     out.begin() + (i + 1) * row),
                  std::vector<float>(all.begin() + rows[i] * row,
                                     all.begin() + (rows[i] + 1) * row))
            << "sequence " << sq << " token " << rows[i];
    }
  }
  EXPECT_TRUE(batched.sameBytes(separate));
}

TEST(CpuAttention, Bf16CacheStaysClose) {
  TwoSeqFixture f;
  ThreadPool pool(2);
  TestCache f32(f.shape, f.kNumBlocks, f.kBlockSize, false);
  TestCache bf16(f.shape, f.kNumBlocks, f.kBlockSize, true);
  std::vector<float> a, b;
  ASSERT_TRUE(
      run(f.shape, f.batch, f.tables, 2, f.kMaxBlocks, f32, a, pool).isOk());
  ASSERT_TRUE(
      run(f.shape, f.batch, f.tables, 2, f.kMaxBlocks, bf16, b, pool).isOk());
  double err = relErr(b, a);
  EXPECT_LT(err, 1e-2);
  EXPECT_GT(err, 0.0); // the bf16 path really rounded something
  EXPECT_LT(relErr(b, attentionRef(f.shape, f.batch, true)), 1e-2);
}

TEST(CpuAttention, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBf16(-2.0f), 0xC000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1.0.
  EXPECT_EQ(floatToBf16(1.0f + 0x1p-8f), 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up.
  EXPECT_EQ(floatToBf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_EQ(floatToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_TRUE(std::isnan(
      bf16ToFloat(floatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  for (float x : randomVec(1000, 3, -100.0f, 100.0f))
    ASSERT_LE(std::fabs(bf16ToFloat(floatToBf16(x)) - x),
              std::fabs(x) * 0x1p-8f);
}

TEST(CpuAttention, ThreadCountGivesIdenticalBits) {
  Shape s;
  s.heads = 8;
  TwoSeqFixture f(s, 3);
  ThreadPool one(1), four(4);
  for (bool bf16 : {false, true}) {
    TestCache a(s, f.kNumBlocks, f.kBlockSize, bf16);
    TestCache b(s, f.kNumBlocks, f.kBlockSize, bf16);
    std::vector<float> outA, outB;
    ASSERT_TRUE(
        run(s, f.batch, f.tables, 2, f.kMaxBlocks, a, outA, one).isOk());
    ASSERT_TRUE(
        run(s, f.batch, f.tables, 2, f.kMaxBlocks, b, outB, four).isOk());
    EXPECT_EQ(outA, outB);
    EXPECT_TRUE(a.sameBytes(b));
  }
}

/// Runs a one-token batch expected to fail; checks the message and that the
/// cache was not touched.
void expectError(std::vector<int32_t> positions, std::vector<int32_t> seqs,
                 std::vector<int32_t> tables, int64_t numSeqs,
                 int64_t maxBlocks, const std::string &message,
                 Shape s = Shape()) {
  Batch b = Batch::random(s, positions, seqs, 1);
  ThreadPool pool(2);
  TestCache cache(s, 16, 4), untouched(s, 16, 4);
  std::vector<float> out;
  Status st = run(s, b, tables, numSeqs, maxBlocks, cache, out, pool);
  ASSERT_FALSE(st.isOk()) << message;
  EXPECT_EQ(st.message(), message);
  EXPECT_TRUE(cache.sameBytes(untouched)) << message;
}

TEST(CpuAttention, ErrorPaths) {
  expectError({0, 1}, {0, 3}, {1, 2}, 2, 1,
              "token 1 has sequence index 3 out of range [0, 2)");
  expectError({-1}, {0}, {1, 2}, 1, 2,
              "token 0 (sequence 0, position -1) has a negative position");
  expectError({0, 8}, {0, 0}, {1, 2}, 1, 2,
              "token 1 (sequence 0, position 8) is beyond its block table: it "
              "needs entry 2 but the table has 2 entries of 4 positions");
  expectError({2}, {0}, {0, 3}, 1, 2,
              "token 0 (sequence 0, position 2) would write to the null block "
              "0 (block table entry 0)");
  expectError({5}, {0}, {3, 99}, 1, 2,
              "token 0 (sequence 0, position 5) maps to block 99 out of range "
              "[1, 16) (block table entry 1)");
  // Writing position 5 is fine, but it attends to positions 0..3, whose
  // block is the null block.
  expectError({5}, {0}, {0, 4}, 1, 2,
              "sequence 0 reads positions up to 5 but its block table entry 0 "
              "is the null block 0");
  expectError({5}, {0}, {-4, 4}, 1, 2,
              "sequence 0 reads positions up to 5 but its block table entry 0 "
              "holds block -4 out of range [1, 16)");
  Shape bad;
  bad.heads = 6;
  bad.kvHeads = 4;
  expectError({0}, {0}, {1}, 1, 1,
              "attention expects num_heads (6) to be a multiple of "
              "num_kv_heads (4)",
              bad);
  Shape oddRotary;
  oddRotary.rotaryDim = 15;
  expectError({0}, {0}, {1}, 1, 1,
              "attention expects an even rotary_dim (15) in [0, head_dim (32)]",
              oddRotary);
}

TEST(CpuAttention, LayerMustMatchCache) {
  Shape s;
  Batch b = Batch::random(s, {0}, {0}, 1);
  ThreadPool pool(1);
  TestCache cache(s, 4, 4, false, 2);
  std::vector<float> out;
  Status st = run(s, b, {1}, 1, 1, cache, out, pool, true, 2);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "attention layer 2 out of range [0, 2)");
}

} // namespace
} // namespace m2c::cpu
