//===- Sampler.h - Next-token selection from logits -------------*- C++ -*-===//
//
// The order is fixed and documented in docs/sampling.md, because it decides
// which token a seed produces:
//   greedy (temperature == 0): argmax, lowest index on ties, no RNG draw;
//   otherwise: logits / temperature -> top-k -> softmax (fp32, max
//   subtracted) -> top-p -> one uniform draw, walking the kept tokens in
//   ascending token id.
// Each non-greedy call consumes exactly one Rng draw.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SAMPLING_SAMPLER_H
#define M2C_RUNTIME_SAMPLING_SAMPLER_H

#include "runtime/sampling/Rng.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>

namespace m2c {

/// Value-initialise (`SamplingParams{}`) for greedy decoding.
struct SamplingParams {
  /// 0 = greedy.
  float temperature = 0.0f;
  /// Keep only the k most likely tokens; 0 = off.
  int32_t topK = 0;
  /// Keep the smallest most-likely set with probability mass >= topP; in
  /// (0, 1], 1 = off.
  float topP = 1.0f;
  /// Seeds the sequence's Rng; the sampler itself never reads it.
  uint64_t seed = 0;

  bool isGreedy() const { return temperature == 0.0f; }
};

/// Errors name the field and value, e.g. "top_p must be in (0, 1], got 1.5".
Status validateSamplingParams(const SamplingParams &params);

/// Picks the next token from `vocab` logits. Fails on invalid params, on
/// vocab outside [1, 2^31), on NaN or +inf logits, and when every logit is
/// -inf (nothing can be sampled).
StatusOr<int32_t> sample(const float *logits, int64_t vocab,
                         const SamplingParams &params, Rng &rng);

/// ids[r] = the greedy choice of row r of `rows` rows of logits, as sample()
/// makes it, or -1 for a row sample() refuses (a NaN or +inf logit, or only
/// -inf). What a plan's greedy ids mean (the lm_head kernel).
void greedyIds(const float *logits, int64_t rows, int64_t vocab, int32_t *ids);

/// The order of a plan's sampling candidates: larger logit first (-0 as
/// +0, NaN above +inf), then the lower id; one u64 whose larger value
/// ranks first, as the lm_head kernel builds it.
uint64_t candidateKey(float logit, int32_t id);

/// For each of `rows` rows, the `count` (<= vocab) best logits by
/// candidateKey, best first: ids and values [rows, count]. What a plan's
/// candidate outputs hold.
void topCandidates(const float *logits, int64_t rows, int64_t vocab, int64_t count,
                   int32_t *ids, float *values);

/// sample() of a whole row, from the row's `count` best candidates alone
/// (topCandidates' order) when they decide it exactly: the same token and
/// the same single Rng draw. Needs a row sample() accepts (its greedy id is
/// not -1). Returns nullopt, drawing nothing, when tokens outside the
/// candidates could be drawn (top-k off or >= count, or the k-th scaled
/// logit tied with the worst candidate's): then sample the whole row.
std::optional<int32_t> sampleFromCandidates(const int32_t *ids, const float *logits,
                                            int64_t count, int64_t vocab,
                                            const SamplingParams &params, Rng &rng);

} // namespace m2c

#endif // M2C_RUNTIME_SAMPLING_SAMPLER_H
