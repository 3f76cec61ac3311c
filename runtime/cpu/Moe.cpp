//===- Moe.cpp - MoE router and routed experts, fp32 reference ----------===//
//
// Follows transformers' MiniMaxM2SparseMoeBlock in float32: router logits
// from the gate linear, sigmoid scores, top-k on scores + correction bias,
// weights gathered from the unbiased scores and divided by their sum; each
// expert computes down(silu(gate x) * up x) and the token sums weight * y.
// transformers sums a token's experts in ascending expert id; we sum in the
// router's slot order j = 0..topK-1, which differs only in rounding and keeps
// the order independent of how work is grouped.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Kernels.h"

#include "runtime/cpu/Gemm.h"
#include "runtime/cpu/InputObserver.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace m2c::cpu {
namespace {
std::string str(int64_t v) { return std::to_string(v); }
} // namespace

Status moeRoute(const float *hidden, int64_t tokens, int64_t hiddenSize,
                const float *gate, const float *bias, int64_t experts,
                int64_t topK, bool softmaxScoring, bool renormalize,
                int32_t *ids, float *weights, ThreadPool &pool) {
  if (experts <= 0 || topK < 1 || topK > experts)
    return Status::error("moe routing expects top_k (" + str(topK) +
                         ") in [1, num_experts (" + str(experts) + ")]");
  pool.parallelFor(tokens, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(experts), choice(experts);
    std::vector<int32_t> selId(topK);
    std::vector<float> selChoice(topK);
    for (int64_t t = begin; t < end; ++t) {
      const float *row = hidden + t * hiddenSize;
      detail::gemmRows(&row, 1, gate, hiddenSize, 0, experts, scores.data(),
                       experts);
      if (softmaxScoring) {
        float maxLogit = scores[0];
        for (int64_t e = 1; e < experts; ++e)
          maxLogit = std::max(maxLogit, scores[e]);
        double sum = 0.0;
        for (int64_t e = 0; e < experts; ++e) {
          scores[e] = std::exp(scores[e] - maxLogit);
          sum += scores[e];
        }
        float invSum = float(1.0 / sum);
        for (int64_t e = 0; e < experts; ++e)
          scores[e] *= invSum;
      } else {
        for (int64_t e = 0; e < experts; ++e)
          scores[e] = 1.0f / (1.0f + std::exp(-scores[e]));
      }
      for (int64_t e = 0; e < experts; ++e)
        choice[e] = bias ? scores[e] + bias[e] : scores[e];

      // Insertion top-k: a candidate goes after every kept entry it does not
      // strictly beat, so ties keep the lower expert id first. Comparisons
      // with NaN are false, so a NaN score cannot break the invariant.
      int64_t kept = 0;
      for (int64_t e = 0; e < experts; ++e) {
        float c = choice[e];
        if (kept == topK && !(c > selChoice[topK - 1]))
          continue;
        int64_t pos = 0;
        while (pos < kept && !(c > selChoice[pos]))
          ++pos;
        int64_t last = std::min(kept, topK - 1);
        for (int64_t j = last; j > pos; --j) {
          selChoice[j] = selChoice[j - 1];
          selId[j] = selId[j - 1];
        }
        selChoice[pos] = c;
        selId[pos] = int32_t(e);
        kept = std::min(kept + 1, topK);
      }

      int32_t *idRow = ids + t * topK;
      float *wRow = weights + t * topK;
      float sum = 0.0f;
      for (int64_t j = 0; j < topK; ++j) {
        idRow[j] = selId[j];
        wRow[j] = scores[selId[j]];
        sum += wRow[j];
      }
      if (renormalize)
        for (int64_t j = 0; j < topK; ++j)
          wRow[j] /= sum;
    }
  });
  return Status::ok();
}

