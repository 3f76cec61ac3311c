//===- Quantize.cpp - Packing weights into the quantized formats ----------===//

#include "runtime/weights/Quantize.h"

#include "runtime/checkpoint/DType.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace m2c {
namespace {

using plan::Quantization;

struct MatrixShape {
  int64_t matrices, rows, cols;
};

MatrixShape matrixShape(const plan::Weight &w) {
  int64_t cols = w.shape.back();
  int64_t rows = w.shape[w.shape.size() - 2];
  return {w.numElements() / (rows * cols), rows, cols};
}

int64_t blocks(int64_t n) { return (n + 127) / 128; }

float scaleFor(float amax, float top) { return amax > 0 ? amax / top : 1.0f; }

void writeF32(uint8_t *dst, float value) { std::memcpy(dst, &value, 4); }
float readF32(const uint8_t *src) {
  float value;
  std::memcpy(&value, src, 4);
  return value;
}

} // namespace

namespace {

/// Encoders of one value given its scale, shared by round-to-nearest and
/// GPTQ: the code, and the value it decodes to.
struct Rounded {
  uint8_t code;
  float value;
};

Rounded roundInt(float x, float scale, long top) {
  long v = std::clamp(std::lround(x / scale), -top, top);
  return {static_cast<uint8_t>(static_cast<int8_t>(v)), static_cast<float>(v) * scale};
}

Rounded roundFp8(float x, float scale) {
  uint8_t code = f32ToF8e4m3(x / scale);
  return {code, f8e4m3ToF32(code) * scale};
}

void storeInt4(uint8_t *q, int64_t packedCols, int64_t r, int64_t c, uint8_t code) {
  uint8_t nibble = code & 0xf;
  q[r * packedCols + c / 2] |= (c % 2) ? static_cast<uint8_t>(nibble << 4) : nibble;
}

/// Round-to-nearest of one [rows, cols] matrix into codes `q` and `scales`.
void packMatrix(Quantization quantization, const float *x, int64_t rows, int64_t cols,
                uint8_t *q, uint8_t *scales, size_t codeBytes) {
  switch (quantization) {
  case Quantization::Int8: {
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < cols; ++c)
        amax = std::max(amax, std::fabs(x[r * cols + c]));
      float scale = scaleFor(amax, 127.0f);
      writeF32(scales + 4 * r, scale);
      for (int64_t c = 0; c < cols; ++c)
        q[r * cols + c] = roundInt(x[r * cols + c], scale, 127).code;
    }
    break;
  }
  case Quantization::Int4G128: {
    int64_t packedCols = (cols + 1) / 2, groups = blocks(cols);
    std::memset(q, 0, codeBytes);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        int64_t begin = g * 128, end = std::min(cols, begin + 128);
        float amax = 0;
        for (int64_t c = begin; c < end; ++c)
          amax = std::max(amax, std::fabs(x[r * cols + c]));
        float scale = scaleFor(amax, 7.0f);
        writeF32(scales + 4 * (r * groups + g), scale);
        for (int64_t c = begin; c < end; ++c)
          storeInt4(q, packedCols, r, c, roundInt(x[r * cols + c], scale, 7).code);
      }
    break;
  }
  case Quantization::Fp8Block128: {
    int64_t rowBlocks = blocks(rows), colBlocks = blocks(cols);
    for (int64_t br = 0; br < rowBlocks; ++br)
      for (int64_t bc = 0; bc < colBlocks; ++bc) {
        int64_t r0 = br * 128, r1 = std::min(rows, r0 + 128);
        int64_t c0 = bc * 128, c1 = std::min(cols, c0 + 128);
        float amax = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            amax = std::max(amax, std::fabs(x[r * cols + c]));
        float scale = scaleFor(amax, 448.0f);
        writeF32(scales + 4 * (br * colBlocks + bc), scale);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            q[r * cols + c] = roundFp8(x[r * cols + c], scale).code;
      }
    break;
  }
  case Quantization::None:
    break;
  }
}

/// In-place lower Cholesky factor of the n x n matrix `a` (row-major; the
/// upper triangle is zeroed). False when `a` is not positive definite.
bool cholesky(std::vector<double> &a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int64_t p = 0; p < j; ++p)
      d -= a[j * n + p] * a[j * n + p];
    if (!(d > 0))
      return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double v = a[i * n + j];
      for (int64_t p = 0; p < j; ++p)
        v -= a[i * n + p] * a[j * n + p];
      a[i * n + j] = v / d;
    }
    for (int64_t i = 0; i < j; ++i)
      a[i * n + j] = 0;
  }
  return true;
}

