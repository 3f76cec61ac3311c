//===- DenseKernelsTest.cpp - embedding, rmsNorm, linear vs double refs -===//
#include "runtime/cpu/InputObserver.h"
#include "runtime/cpu/Kernels.h"
#include "test/unit/cpu/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace m2c::cpu {
namespace {
using test::randomVec;
using test::relErr;

TEST(CpuEmbedding, GathersRows) {
  const int64_t vocab = 512, hidden = 24;
  std::vector<float> table = randomVec(vocab * hidden, 1);
  std::vector<int32_t> ids = {5, 511, 0, 5, 300};
  std::vector<float> out(ids.size() * hidden);
  ASSERT_TRUE(embedding(table.data(), vocab, hidden, ids.data(),
                        int64_t(ids.size()), out.data())
                  .isOk());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t c = 0; c < hidden; ++c)
      ASSERT_EQ(out[t * hidden + c], table[ids[t] * hidden + c]);
}

TEST(CpuEmbedding, OutOfRangeIdIsAnErrorAndWritesNothing) {
  const int64_t vocab = 512, hidden = 4;
  std::vector<float> table = randomVec(vocab * hidden, 2);
  for (int32_t bad : {600, -1, 512}) {
    std::vector<int32_t> ids = {3, bad};
    std::vector<float> out(2 * hidden, 7.0f);
    Status s =
        embedding(table.data(), vocab, hidden, ids.data(), 2, out.data());
    ASSERT_FALSE(s.isOk());
    EXPECT_EQ(s.message(),
              "token id " + std::to_string(bad) + " out of range [0, 512)");
    for (float v : out)
      EXPECT_EQ(v, 7.0f);
  }
}

std::vector<double> rmsNormRef(const std::vector<float> &x,
                               const std::vector<float> &w, int64_t rows,
                               int64_t cols, double eps) {
  std::vector<double> y(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c)
      ss += double(x[r * cols + c]) * x[r * cols + c];
    double s = 1.0 / std::sqrt(ss / cols + eps);
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = double(x[r * cols + c]) * s * w[c];
  }
  return y;
}

TEST(CpuRmsNorm, MatchesDoubleReference) {
  ThreadPool pool(3);
  for (int64_t cols : {1, 7, 64, 6144}) {
    const int64_t rows = 5;
    std::vector<float> x = randomVec(rows * cols, 10 + cols, -3.0f, 3.0f);
    std::vector<float> w = randomVec(cols, 20 + cols, 0.5f, 1.5f);
    std::vector<float> y(rows * cols);
    rmsNorm(x.data(), w.data(), rows, cols, 1e-6, y.data(), pool);
    EXPECT_LT(relErr(y, rmsNormRef(x, w, rows, cols, 1e-6)), 1e-6)
        << "cols " << cols;
  }
}

TEST(CpuRmsNorm, EpsilonMattersForSmallRows) {
  // A row of tiny values: without eps the output would be O(1).
  ThreadPool pool(1);
  std::vector<float> x = randomVec(16, 3, -1e-4f, 1e-4f);
  std::vector<float> w = randomVec(16, 4, 0.5f, 1.5f);
  std::vector<float> y(16);
  rmsNorm(x.data(), w.data(), 1, 16, 1e-2, y.data(), pool);
  EXPECT_LT(relErr(y, rmsNormRef(x, w, 1, 16, 1e-2)), 1e-6);
}

TEST(CpuRmsNorm, InPlaceAndThreadCountGiveIdenticalBits) {
  const int64_t rows = 33, cols = 200;
  std::vector<float> x = randomVec(rows * cols, 5, -2.0f, 2.0f);
  std::vector<float> w = randomVec(cols, 6, 0.5f, 1.5f);
  ThreadPool one(1), four(4);
  std::vector<float> a(rows * cols), b(rows * cols), c = x;
  rmsNorm(x.data(), w.data(), rows, cols, 1e-6, a.data(), one);
  rmsNorm(x.data(), w.data(), rows, cols, 1e-6, b.data(), four);
  rmsNorm(c.data(), w.data(), rows, cols, 1e-6, c.data(), four);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

std::vector<double> linearRef(const std::vector<float> &x, int64_t rows,
                              int64_t k, const std::vector<float> &w,
                              int64_t n) {
  std::vector<double> y(rows * n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i)
        s += double(x[r * k + i]) * w[c * k + i];
      y[r * n + c] = s;
    }
  return y;
}