Status moeExperts(const float *hidden, int64_t tokens, int64_t hiddenSize,
                  const int32_t *ids, const float *weights, int64_t topK,
                  const float *w1, const float *w3, const float *w2,
                  int64_t experts, int64_t intermediate, float *out,
                  ThreadPool &pool) {
  if (topK < 1 || experts <= 0)
    return Status::error("moe experts expects top_k (" + str(topK) +
                         ") and num_experts (" + str(experts) +
                         ") to be positive");
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < topK; ++j) {
      int64_t e = ids[t * topK + j];
      if (e < 0 || e >= experts)
        return Status::error("expert id " + str(e) + " out of range [0, " +
                             str(experts) + ") (token " + str(t) + ", slot " +
                             str(j) + ")");
    }
  if (tokens <= 0)
    return Status::ok();

  const int64_t Hd = hiddenSize, I = intermediate;
  // Bound the per-pair scratch (act and y) to ~64 MiB each for long
  // prefills; a chunk still streams each expert's weights once.
  constexpr int64_t kMaxScratchFloats = int64_t(1) << 24;
  constexpr int64_t kColBlock = 32;
  const int64_t chunkTokens =
      std::max<int64_t>(1, kMaxScratchFloats / (topK * std::max(Hd, I)));

  int64_t maxPairs = std::min(tokens, chunkTokens) * topK;
  std::vector<float> act(maxPairs * I), y(maxPairs * Hd);
  std::vector<const float *> xRows(maxPairs), actRows(maxPairs);
  std::vector<int64_t> slotOf(maxPairs);
  std::vector<int64_t> first(experts + 1);
  std::vector<std::pair<int32_t, int64_t>> tasks; // (expert, column block)

  for (int64_t t0 = 0; t0 < tokens; t0 += chunkTokens) {
    int64_t nt = std::min(chunkTokens, tokens - t0), pairs = nt * topK;
    const int32_t *chunkIds = ids + t0 * topK;

    // Counting sort of (token, slot) pairs by expert; within an expert the
    // pairs stay in token order.
    std::fill(first.begin(), first.end(), 0);
    for (int64_t i = 0; i < pairs; ++i)
      ++first[chunkIds[i] + 1];
    for (int64_t e = 0; e < experts; ++e)
      first[e + 1] += first[e];
    std::vector<int64_t> cursor(first.begin(), first.end() - 1);
    for (int64_t i = 0; i < pairs; ++i) {
      int64_t slot = cursor[chunkIds[i]]++;
      slotOf[i] = slot;
      xRows[slot] = hidden + (t0 + i / topK) * Hd;
      actRows[slot] = act.data() + slot * I;
    }

    auto buildTasks = [&](int64_t cols) {
      tasks.clear();
      for (int64_t e = 0; e < experts; ++e)
        if (first[e + 1] > first[e])
          for (int64_t c = 0; c < cols; c += kColBlock)
            tasks.emplace_back(int32_t(e), c);
    };

    InputObserver *observer = inputObserver();
    if (observer)
      for (int64_t e = 0; e < experts; ++e) {
        int64_t r0 = first[e], rows = first[e + 1] - r0;
        observer->observe(w1 + e * I * Hd, xRows.data() + r0, rows, Hd);
        observer->observe(w3 + e * I * Hd, xRows.data() + r0, rows, Hd);
      }

    // act = silu(W1 x) * (W3 x), [pairs, I].
    buildTasks(I);
    pool.parallelFor(int64_t(tasks.size()), [&](int64_t begin, int64_t end) {
      std::vector<float> g, u;
      for (int64_t ti = begin; ti < end; ++ti) {
        auto [e, c0] = tasks[ti];
        int64_t c1 = std::min(I, c0 + kColBlock), cols = c1 - c0;
        int64_t r0 = first[e], rows = first[e + 1] - r0;
        g.resize(rows * cols);
        u.resize(rows * cols);
        detail::gemmRows(xRows.data() + r0, rows, w1 + e * I * Hd, Hd, c0, c1,
                         g.data(), cols);
        detail::gemmRows(xRows.data() + r0, rows, w3 + e * I * Hd, Hd, c0, c1,
                         u.data(), cols);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) {
            float gv = g[r * cols + c];
            // torch's silu: x / (1 + exp(-x)).
            act[(r0 + r) * I + c0 + c] =
                gv / (1.0f + std::exp(-gv)) * u[r * cols + c];
          }
      }
    });

    if (observer)
      for (int64_t e = 0; e < experts; ++e)
        observer->observe(w2 + e * Hd * I, actRows.data() + first[e], first[e + 1] - first[e], I);

    // y = W2 act, [pairs, Hd].
    buildTasks(Hd);
    pool.parallelFor(int64_t(tasks.size()), [&](int64_t begin, int64_t end) {
      for (int64_t ti = begin; ti < end; ++ti) {
        auto [e, c0] = tasks[ti];
        int64_t r0 = first[e], rows = first[e + 1] - r0;
        detail::gemmRows(actRows.data() + r0, rows, w2 + e * Hd * I, I, c0,
                         std::min(Hd, c0 + kColBlock), y.data() + r0 * Hd + c0,
                         Hd);
      }
    });

    // out[t] = sum_j w[t, j] * y[slot(t, j)], j in order.
    pool.parallelFor(nt, [&](int64_t begin, int64_t end) {
      for (int64_t lt = begin; lt < end; ++lt) {
        float *o = out + (t0 + lt) * Hd;
        std::fill(o, o + Hd, 0.0f);
        for (int64_t j = 0; j < topK; ++j) {
          float w = weights[(t0 + lt) * topK + j];
          const float *yr = y.data() + slotOf[lt * topK + j] * Hd;
          for (int64_t d = 0; d < Hd; ++d)
            o[d] += yr[d] * w;
        }
      }
    });
  }
  return Status::ok();
}

} // namespace m2c::cpu
