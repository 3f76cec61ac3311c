//===- Attention.cpp - RoPE and paged-KV attention, fp32 reference ------===//
//
// Follows transformers' eager float32 MiniMaxM2 attention: partial NeoX RoPE
// with float angles, scores = (q . k) * head_dim^-0.5 (the scale rounded to
// float once, as torch does when a python float multiplies a float tensor),
// softmax with max subtraction, then P V. Two sums run in double where
// transformers uses float (the softmax denominator and the P V sum over
// positions), so long contexts do not lose digits; q . k uses the shared
// float dot of Gemm.h.
//
// Each (token, head) output is computed by one task start to finish with a
// fixed order over positions, so results do not depend on the thread count.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Kernels.h"

#include "runtime/cpu/Gemm.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace m2c::cpu {

uint16_t floatToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (std::isnan(x))
    return 0x7FC0; // torch's canonical quiet NaN
  // Round to nearest even: add 0x7FFF plus the lsb of the kept half.
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float bf16ToFloat(uint16_t bits) {
  uint32_t u = uint32_t(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

int64_t kvCacheNumElements(const KvCacheView &c) {
  return c.layers * c.numBlocks * c.blockSize * 2 * c.kvHeads * c.headDim;
}

void applyRope(float *x, const int32_t *positions, int64_t tokens,
               int64_t heads, int64_t headDim, int64_t rotaryDim, double theta,
               ThreadPool &pool) {
  assert(rotaryDim % 2 == 0 && rotaryDim >= 0 && rotaryDim <= headDim);
  int64_t half = rotaryDim / 2;
  if (half == 0)
    return;
  // transformers: inv_freq = 1 / base ** (arange(0, dim, 2) / dim); we take
  // the correctly rounded value (double pow, one rounding to float).
  std::vector<float> invFreq(half);
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] =
        float(1.0 / std::pow(theta, double(2 * i) / double(rotaryDim)));
  pool.parallelFor(tokens, [&](int64_t begin, int64_t end) {
    std::vector<float> cosv(half), sinv(half);
    for (int64_t t = begin; t < end; ++t) {
      // The angle is a float product (torch's inv_freq @ position_ids), and
      // cos/sin are taken of that float, in float.
      float pos = float(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        float angle = pos * invFreq[i];
        cosv[i] = std::cos(angle);
        sinv[i] = std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float *xh = x + (t * heads + h) * headDim;
        for (int64_t i = 0; i < half; ++i) {
          float x1 = xh[i], x2 = xh[i + half];
          // q * cos + rotate_half(q) * sin, rotate_half = cat(-x2, x1).
          xh[i] = x1 * cosv[i] - x2 * sinv[i];
          xh[i + half] = x2 * cosv[i] + x1 * sinv[i];
        }
      }
    }
  });
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

Status checkParams(const AttentionParams &p, const KvCacheView &c) {
  if (p.numHeads <= 0 || p.numKvHeads <= 0 || p.headDim <= 0)
    return Status::error("attention expects positive num_heads (" +
                         str(p.numHeads) + "), num_kv_heads (" +
                         str(p.numKvHeads) + ") and head_dim (" +
                         str(p.headDim) + ")");
  if (p.numHeads % p.numKvHeads != 0)
    return Status::error("attention expects num_heads (" + str(p.numHeads) +
                         ") to be a multiple of num_kv_heads (" +
                         str(p.numKvHeads) + ")");
  if (p.rotaryDim < 0 || p.rotaryDim > p.headDim || p.rotaryDim % 2 != 0)
    return Status::error("attention expects an even rotary_dim (" +
                         str(p.rotaryDim) + ") in [0, head_dim (" +
                         str(p.headDim) + ")]");
  if (c.data == nullptr)
    return Status::error("attention got a KV cache view without storage");
  if (c.kvHeads != p.numKvHeads || c.headDim != p.headDim)
    return Status::error("KV cache holds " + str(c.kvHeads) + " heads of " +
                         str(c.headDim) + " but attention has " +
                         str(p.numKvHeads) + " heads of " + str(p.headDim));
  if (p.layer < 0 || p.layer >= c.layers)
    return Status::error("attention layer " + str(p.layer) +
                         " out of range [0, " + str(c.layers) + ")");
  if (c.blockSize <= 0 || c.numBlocks <= 0)
    return Status::error("KV cache has block size " + str(c.blockSize) +
                         " and " + str(c.numBlocks) + " blocks");
  return Status::ok();
}

// Rows of one layer of the cache, decoded to float on the fly for bf16.
class CacheLayer {
public:
  CacheLayer(KvCacheView &c, int64_t layer) : c_(c), layer_(layer) {}

  const float *row(int64_t block, int64_t slot, int kv, int64_t head,
                   float *tmp) const {
    int64_t off = offset(block, slot, kv, head);
    if (!c_.bf16)
      return static_cast<const float *>(c_.data) + off;
    const uint16_t *src = static_cast<const uint16_t *>(c_.data) + off;
    for (int64_t d = 0; d < c_.headDim; ++d)
      tmp[d] = bf16ToFloat(src[d]);
    return tmp;
  }

  void write(int64_t block, int64_t slot, int kv, int64_t head,
             const float *src) {
    int64_t off = offset(block, slot, kv, head);
    if (!c_.bf16) {
      std::memcpy(static_cast<float *>(c_.data) + off, src,
                  sizeof(float) * c_.headDim);
      return;
    }
    uint16_t *dst = static_cast<uint16_t *>(c_.data) + off;
    for (int64_t d = 0; d < c_.headDim; ++d)
      dst[d] = floatToBf16(src[d]);
  }

private:
  int64_t offset(int64_t block, int64_t slot, int kv, int64_t head) const {
    return ((((layer_ * c_.numBlocks + block) * c_.blockSize + slot) * 2 + kv) *
                c_.kvHeads +
            head) *
           c_.headDim;
  }

  KvCacheView &c_;
  int64_t layer_;
};

} // namespace

Status attention(const float *q, const float *k, const float *v,
                 const int32_t *positions, const int32_t *tokenSeqs,
                 int64_t tokens, const int32_t *blockTables, int64_t numSeqs,
                 int64_t maxBlocks, const AttentionParams &params,
                 KvCacheView &cache, float *out, ThreadPool &pool) {
  M2C_RETURN_IF_ERROR(checkParams(params, cache));
  if (tokens <= 0)
    return Status::ok();
  const int64_t H = params.numHeads, KV = params.numKvHeads, D = params.headDim,
                bs = cache.blockSize;

  // Validate every write and every read before touching the cache, so a bad
  // batch leaves it exactly as it was.
  std::vector<int64_t> maxPos(std::max<int64_t>(numSeqs, 0), -1);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t s = tokenSeqs[t], p = positions[t];
    if (s < 0 || s >= numSeqs)
      return Status::error("token " + str(t) + " has sequence index " + str(s) +
                           " out of range [0, " + str(numSeqs) + ")");
    std::string where = "token " + str(t) + " (sequence " + str(s) +
                        ", position " + str(p) + ")";
    if (p < 0)
      return Status::error(where + " has a negative position");
    int64_t entry = p / bs;
    if (entry >= maxBlocks)
      return Status::error(where +
                           " is beyond its block table: it needs entry " +
                           str(entry) + " but the table has " + str(maxBlocks) +
                           " entries of " + str(bs) + " positions");
    int64_t block = blockTables[s * maxBlocks + entry];
    if (block == 0)
      return Status::error(where + " would write to the null block 0 " +
                           "(block table entry " + str(entry) + ")");
    if (block < 0 || block >= cache.numBlocks)
      return Status::error(where + " maps to block " + str(block) +
                           " out of range [1, " + str(cache.numBlocks) +
                           ") (block table entry " + str(entry) + ")");
    maxPos[s] = std::max(maxPos[s], p);
  }
  for (int64_t s = 0; s < numSeqs; ++s) {
    for (int64_t entry = 0; maxPos[s] >= 0 && entry <= maxPos[s] / bs;
         ++entry) {
      int64_t block = blockTables[s * maxBlocks + entry];
      std::string where = "sequence " + str(s) + " reads positions up to " +
                          str(maxPos[s]) + " but its block table entry " +
                          str(entry);
      if (block == 0)
        return Status::error(where + " is the null block 0");
      if (block < 0 || block >= cache.numBlocks)
        return Status::error(where + " holds block " + str(block) +
                             " out of range [1, " + str(cache.numBlocks) + ")");
    }
  }

  std::vector<float> qRot(q, q + tokens * H * D);
  std::vector<float> kRot(k, k + tokens * KV * D);
  applyRope(qRot.data(), positions, tokens, H, D, params.rotaryDim,
            params.ropeTheta, pool);
  applyRope(kRot.data(), positions, tokens, KV, D, params.rotaryDim,
            params.ropeTheta, pool);

  // Serial and in token order: cheap, and a duplicate (sequence, position)
  // in one batch deterministically keeps the last token's values.
  CacheLayer layer(cache, params.layer);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t s = tokenSeqs[t], p = positions[t];
    int64_t block = blockTables[s * maxBlocks + p / bs];
    for (int64_t h = 0; h < KV; ++h) {
      layer.write(block, p % bs, 0, h, kRot.data() + (t * KV + h) * D);
      layer.write(block, p % bs, 1, h, v + (t * KV + h) * D);
    }
  }

  int64_t maxCtx = 0;
  for (int64_t t = 0; t < tokens; ++t)
    maxCtx = std::max(maxCtx, maxPos[tokenSeqs[t]] + 1);
  // A task is one token and a run of query heads that share a KV head, so
  // each cached K/V row is read (and decoded from bf16) once for all of
  // them. The run length only trades locality for parallelism: every
  // (token, head) output is still computed start to finish in one task.
  const int64_t group = H / KV;
  const int64_t wanted = 4 * int64_t(pool.numThreads());
  const int64_t headsPerTask = std::max<int64_t>(
      1, std::min(group, group * tokens * KV / std::max<int64_t>(wanted, 1)));
  const int64_t tasksPerKvHead = (group + headsPerTask - 1) / headsPerTask;
  // transformers: scaling = head_dim ** -0.5 in python (double), applied to
  // a float tensor, i.e. rounded to float once.
  const float scale = float(std::pow(double(D), -0.5));
  pool.parallelFor(tokens * KV * tasksPerKvHead, [&](int64_t begin,
                                                     int64_t end) {
    std::vector<float> scores(headsPerTask * maxCtx), tmp(D);
    std::vector<float> maxScore(headsPerTask), invSum(headsPerTask);
    std::vector<double> acc(headsPerTask * D);
    for (int64_t idx = begin; idx < end; ++idx) {
      int64_t t = idx / (KV * tasksPerKvHead);
      int64_t kvh = (idx / tasksPerKvHead) % KV;
      int64_t h0 = kvh * group + (idx % tasksPerKvHead) * headsPerTask;
      int64_t nh = std::min(headsPerTask, (kvh + 1) * group - h0);
      int64_t s = tokenSeqs[t];
      int64_t ctx = (params.causal ? int64_t(positions[t]) : maxPos[s]) + 1;
      const int32_t *table = blockTables + s * maxBlocks;
      const float *q0 = qRot.data() + (t * H + h0) * D;

      std::fill(maxScore.begin(), maxScore.end(),
                -std::numeric_limits<float>::infinity());
      for (int64_t p = 0; p < ctx; ++p) {
        const float *kr = layer.row(table[p / bs], p % bs, 0, kvh, tmp.data());
        for (int64_t g = 0; g < nh; ++g) {
          float sc = detail::dot(q0 + g * D, kr, D) * scale;
          scores[g * maxCtx + p] = sc;
          maxScore[g] = std::max(maxScore[g], sc);
        }
      }
      for (int64_t g = 0; g < nh; ++g) {
        float *sg = scores.data() + g * maxCtx;
        double sum = 0.0;
        for (int64_t p = 0; p < ctx; ++p) {
          sg[p] = std::exp(sg[p] - maxScore[g]);
          sum += sg[p];
        }
        // torch's softmax multiplies by the reciprocal of the sum.
        invSum[g] = float(1.0 / sum);
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t p = 0; p < ctx; ++p) {
        const float *vr = layer.row(table[p / bs], p % bs, 1, kvh, tmp.data());
        for (int64_t g = 0; g < nh; ++g) {
          double prob = scores[g * maxCtx + p] * invSum[g];
          double *ag = acc.data() + g * D;
          for (int64_t d = 0; d < D; ++d)
            ag[d] += prob * double(vr[d]);
        }
      }
      float *o = out + (t * H + h0) * D;
      for (int64_t i = 0; i < nh * D; ++i)
        o[i] = float(acc[i]);
    }
  });
  return Status::ok();
}

} // namespace m2c::cpu
