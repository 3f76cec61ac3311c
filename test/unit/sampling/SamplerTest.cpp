// Unit tests for the sampler and Rng: greedy ties, filters, determinism, distribution, bad params.
#include "runtime/sampling/Sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

using namespace m2c;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t draw(const std::vector<float> &logits, const SamplingParams &params,
             Rng &rng) {
  StatusOr<int32_t> t =
      sample(logits.data(), int64_t(logits.size()), params, rng);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return t.isOk() ? *t : -1;
}

std::string errorOf(const std::vector<float> &logits,
                    const SamplingParams &params) {
  Rng rng(0);
  StatusOr<int32_t> t =
      sample(logits.data(), int64_t(logits.size()), params, rng);
  return t.isOk() ? "<ok>" : t.status().message();
}

std::vector<float> logOf(const std::vector<double> &probs) {
  std::vector<float> out;
  for (double p : probs)
    out.push_back(static_cast<float>(std::log(p)));
  return out;
}

std::vector<int> histogram(const std::vector<float> &logits,
                           const SamplingParams &params, uint64_t seed,
                           int n) {
  Rng rng(seed);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i)
    ++counts[size_t(draw(logits, params, rng))];
  return counts;
}

double chiSquare(const std::vector<int> &counts,
                 const std::vector<double> &probs, int n) {
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    double expected = n * probs[i];
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

SamplingParams withTemperature(float t) {
  SamplingParams p;
  p.temperature = t;
  return p;
}

} // namespace

TEST(SamplingRngTest, SplitMix64IsPinned) {
  // Reference values of splitmix64 seeded with 0.
  Rng rng(0);
  EXPECT_EQ(rng.nextU64(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.nextU64(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.nextU64(), 0x06C45D188009454FULL);
}

TEST(SamplingRngTest, FloatsAreInUnitInterval) {
  Rng rng(7);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    float u = rng.nextFloat();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
}

TEST(SamplingRngTest, StreamsDiffer) {
  Rng a = Rng::forStream(42, 0), b = Rng::forStream(42, 1);
  Rng a2 = Rng::forStream(42, 0);
  EXPECT_NE(a.nextU64(), b.nextU64());
  EXPECT_EQ(Rng::forStream(42, 0).nextU64(), a2.nextU64());
}

TEST(SamplingTest, DefaultParamsAreGreedyAndValid) {
  SamplingParams p{};
  EXPECT_TRUE(p.isGreedy());
  EXPECT_TRUE(validateSamplingParams(p).isOk());
}

TEST(SamplingTest, GreedyPicksLowestIndexOnTies) {
  Rng rng(1);
  SamplingParams greedy;
  EXPECT_EQ(draw({1.0f, 3.0f, 3.0f, 2.0f}, greedy, rng), 1);
  EXPECT_EQ(draw({5.0f, 5.0f}, greedy, rng), 0);
  EXPECT_EQ(draw({kNegInf, -1e30f, kNegInf}, greedy, rng), 1);
  EXPECT_EQ(draw({-2.0f}, greedy, rng), 0);
}

TEST(SamplingTest, GreedyConsumesNoRandomness) {
  Rng rng(9);
  uint64_t before = rng.state();
  draw({0.1f, 0.9f}, SamplingParams{}, rng);
  EXPECT_EQ(rng.state(), before);
}

TEST(SamplingTest, EachRandomSampleConsumesOneDraw) {
  SamplingParams p = withTemperature(0.7f);
  p.topK = 3;
  p.topP = 0.5f;
  Rng rng(9), reference(9);
  draw({0.1f, 0.9f, 0.3f, -2.0f}, p, rng);
  reference.nextU64();
  EXPECT_EQ(rng.state(), reference.state());
}

TEST(SamplingTest, TopK1EqualsGreedy) {
  Rng gen(123);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(50);
    for (float &l : logits)
      l = gen.nextFloat() * 10 - 5;
    logits[gen.nextU64() % 50] = 7.0f; // sometimes tied with nothing
    SamplingParams p = withTemperature(1.5f);
    p.topK = 1;
    Rng rng(trial), greedyRng(trial);
    ASSERT_EQ(draw(logits, p, rng), draw(logits, SamplingParams{}, greedyRng));
  }
}

TEST(SamplingTest, TopK1TieKeepsLowestIndex) {
  SamplingParams p = withTemperature(1.0f);
  p.topK = 1;
  Rng rng(5);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(draw({0.0f, 4.0f, 1.0f, 4.0f}, p, rng), 1);
}

TEST(SamplingTest, TinyTopPEqualsGreedy) {
  Rng gen(321);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(50);
    for (float &l : logits)
      l = gen.nextFloat() * 10 - 5;
    SamplingParams p = withTemperature(1.0f);
    p.topP = 1e-6f;
    Rng rng(trial), greedyRng(trial);
    ASSERT_EQ(draw(logits, p, rng), draw(logits, SamplingParams{}, greedyRng));
  }
}