/// The upper factor U of H^-1 = U^T U that GPTQ walks, from H (with its
/// damping already added); empty when H is not positive definite.
std::vector<double> inverseHessianFactor(std::vector<double> h, int64_t n) {
  if (!cholesky(h, n))
    return {};
  // L^-1 by forward substitution, then H^-1 = L^-T L^-1. L^-1 is kept
  // transposed (t[j * n + p] = L^-1[p][j]) so every inner loop is unit-stride.
  std::vector<double> t(n * n, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double *tj = t.data() + j * n;
    tj[j] = 1.0 / h[j * n + j];
    for (int64_t i = j + 1; i < n; ++i) {
      const double *hi = h.data() + i * n;
      double v = 0;
      for (int64_t p = j; p < i; ++p)
        v += hi[p] * tj[p];
      tj[i] = -v / hi[i];
    }
  }
  std::vector<double> hinv(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      const double *ti = t.data() + i * n, *tj = t.data() + j * n;
      double v = 0;
      for (int64_t p = i; p < n; ++p)
        v += ti[p] * tj[p];
      hinv[i * n + j] = hinv[j * n + i] = v;
    }
  if (!cholesky(hinv, n))
    return {};
  std::vector<double> upper(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      upper[i * n + j] = hinv[j * n + i];
  return upper;
}

/// GPTQ of one matrix; false (nothing written) when its Hessian cannot be
/// factored even with 1000x the damping.
bool packMatrixGptq(Quantization quantization, const float *x, int64_t rows, int64_t cols,
                    const std::vector<double> &hessian, double damping, uint8_t *q,
                    uint8_t *scales, size_t codeBytes) {
  const int64_t n = cols;
  std::vector<double> h = hessian;
  double meanDiag = 0;
  for (int64_t i = 0; i < n; ++i) {
    // A column no calibration input reached: nothing to compensate with it.
    if (h[i * n + i] <= 0)
      h[i * n + i] = 1;
    meanDiag += h[i * n + i] / double(n);
  }
  std::vector<double> u;
  for (double damp = damping; u.empty() && damp <= damping * 1000; damp *= 10) {
    std::vector<double> damped = h;
    for (int64_t i = 0; i < n; ++i)
      damped[i * n + i] += damp * meanDiag;
    u = inverseHessianFactor(std::move(damped), n);
  }
  if (u.empty())
    return false;

  std::vector<double> w(x, x + rows * cols);
  auto at = [&](int64_t r, int64_t c) -> double & { return w[r * cols + c]; };
  const int64_t packedCols = (cols + 1) / 2, groups = blocks(cols), colBlocks = blocks(cols);
  if (quantization == Quantization::Int4G128)
    std::memset(q, 0, codeBytes);
  std::vector<float> rowScale(rows);
  if (quantization == Quantization::Int8)
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < cols; ++c)
        amax = std::max(amax, std::fabs(float(at(r, c))));
      rowScale[r] = scaleFor(amax, 127.0f);
      writeF32(scales + 4 * r, rowScale[r]);
    }
  for (int64_t c = 0; c < cols; ++c) {
    // A group's scale is taken from its values as they are when GPTQ
    // reaches the group, after the earlier columns' corrections.
    if (c % 128 == 0) {
      int64_t end = std::min(cols, c + 128);
      if (quantization == Quantization::Int4G128)
        for (int64_t r = 0; r < rows; ++r) {
          float amax = 0;
          for (int64_t k = c; k < end; ++k)
            amax = std::max(amax, std::fabs(float(at(r, k))));
          rowScale[r] = scaleFor(amax, 7.0f);
          writeF32(scales + 4 * (r * groups + c / 128), rowScale[r]);
        }
      if (quantization == Quantization::Fp8Block128)
        for (int64_t r0 = 0; r0 < rows; r0 += 128) {
          int64_t r1 = std::min(rows, r0 + 128);
          float amax = 0;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t k = c; k < end; ++k)
              amax = std::max(amax, std::fabs(float(at(r, k))));
          float scale = scaleFor(amax, 448.0f);
          writeF32(scales + 4 * ((r0 / 128) * colBlocks + c / 128), scale);
          for (int64_t r = r0; r < r1; ++r)
            rowScale[r] = scale;
        }
    }
    const double pivot = u[c * n + c];
    for (int64_t r = 0; r < rows; ++r) {
      float value = float(at(r, c));
      Rounded rounded{};
      switch (quantization) {
      case Quantization::Int8:
        rounded = roundInt(value, rowScale[r], 127);
        q[r * cols + c] = rounded.code;
        break;
      case Quantization::Int4G128:
        rounded = roundInt(value, rowScale[r], 7);
        storeInt4(q, packedCols, r, c, rounded.code);
        break;
      case Quantization::Fp8Block128:
        rounded = roundFp8(value, rowScale[r]);
        q[r * cols + c] = rounded.code;
        break;
      case Quantization::None:
        return false;
      }
      double error = (at(r, c) - double(rounded.value)) / pivot;
      for (int64_t k = c + 1; k < cols; ++k)
        at(r, k) -= error * u[c * n + k];
    }
  }
  return true;
}

} // namespace

