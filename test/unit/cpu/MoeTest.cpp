//===- MoeTest.cpp - MoE router and experts vs double references --------===//
#include "runtime/cpu/InputObserver.h"
#include "runtime/cpu/Kernels.h"
#include "test/unit/cpu/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace m2c::cpu {
namespace {
using test::randomVec;
using test::relErr;

struct RouteRef {
  std::vector<int32_t> ids;
  std::vector<double> weights;
  double minGap = 1e300; // smallest gap between consecutive top-(k+1) choices
};

RouteRef routeRef(const std::vector<float> &h, int64_t T, int64_t Hd,
                  const std::vector<float> &gate, const float *bias, int64_t E,
                  int64_t K, bool softmax, bool renormalize) {
  RouteRef r;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> score(E), choice(E);
    for (int64_t e = 0; e < E; ++e) {
      double l = 0;
      for (int64_t i = 0; i < Hd; ++i)
        l += double(h[t * Hd + i]) * gate[e * Hd + i];
      score[e] = softmax ? l : 1.0 / (1.0 + std::exp(-l));
    }
    if (softmax) {
      double mx = *std::max_element(score.begin(), score.end()), sum = 0;
      for (double &s : score)
        sum += (s = std::exp(s - mx));
      for (double &s : score)
        s /= sum;
    }
    for (int64_t e = 0; e < E; ++e)
      choice[e] = score[e] + (bias ? bias[e] : 0.0);
    std::vector<int32_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return choice[a] > choice[b];
    });
    double sum = 0;
    for (int64_t j = 0; j < K; ++j)
      sum += score[order[j]];
    for (int64_t j = 0; j < K; ++j) {
      r.ids.push_back(order[j]);
      r.weights.push_back(score[order[j]] / (renormalize ? sum : 1.0));
    }
    for (int64_t j = 0; j + 1 < std::min(K + 1, E); ++j)
      r.minGap = std::min(r.minGap, choice[order[j]] - choice[order[j + 1]]);
  }
  return r;
}

struct RouterData {
  static constexpr int64_t T = 16, Hd = 72, E = 16, K = 4;
  std::vector<float> hidden = randomVec(T * Hd, 31);
  // ~1/sqrt(fan_in) so logits are O(1) and sigmoid is not saturated.
  std::vector<float> gate = randomVec(E * Hd, 32, -0.2f, 0.2f);
  std::vector<float> bias = randomVec(E, 33, -0.2f, 0.2f);
};

void checkRoute(const RouterData &d, const float *bias, bool softmax,
                bool renormalize) {
  ThreadPool pool(3);
  std::vector<int32_t> ids(d.T * d.K);
  std::vector<float> w(d.T * d.K);
  ASSERT_TRUE(moeRoute(d.hidden.data(), d.T, d.Hd, d.gate.data(), bias, d.E,
                       d.K, softmax, renormalize, ids.data(), w.data(), pool)
                  .isOk());
  RouteRef ref = routeRef(d.hidden, d.T, d.Hd, d.gate, bias, d.E, d.K, softmax,
                          renormalize);
  // The data must not sit on a near tie, or float vs double may flip order.
  ASSERT_GT(ref.minGap, 1e-5);
  EXPECT_EQ(ids, ref.ids);
  EXPECT_LT(relErr(w, ref.weights), 1e-6);
}

TEST(CpuMoeRoute, SigmoidWithBiasMatchesDoubleReference) {
  RouterData d;
  checkRoute(d, d.bias.data(), false, true);
}

TEST(CpuMoeRoute, SoftmaxWithoutBiasOrRenormalization) {
  RouterData d;
  checkRoute(d, nullptr, true, false);
  checkRoute(d, nullptr, false, false);
  checkRoute(d, d.bias.data(), true, true);
}

TEST(CpuMoeRoute, BiasOnlySelects) {
  // Expert 7 scores lowest but a large bias forces it first; its weight must
  // still come from its small unbiased score.
  RouterData d;
  for (int64_t i = 0; i < d.Hd; ++i)
    d.gate[7 * d.Hd + i] = -2.0f * d.hidden[0 * d.Hd + i];
  d.bias[7] = 10.0f;
  ThreadPool pool(1);
  std::vector<int32_t> ids(d.T * d.K);
  std::vector<float> w(d.T * d.K);
  ASSERT_TRUE(moeRoute(d.hidden.data(), d.T, d.Hd, d.gate.data(), d.bias.data(),
                       d.E, d.K, false, true, ids.data(), w.data(), pool)
                  .isOk());
  RouteRef ref = routeRef(d.hidden, d.T, d.Hd, d.gate, d.bias.data(), d.E, d.K,
                          false, true);
  EXPECT_EQ(ids, ref.ids);
  EXPECT_EQ(ids[0], 7);
  EXPECT_LT(w[0], 0.01f);
  EXPECT_LT(relErr(w, ref.weights), 1e-6);
}