TEST(SamplingTest, SameSeedSameSequence) {
  std::vector<float> logits = {0.5f, 1.0f, 1.5f, 0.2f, -0.3f, 2.0f};
  SamplingParams p = withTemperature(1.2f);
  p.topK = 5;
  p.topP = 0.9f;
  p.seed = 2024;
  Rng a(p.seed), b(p.seed), c(p.seed + 1);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(draw(logits, p, a));
    sb.push_back(draw(logits, p, b));
    sc.push_back(draw(logits, p, c));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(SamplingTest, FrequenciesMatchSoftmax) {
  // Deterministic seed: this is a regression check, it cannot flake.
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  const int n = 40000;
  std::vector<int> counts =
      histogram(logOf(probs), withTemperature(1.0f), 77, n);
  // 16.27 = chi-square critical value for 3 degrees of freedom at p = 0.001.
  EXPECT_LT(chiSquare(counts, probs, n), 16.27)
      << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3];
}

TEST(SamplingTest, TemperatureSharpensAndFlattens) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  const int n = 40000;
  // Temperature 2 samples from p^(1/2), renormalised.
  std::vector<double> flat;
  double z = 0;
  for (double p : probs)
    z += std::sqrt(p);
  for (double p : probs)
    flat.push_back(std::sqrt(p) / z);
  std::vector<int> counts =
      histogram(logOf(probs), withTemperature(2.0f), 78, n);
  EXPECT_LT(chiSquare(counts, flat, n), 16.27);
}

TEST(SamplingTest, TopKRestrictsSupport) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  SamplingParams p = withTemperature(1.0f);
  p.topK = 2;
  const int n = 20000;
  std::vector<int> counts = histogram(logOf(probs), p, 79, n);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 0);
  EXPECT_LT(chiSquare({counts[2], counts[3]}, {3.0 / 7, 4.0 / 7}, n), 10.83);
}

TEST(SamplingTest, TopPKeepsSmallestSetReachingMass) {
  // Sorted: 0.4, 0.3 (cum 0.7 >= 0.65) -> keep tokens 3 and 2 only.
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  SamplingParams p = withTemperature(1.0f);
  p.topP = 0.65f;
  const int n = 20000;
  std::vector<int> counts = histogram(logOf(probs), p, 80, n);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 0);
  EXPECT_LT(chiSquare({counts[2], counts[3]}, {3.0 / 7, 4.0 / 7}, n), 10.83);
}

TEST(SamplingTest, TopKThenTopP) {
  // top-k 3 keeps {0.2, 0.3, 0.4}/0.9; top-p 0.5 keeps 0.4/0.9 (0.44) and
  // 0.3/0.9 (cum 0.78) -> tokens 2 and 3.
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  SamplingParams p = withTemperature(1.0f);
  p.topK = 3;
  p.topP = 0.5f;
  std::vector<int> counts = histogram(logOf(probs), p, 81, 5000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_GT(counts[3], 0);
}

TEST(SamplingTest, MaskedTokensAreNeverSampled) {
  std::vector<float> logits = {kNegInf, 0.0f, kNegInf, 0.0f, kNegInf};
  std::vector<int> counts = histogram(logits, withTemperature(3.0f), 82, 5000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], 2000);
  EXPECT_GT(counts[3], 2000);
}

TEST(SamplingTest, ExtremeTemperaturesStayFinite) {
  std::vector<float> logits = {100.0f, -100.0f, 99.0f};
  Rng rng(3);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(draw(logits, withTemperature(1e-20f), rng), 0);
  std::vector<int> counts =
      histogram(logits, withTemperature(1e30f), 83, 3000);
  for (int c : counts)
    EXPECT_GT(c, 800); // effectively uniform
}

