// The sampler: greedy, temperature, top-k and top-p selection in a fixed, portable order.
#include "runtime/sampling/Sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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
bool byProbDesc(const Candidate &a, const Candidate &b) {
  return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
}
bool byId(const Candidate &a, const Candidate &b) { return a.id < b.id; }

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
  std::vector<Candidate> cands;
  cands.reserve(static_cast<size_t>(numFinite));
  for (int64_t i = 0; i < vocab; ++i)
    if (logits[i] != -std::numeric_limits<float>::infinity())
      cands.push_back({logits[i] / params.temperature, 0.0f,
                       static_cast<int32_t>(i)});

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
    // Sorting a 200k vocab costs tens of ms, but the nucleus is usually
    // small: sort only the best m candidates, growing m until the mass is
    // reached. The order is a strict total order, so the first m of a
    // partial sort are exactly the first m of a full sort and the result
    // does not depend on m.
    const float threshold = params.topP * total;
    size_t keep = 0;
    for (size_t m = std::min<size_t>(cands.size(), 1024);;
         m = std::min(cands.size(), m * 4)) {
      if (m < cands.size())
        std::nth_element(cands.begin(), cands.begin() + m, cands.end(),
                         byProbDesc);
      std::sort(cands.begin(), cands.begin() + m, byProbDesc);
      float cum = 0.0f;
      keep = 0;
      while (keep < m && cum < threshold)
        cum += cands[keep++].prob;
      if (cum >= threshold || m == cands.size())
        break;
    }
    cands.resize(std::max<size_t>(keep, 1));
    std::sort(cands.begin(), cands.end(), byId);
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

} // namespace m2c