void packQuantized(const plan::Weight &w, const float *values, uint8_t *out) {
  MatrixShape m = matrixShape(w);
  const plan::PackedMatrix layout = plan::packedMatrix(w.quantization, m.rows, m.cols);
  for (int64_t e = 0; e < m.matrices; ++e) {
    uint8_t *q = out + e * layout.bytes();
    packMatrix(w.quantization, values + e * m.rows * m.cols, m.rows, m.cols, q,
               q + layout.codeBytes, layout.codeBytes);
  }
}

bool packMatrixQuantizedGptq(const plan::Weight &w, int64_t matrix, const float *values,
                             const std::vector<double> &hessian, uint8_t *out, double damping) {
  MatrixShape m = matrixShape(w);
  const plan::PackedMatrix layout = plan::packedMatrix(w.quantization, m.rows, m.cols);
  const float *x = values + matrix * m.rows * m.cols;
  uint8_t *q = out + matrix * layout.bytes();
  if (hessian.size() == size_t(m.cols * m.cols) &&
      packMatrixGptq(w.quantization, x, m.rows, m.cols, hessian, damping, q,
                     q + layout.codeBytes, layout.codeBytes))
    return true;
  packMatrix(w.quantization, x, m.rows, m.cols, q, q + layout.codeBytes, layout.codeBytes);
  return false;
}

GptqStats packQuantizedGptq(const plan::Weight &w, const float *values,
                            const std::vector<std::vector<double>> &hessians, uint8_t *out,
                            double damping) {
  static const std::vector<double> none;
  GptqStats stats;
  for (int64_t e = 0; e < matrixShape(w).matrices; ++e) {
    bool gptq = packMatrixQuantizedGptq(
        w, e, values, e < int64_t(hessians.size()) ? hessians[e] : none, out, damping);
    ++(gptq ? stats.gptqMatrices : stats.roundedMatrices);
  }
  return stats;
}

void unpackQuantized(const plan::Weight &w, const uint8_t *packed, float *out) {
  MatrixShape m = matrixShape(w);
  const plan::PackedMatrix layout = plan::packedMatrix(w.quantization, m.rows, m.cols);
  for (int64_t e = 0; e < m.matrices; ++e) {
    float *y = out + e * m.rows * m.cols;
    const uint8_t *q = packed + e * layout.bytes();
    const uint8_t *scales = q + layout.codeBytes;
    switch (w.quantization) {
    case Quantization::Int8: {
      for (int64_t r = 0; r < m.rows; ++r) {
        float scale = readF32(scales + 4 * r);
        for (int64_t c = 0; c < m.cols; ++c)
          y[r * m.cols + c] = static_cast<int8_t>(q[r * m.cols + c]) * scale;
      }
      break;
    }
    case Quantization::Int4G128: {
      int64_t packedCols = (m.cols + 1) / 2, groups = blocks(m.cols);
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t c = 0; c < m.cols; ++c) {
          uint8_t byte = q[r * packedCols + c / 2];
          int nibble = (c % 2) ? byte >> 4 : byte & 0xf;
          int value = nibble >= 8 ? nibble - 16 : nibble; // sign-extend 4 bits
          y[r * m.cols + c] = value * readF32(scales + 4 * (r * groups + c / 128));
        }
      break;
    }
    case Quantization::Fp8Block128: {
      int64_t colBlocks = blocks(m.cols);
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t c = 0; c < m.cols; ++c)
          y[r * m.cols + c] = f8e4m3ToF32(q[r * m.cols + c]) *
                              readF32(scales + 4 * ((r / 128) * colBlocks + c / 128));
      break;
    }
    case Quantization::None:
      break;
    }
  }
}

void fakeQuantize(const plan::Weight &w, float *values) {
  if (w.quantization == Quantization::None)
    return;
  std::vector<uint8_t> packed(w.storageBytes());
  packQuantized(w, values, packed.data());
  unpackQuantized(w, packed.data(), values);
}

} // namespace m2c
