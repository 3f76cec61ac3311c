// The sampler: greedy, temperature, top-k and top-p selection in a fixed, portable order.
#include "runtime/sampling/Sampler.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace m2c {

namespace {

std::string formatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(v));
  return buf;
}

struct Candidate {
  float score; // logit / temperature
  float prob;  // unnormalised: exp(score - max score)
  int32_t id;
};

// A strict total order (ties by token id), so std::sort and std::nth_element
// give the same result under every standard library.
bool byScoreDesc(const Candidate &a, const Candidate &b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}
bool byId(const Candidate &a, const Candidate &b) { return a.id < b.id; }

uint32_t floatBits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits;
}

/// The probability a top-p key carries in its high half.
float probOf(uint64_t key) {
  uint32_t bits = ~uint32_t(key >> 32);
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

/// LSD radix sort, 16 bits a pass: a few ms for 200k keys where std::sort
/// takes tens.
void radixSort(std::vector<uint64_t> &keys, std::vector<uint64_t> &scratch) {
  scratch.resize(keys.size()); // every slot is written below
  std::vector<uint32_t> counts(1 << 16);
  for (int shift = 0; shift < 64; shift += 16) {
    std::fill(counts.begin(), counts.end(), 0);
    for (uint64_t k : keys)
      ++counts[(k >> shift) & 0xFFFF];
    uint32_t offset = 0;
    for (uint32_t &c : counts) {
      uint32_t n = c;
      c = offset;
      offset += n;
    }
    for (uint64_t k : keys)
      scratch[counts[(k >> shift) & 0xFFFF]++] = k;
    keys.swap(scratch);
  }
}

/// Steps 2-5 of docs/sampling.md on the finite tokens' scaled logits, in
/// ascending id order; one Rng draw.
int32_t sampleScaled(std::vector<Candidate> &cands, const SamplingParams &params, Rng &rng) {
  static thread_local std::vector<uint64_t> keys, scratch;
  static thread_local std::vector<char> kept;
  // 2. Top-k over the scaled logits; back to id order afterwards so the
  // float sums below do not depend on nth_element's permutation.
  if (params.topK > 0 && static_cast<size_t>(params.topK) < cands.size()) {
    std::nth_element(cands.begin(), cands.begin() + params.topK, cands.end(),
                     byScoreDesc);
    cands.resize(static_cast<size_t>(params.topK));
    std::sort(cands.begin(), cands.end(), byId);
  }

  // 3. Softmax numerators in fp32 with the max subtracted (no overflow); the
  // normalisation is folded into the draw.
  float maxScore = -std::numeric_limits<float>::infinity();
  for (const Candidate &c : cands)
    maxScore = std::max(maxScore, c.score);
  float total = 0.0f;
  for (Candidate &c : cands) {
    c.prob = std::exp(c.score - maxScore);
    total += c.prob;
  }

  // 4. Top-p: the smallest most-likely prefix with mass >= topP, at least
  // one token (the most likely one always survives).
  if (params.topP < 1.0f) {
    // Descending probability, ties by ascending id, as one integer:
    // probabilities are >= 0, so their bits order like the values, and
    // inverted, ascending keys are descending probabilities. The low half
    // is the candidate's index, which orders like its id (cands are in id
    // order here).
    keys.resize(cands.size());
    for (size_t i = 0; i < cands.size(); ++i)
      keys[i] = uint64_t(~floatBits(cands[i].prob)) << 32 | uint32_t(i);
    // The nucleus is usually small: sort only the best m keys, growing m
    // until the mass is reached (the first m of a partial sort are the
    // first m of a full sort, so the result does not depend on m). A flat
    // distribution (high temperature, random weights) needs nearly all of
    // a 200k vocabulary: that sort is a radix sort.
    const float threshold = params.topP * total;
    size_t keep = 0;
    for (size_t m = std::min<size_t>(keys.size(), 1024);;
         m = std::min(keys.size(), m * 4)) {
      if (m * 4 >= keys.size() && keys.size() > 4096) {
        radixSort(keys, scratch);
        m = keys.size();
      } else {
        if (m < keys.size())
          std::nth_element(keys.begin(), keys.begin() + m, keys.end());
        std::sort(keys.begin(), keys.begin() + m);
      }
      float cum = 0.0f;
      keep = 0;
      while (keep < m && cum < threshold)
        cum += probOf(keys[keep++]);
      if (cum >= threshold || m == keys.size())
        break;
    }
    // The kept candidates, still in id order.
    kept.assign(cands.size(), 0);
    for (size_t i = 0; i < std::max<size_t>(keep, 1); ++i)
      kept[uint32_t(keys[i])] = 1;
    size_t out = 0;
    for (size_t i = 0; i < cands.size(); ++i)
      if (kept[i])
        cands[out++] = cands[i];
    cands.resize(out);
    total = 0.0f;
    for (const Candidate &c : cands)
      total += c.prob;
  }

  // 5. One draw, walking kept tokens in ascending id. The sum is re-done in
  // the same order as `total`, so the walk ends exactly at `total`; rounding
  // of u * total can only land on the last token with nonzero probability.
  const float target = rng.nextFloat() * total;
  float acc = 0.0f;
  int32_t lastPositive = cands.front().id;
  for (const Candidate &c : cands) {
    if (c.prob <= 0.0f)
      continue;
    acc += c.prob;
    lastPositive = c.id;
    if (target < acc)
      return c.id;
  }
  return lastPositive;
}

} // namespace