TEST(CpuLinear, MatchesDoubleReference) {
  ThreadPool pool(4);
  // Odd sizes exercise every tile edge: k % 8 != 0, rows and n not
  // multiples of the tile or block sizes.
  struct Shape {
    int64_t rows, k, n;
  } shapes[] = {{1, 1, 1},     {1, 3072, 96}, {37, 203, 67},
                {64, 128, 64}, {3, 9, 130},   {70, 512, 33}};
  for (const Shape &s : shapes) {
    std::vector<float> x = randomVec(s.rows * s.k, 100 + s.k);
    std::vector<float> w = randomVec(s.n * s.k, 200 + s.n, -0.1f, 0.1f);
    std::vector<float> y(s.rows * s.n);
    linear(x.data(), s.rows, s.k, w.data(), s.n, y.data(), pool);
    EXPECT_LT(relErr(y, linearRef(x, s.rows, s.k, w, s.n)), 1e-6)
        << s.rows << "x" << s.k << "x" << s.n;
  }
}

TEST(CpuLinear, ObserverSeesTheRowsOnceWithTheWeightAddress) {
  const int64_t rows = 37, k = 19, n = 70;
  std::vector<float> x = randomVec(rows * k, 9);
  std::vector<float> w = randomVec(n * k, 10);
  struct Recorder final : InputObserver {
    const float *matrix = nullptr;
    std::vector<float> rows;
    int calls = 0;
    void observe(const float *m, const float *const *r, int64_t numRows, int64_t k) override {
      ++calls;
      matrix = m;
      for (int64_t i = 0; i < numRows; ++i)
        rows.insert(rows.end(), r[i], r[i] + k);
    }
  } recorder;
  ThreadPool pool(3);
  std::vector<float> y(rows * n), unobserved(rows * n);
  {
    ScopedInputObserver scope(recorder);
    linear(x.data(), rows, k, w.data(), n, y.data(), pool);
  }
  linear(x.data(), rows, k, w.data(), n, unobserved.data(), pool);
  EXPECT_EQ(recorder.calls, 1);
  EXPECT_EQ(recorder.matrix, w.data());
  EXPECT_EQ(recorder.rows, x);
  EXPECT_EQ(y, unobserved); // observing changes no result
}

TEST(CpuLinear, ResultsDoNotDependOnThreadsOrBatch) {
  const int64_t rows = 45, k = 301, n = 97;
  std::vector<float> x = randomVec(rows * k, 7);
  std::vector<float> w = randomVec(n * k, 8);
  ThreadPool one(1), four(4);
  std::vector<float> a(rows * n), b(rows * n);
  linear(x.data(), rows, k, w.data(), n, a.data(), one);
  linear(x.data(), rows, k, w.data(), n, b.data(), four);
  EXPECT_EQ(a, b);
  // Row 17 alone (a decode step) sees the same arithmetic as inside the
  // batch, whatever tile it landed in there.
  std::vector<float> single(n);
  linear(x.data() + 17 * k, 1, k, w.data(), n, single.data(), four);
  EXPECT_EQ(single, std::vector<float>(a.begin() + 17 * n, a.begin() + 18 * n));
}

TEST(CpuElementwise, AddAndTakeLastRow) {
  std::vector<float> a = randomVec(50, 9), b = randomVec(50, 10), c(50);
  add(a.data(), b.data(), 50, c.data());
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(c[i], a[i] + b[i]);
  add(a.data(), b.data(), 50, a.data());
  EXPECT_EQ(a, c);

  std::vector<float> last(10);
  takeLastRow(c.data(), 5, 10, last.data());
  EXPECT_EQ(last, std::vector<float>(c.begin() + 40, c.end()));
}

} // namespace
} // namespace m2c::cpu