TEST(SamplingTest, InvalidParamsAreErrors) {
  const std::vector<float> logits = {0.0f, 1.0f};
  SamplingParams p;
  p.topP = 1.5f;
  EXPECT_EQ(errorOf(logits, p), "top_p must be in (0, 1], got 1.5");
  p.topP = 0.0f;
  EXPECT_EQ(errorOf(logits, p), "top_p must be in (0, 1], got 0");
  p.topP = std::nanf("");
  EXPECT_EQ(errorOf(logits, p), "top_p must be in (0, 1], got nan");
  p = SamplingParams{};
  p.topK = -1;
  EXPECT_EQ(errorOf(logits, p), "top_k must be >= 0, got -1");
  p = SamplingParams{};
  p.temperature = -0.5f;
  EXPECT_EQ(errorOf(logits, p),
            "temperature must be a finite number >= 0, got -0.5");
  p.temperature = std::numeric_limits<float>::infinity();
  EXPECT_EQ(errorOf(logits, p),
            "temperature must be a finite number >= 0, got inf");
}

TEST(SamplingTest, InvalidLogitsAreErrors) {
  SamplingParams p;
  EXPECT_EQ(errorOf({}, p), "vocab size must be in [1, 2147483647], got 0");
  EXPECT_EQ(errorOf({0.0f, std::nanf("")}, p),
            "logit at index 1 is not finite (nan)");
  EXPECT_EQ(errorOf({std::numeric_limits<float>::infinity()}, p),
            "logit at index 0 is not finite (inf)");
  EXPECT_EQ(errorOf({kNegInf, kNegInf}, p),
            "all 2 logits are -inf, nothing to sample");
  Rng rng(0);
  StatusOr<int32_t> null = sample(nullptr, 4, p, rng);
  ASSERT_FALSE(null.isOk());
  EXPECT_EQ(null.status().message(), "logits pointer is null");
}

namespace {

// A direct transcription of the order in docs/sampling.md with full sorts,
// to check the optimised sampler picks the same token for the same draw.
int32_t referenceSample(const std::vector<float> &logits,
                        const SamplingParams &p, float u) {
  struct C {
    float score, prob;
    int32_t id;
  };
  std::vector<C> c;
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] != kNegInf)
      c.push_back({logits[i] / p.temperature, 0.0f, int32_t(i)});
  auto byId = [](const C &a, const C &b) { return a.id < b.id; };
  if (p.topK > 0 && size_t(p.topK) < c.size()) {
    std::sort(c.begin(), c.end(), [](const C &a, const C &b) {
      return a.score > b.score || (a.score == b.score && a.id < b.id);
    });
    c.resize(size_t(p.topK));
    std::sort(c.begin(), c.end(), byId);
  }
  float mx = kNegInf, total = 0.0f;
  for (const C &x : c)
    mx = std::max(mx, x.score);
  for (C &x : c)
    total += (x.prob = std::exp(x.score - mx));
  if (p.topP < 1.0f) {
    std::sort(c.begin(), c.end(), [](const C &a, const C &b) {
      return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
    });
    float cum = 0.0f, threshold = p.topP * total;
    size_t keep = 0;
    while (keep < c.size() && cum < threshold)
      cum += c[keep++].prob;
    c.resize(std::max<size_t>(keep, 1));
    std::sort(c.begin(), c.end(), byId);
    total = 0.0f;
    for (const C &x : c)
      total += x.prob;
  }
  float target = u * total, acc = 0.0f;
  int32_t last = -1;
  for (const C &x : c) {
    if (x.prob <= 0.0f)
      continue;
    acc += x.prob;
    last = x.id;
    if (target < acc)
      return x.id;
  }
  return last;
}

