//===- Gemm.cpp - The one dot-product arithmetic all CPU kernels share ----===//
//
// A register tile of R rows x C weight rows, each output element with its own
// kDotLanes accumulators held in two 4-float vectors; vector arithmetic is
// lane-wise IEEE float, so it reassociates nothing (no -ffast-math). The 1x1
// instance is dot() itself, and every edge tile is a smaller instance of the
// same template, which is what makes tiling invisible in the results.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/Gemm.h"

#include <algorithm>

namespace m2c::cpu::detail {
namespace {

// 2x2 tiles measured best for SSE2 (the baseline x86-64 target) at
// k = 3072; a wider tile spills the 16 vector registers.
constexpr int kTileRows = 2;
constexpr int kTileCols = 2;
// Rows per block: the [kTileCols, k] weight tile stays cache-resident while
// this many activation rows stream past it.
constexpr int64_t kRowBlock = 32;

// GCC/Clang generic vectors: 4 floats per register on every target, so the
// 8 lanes are two registers. Lane l of the dot product is element l % 4 of
// register l / 4.
typedef float V4 __attribute__((vector_size(16)));

inline V4 load4(const float *p) {
  V4 v;
  __builtin_memcpy(&v, p, sizeof v); // unaligned load
  return v;
}

inline float reduceLanes(const V4 &lo, const V4 &hi) {
  static_assert(kDotLanes == 8, "reduction written for 8 lanes");
  float a[8];
  __builtin_memcpy(a, &lo, sizeof lo);
  __builtin_memcpy(a + 4, &hi, sizeof hi);
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

template <int R, int C>
inline void tile(const float *const *xr, const float *const *wr, int64_t k,
                 float *out, int64_t outStride) {
  V4 acc[R][C][2];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c][0] = acc[r][c][1] = V4{};
  int64_t i = 0;
  for (; i + kDotLanes <= k; i += kDotLanes) {
    for (int h = 0; h < 2; ++h) {
      V4 xv[R], wv[C];
      for (int r = 0; r < R; ++r)
        xv[r] = load4(xr[r] + i + 4 * h);
      for (int c = 0; c < C; ++c)
        wv[c] = load4(wr[c] + i + 4 * h);
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
          acc[r][c][h] += xv[r] * wv[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = reduceLanes(acc[r][c][0], acc[r][c][1]);
      for (int64_t j = i; j < k; ++j)
        s += xr[r][j] * wr[c][j];
      out[r * outStride + c] = s;
    }
}

// Weight rows [c, c + C) against rows [0, numRows); out points at (0, c).
template <int C>
void colTile(const float *const *rows, int64_t numRows, const float *w,
             int64_t k, int64_t c, float *out, int64_t outStride) {
  const float *wr[C];
  for (int j = 0; j < C; ++j)
    wr[j] = w + (c + j) * k;
  int64_t r = 0;
  for (; r + kTileRows <= numRows; r += kTileRows)
    tile<kTileRows, C>(rows + r, wr, k, out + r * outStride, outStride);
  for (; r < numRows; ++r)
    tile<1, C>(rows + r, wr, k, out + r * outStride, outStride);
}

} // namespace

float dot(const float *a, const float *b, int64_t k) {
  const float *xr[1] = {a};
  const float *wr[1] = {b};
  float out;
  tile<1, 1>(xr, wr, k, &out, 1);
  return out;
}

void gemmRows(const float *const *rows, int64_t numRows, const float *w,
              int64_t k, int64_t colBegin, int64_t colEnd, float *out,
              int64_t outStride) {
  for (int64_t rb = 0; rb < numRows; rb += kRowBlock) {
    int64_t n = std::min(kRowBlock, numRows - rb);
    const float *const *blockRows = rows + rb;
    float *blockOut = out + rb * outStride;
    int64_t c = colBegin;
    for (; c + kTileCols <= colEnd; c += kTileCols)
      colTile<kTileCols>(blockRows, n, w, k, c, blockOut + (c - colBegin),
                         outStride);
    for (; c < colEnd; ++c)
      colTile<1>(blockRows, n, w, k, c, blockOut + (c - colBegin), outStride);
  }
}

} // namespace m2c::cpu::detail