Status validateSamplingParams(const SamplingParams &params) {
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature))
    return Status::error("temperature must be a finite number >= 0, got " +
                         formatFloat(params.temperature));
  if (params.topK < 0)
    return Status::error("top_k must be >= 0, got " +
                         std::to_string(params.topK));
  if (!(params.topP > 0.0f && params.topP <= 1.0f))
    return Status::error("top_p must be in (0, 1], got " +
                         formatFloat(params.topP));
  return Status::ok();
}

void greedyIds(const float *logits, int64_t rows, int64_t vocab, int32_t *ids) {
  Rng unused(0); // greedy sampling draws nothing
  for (int64_t r = 0; r < rows; ++r) {
    StatusOr<int32_t> id = sample(logits + r * vocab, vocab, SamplingParams{}, unused);
    ids[r] = id ? *id : -1;
  }
}

StatusOr<int32_t> sample(const float *logits, int64_t vocab,
                         const SamplingParams &params, Rng &rng) {
  M2C_RETURN_IF_ERROR(validateSamplingParams(params));
  if (vocab < 1 || vocab > std::numeric_limits<int32_t>::max())
    return Status::error("vocab size must be in [1, 2147483647], got " +
                         std::to_string(vocab));
  if (!logits)
    return Status::error("logits pointer is null");

  // One pass validates and finds the argmax; -inf is a legitimate mask.
  int64_t best = -1;
  float bestLogit = -std::numeric_limits<float>::infinity();
  int64_t numFinite = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    float v = logits[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity())
      return Status::error("logit at index " + std::to_string(i) +
                           " is not finite (" + formatFloat(v) + ")");
    if (v == -std::numeric_limits<float>::infinity())
      continue;
    ++numFinite;
    if (v > bestLogit) {
      bestLogit = v;
      best = i;
    }
  }
  if (best < 0)
    return Status::error("all " + std::to_string(vocab) +
                         " logits are -inf, nothing to sample");
  if (params.isGreedy())
    return static_cast<int32_t>(best);

  // 1. Temperature. -inf tokens have probability 0 and are dropped here.
  // Per-thread buffers: a 200k vocabulary needs a few MB per token, and
  // fresh allocations of that size cost more in page faults than the work.
  static thread_local std::vector<Candidate> cands;
  cands.clear();
  cands.reserve(static_cast<size_t>(numFinite));
  for (int64_t i = 0; i < vocab; ++i)
    if (logits[i] != -std::numeric_limits<float>::infinity())
      cands.push_back({logits[i] / params.temperature, 0.0f,
                       static_cast<int32_t>(i)});
  return sampleScaled(cands, params, rng);
}

uint64_t candidateKey(float logit, int32_t id) {
  uint32_t bits = floatBits(logit == 0.0f ? 0.0f : logit); // -0 ranks as +0
  uint32_t ordered = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
  return uint64_t(ordered) << 32 | ~uint32_t(id);
}

void topCandidates(const float *logits, int64_t rows, int64_t vocab, int64_t count,
                   int32_t *ids, float *values) {
  std::vector<uint64_t> keys(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = logits + r * vocab;
    for (int64_t i = 0; i < vocab; ++i)
      keys[i] = candidateKey(row[i], static_cast<int32_t>(i));
    std::partial_sort(keys.begin(), keys.begin() + count, keys.end(), std::greater<uint64_t>());
    for (int64_t c = 0; c < count; ++c) {
      int32_t id = static_cast<int32_t>(~uint32_t(keys[c]));
      ids[r * count + c] = id;
      values[r * count + c] = row[id];
    }
  }
}

std::optional<int32_t> sampleFromCandidates(const int32_t *ids, const float *logits,
                                            int64_t count, int64_t vocab,
                                            const SamplingParams &params, Rng &rng) {
  if (params.isGreedy() || count < 1 || !validateSamplingParams(params))
    return std::nullopt;
  const float negInf = -std::numeric_limits<float>::infinity();
  static thread_local std::vector<Candidate> cands;
  cands.clear();
  for (int64_t c = 0; c < count; ++c)
    if (logits[c] != negInf)
      cands.push_back({logits[c] / params.temperature, 0.0f, ids[c]});
  if (cands.empty())
    return std::nullopt;
  // Exact when the candidates hold every token that can be drawn: the whole
  // vocabulary, or every finite logit (the worst candidate is -inf), or a
  // top-k whose k-th score beats the worst candidate's, which no token
  // outside can then reach, even through a tie of scaled logits. The
  // candidates come best first and scaling keeps their order, so the k-th
  // best score is the k-th candidate's.
  bool exact = count >= vocab || logits[count - 1] == negInf;
  if (!exact && params.topK > 0 && static_cast<size_t>(params.topK) < cands.size())
    exact = cands[params.topK - 1].score > logits[count - 1] / params.temperature;
  if (!exact)
    return std::nullopt;
  std::sort(cands.begin(), cands.end(), byId);
  return sampleScaled(cands, params, rng);
}

} // namespace m2c