TEST(SamplingTest, GreedyIdsAreTheGreedyChoicePerRowAndMinusOneForWhatCannotBeSampled) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float nan = std::nanf("");
  // Rows of 5: a plain maximum; a tie (lowest wins); -0 ties +0; -inf is a
  // mask; a NaN; +inf; nothing but -inf.
  std::vector<float> rows = {0.1f, 0.7f, -2.f, 0.3f, 0.7f,  //
                             1.f,  3.f,  3.f,  -1.f, 3.f,   //
                             -0.f, 0.f,  -inf, -1.f, -5.f,  //
                             -inf, -inf, 2.f,  -inf, -inf,  //
                             1.f,  nan,  9.f,  0.f,  0.f,   //
                             1.f,  2.f,  inf,  0.f,  0.f,   //
                             -inf, -inf, -inf, -inf, -inf};
  std::vector<int32_t> ids(7, 42);
  greedyIds(rows.data(), 7, 5, ids.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 1, 0, 2, -1, -1, -1}));
  // Random rows: the first index of the maximum.
  std::vector<float> x(64 * 1000);
  Rng rng(21);
  for (float &v : x)
    v = rng.nextFloat() - 0.5f;
  std::vector<int32_t> best(64);
  greedyIds(x.data(), 64, 1000, best.data());
  for (int r = 0; r < 64; ++r)
    EXPECT_EQ(best[r], std::max_element(x.begin() + r * 1000, x.begin() + (r + 1) * 1000) -
                           (x.begin() + r * 1000));
}

} // namespace

TEST(SamplingTest, MatchesReferenceOnLargeVocab) {
  // Flat-ish logits make the nucleus larger than the sampler's first
  // partial-sort window, so its widening path is exercised.
  Rng gen(99);
  const float topPs[] = {1.0f, 0.95f, 0.5f, 0.05f};
  const int32_t topKs[] = {0, 1, 40, 3000};
  for (int trial = 0; trial < 32; ++trial) {
    std::vector<float> logits(6000);
    for (float &l : logits)
      l = std::floor(gen.nextFloat() * 8.0f); // many exact ties
    logits[gen.nextU64() % logits.size()] = kNegInf;
    SamplingParams p = withTemperature(0.5f + float(trial % 4));
    p.topP = topPs[trial % 4];
    p.topK = topKs[(trial / 4) % 4];
    Rng rng{uint64_t(trial)}, peek{uint64_t(trial)};
    int32_t got = draw(logits, p, rng);
    ASSERT_EQ(got, referenceSample(logits, p, peek.nextFloat()))
        << "trial " << trial;
  }
}

TEST(SamplingTest, FlatFullVocabTopPMatchesReference) {
  // A near-flat 200064-token vocabulary (random weights, high temperature):
  // the nucleus spans most of it, so the sampler takes its radix-sort path.
  Rng gen(7);
  std::vector<float> logits(200064);
  for (float &l : logits)
    l = 0.05f * (gen.nextFloat() - 0.5f);
  logits[123] = logits[4567]; // an exact tie across the boundary region
  for (int trial = 0; trial < 3; ++trial) {
    SamplingParams p = withTemperature(0.8f);
    p.topP = trial == 2 ? 0.5f : 0.9f;
    Rng rng{uint64_t(trial)}, peek{uint64_t(trial)};
    int32_t got = draw(logits, p, rng);
    ASSERT_EQ(got, referenceSample(logits, p, peek.nextFloat())) << "trial " << trial;
  }
}

TEST(SamplingTest, TopCandidatesAreTheBestLogitsBestFirst) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  // Ties rank the lower id first; -0 ties +0; -inf ranks last.
  std::vector<float> row = {0.5f, -0.f, 2.f, 0.5f, -inf, 0.f, 2.f, -1.f};
  std::vector<int32_t> ids(5);
  std::vector<float> values(5);
  topCandidates(row.data(), 1, 8, 5, ids.data(), values.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 6, 0, 3, 1}));
  EXPECT_EQ(values, (std::vector<float>{2.f, 2.f, 0.5f, 0.5f, -0.f}));
  EXPECT_TRUE(std::signbit(values[4])) << "a candidate's value is the logit itself";
  // Every candidate ranks above every other token.
  Rng gen(3);
  std::vector<float> x(3 * 997);
  for (float &v : x)
    v = std::floor(gen.nextFloat() * 50.0f); // many exact ties
  std::vector<int32_t> best(3 * 64);
  std::vector<float> bestValues(3 * 64);
  topCandidates(x.data(), 3, 997, 64, best.data(), bestValues.data());
  for (int r = 0; r < 3; ++r) {
    const float *logits = x.data() + r * 997;
    std::vector<char> taken(997, 0);
    for (int c = 0; c < 64; ++c) {
      int32_t id = best[r * 64 + c];
      taken[id] = 1;
      EXPECT_EQ(bestValues[r * 64 + c], logits[id]);
      if (c > 0)
        EXPECT_GT(candidateKey(logits[best[r * 64 + c - 1]], best[r * 64 + c - 1]),
                  candidateKey(logits[id], id));
    }
    uint64_t worst = candidateKey(logits[best[r * 64 + 63]], best[r * 64 + 63]);
    for (int32_t i = 0; i < 997; ++i)
      if (!taken[i])
        EXPECT_LT(candidateKey(logits[i], i), worst) << "row " << r << " token " << i;
  }
}

