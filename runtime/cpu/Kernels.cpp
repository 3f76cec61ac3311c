//===- Kernels.cpp - Dense fp32 CPU kernels: embedding, norm, linear ----===//
//
// Precision follows transformers' float32 MiniMaxM2 except where noted: the
// RMSNorm mean of squares is accumulated in double (transformers reduces in
// float), which only removes rounding, and linear uses the shared 8-lane
// float dot product of Gemm.h (torch's sgemm blocks differently, so results
// agree to rounding, not bitwise).
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Kernels.h"

#include "runtime/cpu/Gemm.h"
#include "runtime/cpu/InputObserver.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace m2c::cpu {

Status embedding(const float *table, int64_t vocab, int64_t hidden,
                 const int32_t *ids, int64_t tokens, float *out) {
  assert(vocab >= 0 && hidden >= 0 && tokens >= 0);
  for (int64_t t = 0; t < tokens; ++t)
    if (ids[t] < 0 || ids[t] >= vocab)
      return Status::error("token id " + std::to_string(ids[t]) +
                           " out of range [0, " + std::to_string(vocab) + ")");
  for (int64_t t = 0; t < tokens; ++t)
    std::memcpy(out + t * hidden, table + int64_t(ids[t]) * hidden,
                sizeof(float) * hidden);
  return Status::ok();
}

void rmsNorm(const float *x, const float *weight, int64_t rows, int64_t cols,
             double eps, float *out, ThreadPool &pool) {
  assert(rows >= 0 && cols > 0);
  pool.parallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *xr = x + r * cols;
      float *yr = out + r * cols;
      // Double keeps the statistic exact to float precision for any row
      // length (a QK-norm row is heads * headDim = 6144 values).
      double sumSq = 0.0;
      for (int64_t c = 0; c < cols; ++c)
        sumSq += double(xr[c]) * double(xr[c]);
      float scale = float(1.0 / std::sqrt(sumSq / double(cols) + eps));
      // transformers: weight * (x * rsqrt(var + eps)), in that order.
      for (int64_t c = 0; c < cols; ++c)
        yr[c] = weight[c] * (xr[c] * scale);
    }
  });
}

void linear(const float *x, int64_t rows, int64_t k, const float *w, int64_t n,
            float *out, ThreadPool &pool) {
  assert(rows >= 0 && k >= 0 && n >= 0);
  if (InputObserver *observer = inputObserver()) {
    std::vector<const float *> rowPtrs(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      rowPtrs[r] = x + r * k;
    observer->observe(w, rowPtrs.data(), rows, k);
  }
  // A task is one block of rows x one block of output columns; it reads its
  // [kColBlock, k] slice of w once.
  constexpr int64_t kRowBlock = 32, kColBlock = 32;
  int64_t rowBlocks = (rows + kRowBlock - 1) / kRowBlock;
  int64_t colBlocks = (n + kColBlock - 1) / kColBlock;
  pool.parallelFor(rowBlocks * colBlocks, [&](int64_t begin, int64_t end) {
    const float *rowPtrs[kRowBlock];
    for (int64_t task = begin; task < end; ++task) {
      int64_t r0 = (task % rowBlocks) * kRowBlock;
      int64_t c0 = (task / rowBlocks) * kColBlock;
      int64_t numRows = std::min(kRowBlock, rows - r0);
      for (int64_t r = 0; r < numRows; ++r)
        rowPtrs[r] = x + (r0 + r) * k;
      detail::gemmRows(rowPtrs, numRows, w, k, c0, std::min(n, c0 + kColBlock),
                       out + r0 * n + c0, n);
    }
  });
}

void add(const float *a, const float *b, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

void takeLastRow(const float *x, int64_t rows, int64_t cols, float *out) {
  assert(rows > 0 && cols >= 0);
  std::memmove(out, x + (rows - 1) * cols, sizeof(float) * cols);
}

} // namespace m2c::cpu