TEST(CpuMoeRoute, TiesGoToTheLowerExpertId) {
  RouterData d;
  // Experts 5 and 2 get identical (and dominant) gate rows, so their
  // logits, scores and choices are bitwise equal.
  for (int64_t i = 0; i < d.Hd; ++i)
    d.gate[2 * d.Hd + i] = d.gate[5 * d.Hd + i] = 0.5f * d.hidden[i];
  ThreadPool pool(1);
  std::vector<int32_t> ids(d.T * d.K);
  std::vector<float> w(d.T * d.K);
  ASSERT_TRUE(moeRoute(d.hidden.data(), 1, d.Hd, d.gate.data(), nullptr, d.E,
                       d.K, false, true, ids.data(), w.data(), pool)
                  .isOk());
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 5);
  EXPECT_EQ(w[0], w[1]);
}

TEST(CpuMoeRoute, TopKOutOfRangeIsAnError) {
  RouterData d;
  ThreadPool pool(1);
  std::vector<int32_t> ids(d.T * (d.E + 1));
  std::vector<float> w(d.T * (d.E + 1));
  for (int64_t k : {int64_t(0), d.E + 1}) {
    Status s = moeRoute(d.hidden.data(), d.T, d.Hd, d.gate.data(), nullptr, d.E,
                        k, false, true, ids.data(), w.data(), pool);
    ASSERT_FALSE(s.isOk());
    EXPECT_EQ(s.message(), "moe routing expects top_k (" + std::to_string(k) +
                               ") in [1, num_experts (16)]");
  }
}

TEST(CpuMoeRoute, ThreadCountGivesIdenticalBits) {
  RouterData d;
  ThreadPool one(1), four(4);
  std::vector<int32_t> idsA(d.T * d.K), idsB(d.T * d.K);
  std::vector<float> wA(d.T * d.K), wB(d.T * d.K);
  ASSERT_TRUE(moeRoute(d.hidden.data(), d.T, d.Hd, d.gate.data(), d.bias.data(),
                       d.E, d.K, false, true, idsA.data(), wA.data(), one)
                  .isOk());
  ASSERT_TRUE(moeRoute(d.hidden.data(), d.T, d.Hd, d.gate.data(), d.bias.data(),
                       d.E, d.K, false, true, idsB.data(), wB.data(), four)
                  .isOk());
  EXPECT_EQ(idsA, idsB);
  EXPECT_EQ(wA, wB);
}

struct ExpertData {
  int64_t T = 7, Hd = 36, I = 28, E = 6, K = 3;
  std::vector<float> hidden, w1, w3, w2, weights;
  std::vector<int32_t> ids;

  explicit ExpertData(uint32_t seed = 50, int64_t tokens = 7) : T(tokens) {
    hidden = randomVec(T * Hd, seed);
    float s1 = 1.0f / std::sqrt(float(Hd)), s2 = 1.0f / std::sqrt(float(I));
    w1 = randomVec(E * I * Hd, seed + 1, -s1, s1);
    w3 = randomVec(E * I * Hd, seed + 2, -s1, s1);
    w2 = randomVec(E * Hd * I, seed + 3, -s2, s2);
    weights = randomVec(T * K, seed + 4, 0.1f, 1.0f);
    // K distinct experts per token, in a random order.
    std::mt19937 gen(seed + 5);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int32_t> all(E);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), gen);
      ids.insert(ids.end(), all.begin(), all.begin() + K);
    }
  }

  Status run(std::vector<float> &out, ThreadPool &pool, int64_t first = 0,
             int64_t count = -1) const {
    if (count < 0)
      count = T;
    out.assign(count * Hd, 0.0f);
    return moeExperts(hidden.data() + first * Hd, count, Hd,
                      ids.data() + first * K, weights.data() + first * K, K,
                      w1.data(), w3.data(), w2.data(), E, I, out.data(), pool);
  }

  std::vector<double> reference() const {
    std::vector<double> out(T * Hd, 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j) {
        int64_t e = ids[t * K + j];
        std::vector<double> act(I);
        for (int64_t i = 0; i < I; ++i) {
          double g = 0, u = 0;
          for (int64_t c = 0; c < Hd; ++c) {
            g += double(w1[(e * I + i) * Hd + c]) * hidden[t * Hd + c];
            u += double(w3[(e * I + i) * Hd + c]) * hidden[t * Hd + c];
          }
          act[i] = g / (1.0 + std::exp(-g)) * u;
        }
        for (int64_t c = 0; c < Hd; ++c) {
          double y = 0;
          for (int64_t i = 0; i < I; ++i)
            y += double(w2[(e * Hd + c) * I + i]) * act[i];
          out[t * Hd + c] += weights[t * K + j] * y;
        }
      }
    return out;
  }
};