TEST(SamplingTest, CandidatesSampleExactlyAsTheWholeRow) {
  // Whenever the 64 candidates decide, they give the whole row's token and
  // consume the same draw; when they cannot, they say so and draw nothing.
  Rng gen(11);
  const float topPs[] = {1.0f, 0.9f, 0.3f};
  const int32_t topKs[] = {1, 20, 40, 63, 64, 0, 100};
  int decided = 0, declined = 0;
  for (int trial = 0; trial < 210; ++trial) {
    std::vector<float> logits(5000);
    for (float &l : logits)
      l = trial % 2 ? std::floor(gen.nextFloat() * 400.0f) * 0.01f // ties
                    : 4.0f * (gen.nextFloat() - 0.5f);
    SamplingParams p = withTemperature(trial % 5 == 0 ? 1e-30f : 0.3f + float(trial % 3));
    p.topP = topPs[trial % 3];
    p.topK = topKs[(trial / 3) % 7];
    std::vector<int32_t> ids(64);
    std::vector<float> values(64);
    topCandidates(logits.data(), 1, 5000, 64, ids.data(), values.data());
    Rng whole{uint64_t(trial)}, fromCandidates{uint64_t(trial)};
    std::optional<int32_t> got =
        sampleFromCandidates(ids.data(), values.data(), 64, 5000, p, fromCandidates);
    if (!got) {
      ++declined;
      // Only for top-k off or too wide, or a k-th scaled logit that ties
      // the worst candidate's (as tied logits and tiny temperatures make).
      EXPECT_TRUE(p.topK == 0 || p.topK >= 64 ||
                  values[p.topK - 1] / p.temperature == values[63] / p.temperature)
          << "trial " << trial;
      EXPECT_EQ(fromCandidates.nextU64(), Rng{uint64_t(trial)}.nextU64()) << "drew";
      continue;
    }
    ++decided;
    EXPECT_NE(p.topK, 0) << "trial " << trial;
    ASSERT_EQ(*got, draw(logits, p, whole)) << "trial " << trial;
    EXPECT_EQ(fromCandidates.nextU64(), whole.nextU64()) << "trial " << trial;
  }
  EXPECT_GT(decided, 100);
  EXPECT_GT(declined, 50);
}

TEST(SamplingTest, CandidatesDeclineATieOfScaledLogitsAtTheirBoundary) {
  // Distinct logits whose scaled values tie (subnormal after dividing by
  // 3e38): the whole row's top-2 would take id 0, outside the candidates,
  // by the lower id.
  const float one = 1.0f, up1 = std::nextafter(one, 2.0f);
  std::vector<float> logits = {one, 3.0f, up1, up1};
  std::vector<int32_t> ids(3);
  std::vector<float> values(3);
  topCandidates(logits.data(), 1, 4, 3, ids.data(), values.data());
  ASSERT_EQ(ids, (std::vector<int32_t>{1, 2, 3}));
  SamplingParams p = withTemperature(3e38f);
  p.topK = 2;
  ASSERT_EQ(up1 / p.temperature, one / p.temperature);
  Rng rng(5);
  EXPECT_FALSE(sampleFromCandidates(ids.data(), values.data(), 3, 4, p, rng).has_value());
  // With top-1 the best candidate beats the worst and they decide.
  p.topK = 1;
  Rng a(5), b(5);
  std::optional<int32_t> got = sampleFromCandidates(ids.data(), values.data(), 3, 4, p, a);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, draw(logits, p, b));
  // Every finite token is a candidate when the worst one is -inf: they
  // decide even with top-k off.
  std::vector<float> masked = {kNegInf, 1.0f, 2.0f, kNegInf};
  topCandidates(masked.data(), 1, 4, 3, ids.data(), values.data());
  p = withTemperature(1.0f);
  Rng c(9), d(9);
  got = sampleFromCandidates(ids.data(), values.data(), 3, 4, p, c);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, draw(masked, p, d));
}