TEST(CpuMoeExperts, MatchesDoubleReference) {
  for (uint32_t seed : {50u, 60u}) {
    ExpertData d(seed);
    ThreadPool pool(3);
    std::vector<float> out;
    ASSERT_TRUE(d.run(out, pool).isOk());
    EXPECT_LT(relErr(out, d.reference()), 1e-5) << "seed " << seed;
  }
}

/// Records what the kernels report: per matrix address, its rows in order.
struct RecordingObserver final : InputObserver {
  std::map<const float *, std::vector<std::vector<float>>> seen;
  void observe(const float *matrix, const float *const *rows, int64_t numRows,
               int64_t k) override {
    for (int64_t r = 0; r < numRows; ++r)
      seen[matrix].emplace_back(rows[r], rows[r] + k);
  }
};

TEST(CpuMoeExperts, ObserverSeesEachExpertsRowsAndActivations) {
  ExpertData d(80, 9);
  ThreadPool pool(3);
  RecordingObserver observer;
  std::vector<float> out;
  {
    ScopedInputObserver scope(observer);
    ASSERT_TRUE(d.run(out, pool).isOk());
  }
  EXPECT_EQ(inputObserver(), nullptr);
  for (int64_t e = 0; e < d.E; ++e) {
    // The tokens that chose e, in token order.
    std::vector<std::vector<float>> rows, acts;
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t j = 0; j < d.K; ++j)
        if (d.ids[t * d.K + j] == e) {
          const float *x = d.hidden.data() + t * d.Hd;
          rows.emplace_back(x, x + d.Hd);
          std::vector<float> act(d.I);
          for (int64_t i = 0; i < d.I; ++i) {
            double g = 0, u = 0;
            for (int64_t c = 0; c < d.Hd; ++c) {
              g += double(x[c]) * d.w1[(e * d.I + i) * d.Hd + c];
              u += double(x[c]) * d.w3[(e * d.I + i) * d.Hd + c];
            }
            act[i] = float(g / (1.0 + std::exp(-g)) * u);
          }
          acts.push_back(act);
        }
    EXPECT_EQ(observer.seen[d.w1.data() + e * d.I * d.Hd], rows) << "expert " << e;
    EXPECT_EQ(observer.seen[d.w3.data() + e * d.I * d.Hd], rows) << "expert " << e;
    const std::vector<std::vector<float>> &gotActs = observer.seen[d.w2.data() + e * d.Hd * d.I];
    ASSERT_EQ(gotActs.size(), acts.size()) << "expert " << e;
    for (size_t r = 0; r < acts.size(); ++r)
      EXPECT_LT(relErr(gotActs[r], acts[r]), 1e-5) << "expert " << e << " row " << r;
  }
}

TEST(CpuMoeExperts, ResultsDoNotDependOnThreadsOrBatch) {
  // Many tokens per expert: multi-row tiles and several tasks per expert.
  ExpertData d(70, 40);
  ThreadPool one(1), four(4);
  std::vector<float> a, b, single;
  ASSERT_TRUE(d.run(a, one).isOk());
  ASSERT_TRUE(d.run(b, four).isOk());
  EXPECT_EQ(a, b);
  // Token 3 alone (a decode step) gets the same bits as inside the batch.
  ASSERT_TRUE(d.run(single, four, 3, 1).isOk());
  EXPECT_EQ(single,
            std::vector<float>(a.begin() + 3 * d.Hd, a.begin() + 4 * d.Hd));
}

TEST(CpuMoeExperts, OutOfRangeExpertIdIsAnError) {
  ExpertData d;
  d.ids[1 * d.K + 2] = 9;
  ThreadPool pool(2);
  std::vector<float> out;
  Status s = d.run(out, pool);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "expert id 9 out of range [0, 6) (token 1, slot 2)");
  for (float v : out)
    EXPECT_EQ(v, 0.0f);
  d.ids[1 * d.K + 2] = -1;
  s = d.run(out, pool);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "expert id -1 out of range [0, 6) (token 1, slot 2)");
}

} // namespace
} // namespace m2c::cpu
