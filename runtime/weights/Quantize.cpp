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

Rounded encode(const plan::QuantFormat &f, float x, float scale) {
  return f.floatCodes ? roundFp8(x, scale) : roundInt(x, scale, static_cast<long>(f.qmax));
}

/// Codes of one matrix: rows of rowCodeBytes, 4-bit ones low nibble first.
struct Codes {
  const plan::QuantFormat &f;
  uint8_t *q;
  int64_t rowBytes;

  void store(int64_t r, int64_t c, uint8_t code) const {
    if (f.codeBits == 8) {
      q[r * rowBytes + c] = code;
      return;
    }
    uint8_t nibble = code & 0xf;
    q[r * rowBytes + c / 2] |= (c % 2) ? static_cast<uint8_t>(nibble << 4) : nibble;
  }
  float decode(int64_t r, int64_t c) const {
    if (f.codeBits == 8) {
      uint8_t code = q[r * rowBytes + c];
      return f.floatCodes ? f8e4m3ToF32(code) : static_cast<int8_t>(code);
    }
    uint8_t byte = q[r * rowBytes + c / 2];
    int nibble = (c % 2) ? byte >> 4 : byte & 0xf;
    return nibble >= 8 ? nibble - 16 : nibble; // sign-extend 4 bits
  }
};

/// The scale of element (r, c) sits at scales[scaleIndex(...)].
int64_t scaleIndex(const plan::QuantFormat &f, int64_t cols, int64_t r, int64_t c) {
  return (r / f.groupRows) * f.scaleCols(cols) + c / f.groupWidth(cols);
}

/// Round-to-nearest of one [rows, cols] matrix into codes `q` and `scales`:
/// each scale group's amax over qmax is its scale.
void packMatrix(Quantization quantization, const float *x, int64_t rows, int64_t cols,
                uint8_t *q, uint8_t *scales, size_t codeBytes) {
  if (quantization == Quantization::None)
    return;
  const plan::QuantFormat &f = plan::quantFormat(quantization);
  const Codes codes{f, q, f.rowCodeBytes(cols)};
  if (f.codeBits < 8)
    std::memset(q, 0, codeBytes);
  const int64_t width = f.groupWidth(cols), scaleCols = f.scaleCols(cols);
  for (int64_t br = 0; br < f.scaleRows(rows); ++br)
    for (int64_t bc = 0; bc < scaleCols; ++bc) {
      int64_t r0 = br * f.groupRows, r1 = std::min(rows, r0 + f.groupRows);
      int64_t c0 = bc * width, c1 = std::min(cols, c0 + width);
      float amax = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          amax = std::max(amax, std::fabs(x[r * cols + c]));
      float scale = scaleFor(amax, f.qmax);
      writeF32(scales + 4 * (br * scaleCols + bc), scale);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          codes.store(r, c, encode(f, x[r * cols + c], scale).code);
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
  if (quantization == Quantization::None)
    return false;
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
  const plan::QuantFormat &f = plan::quantFormat(quantization);
  const Codes codes{f, q, f.rowCodeBytes(cols)};
  if (f.codeBits < 8)
    std::memset(q, 0, codeBytes);
  const int64_t width = f.groupWidth(cols), scaleCols = f.scaleCols(cols);
  std::vector<float> rowScale(rows);
  for (int64_t c = 0; c < cols; ++c) {
    // A group's scale is taken from its values as they are when GPTQ
    // reaches the group, after the earlier columns' corrections.
    if (c % width == 0) {
      int64_t end = std::min(cols, c + width);
      for (int64_t r0 = 0; r0 < rows; r0 += f.groupRows) {
        int64_t r1 = std::min(rows, r0 + f.groupRows);
        float amax = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t k = c; k < end; ++k)
            amax = std::max(amax, std::fabs(float(at(r, k))));
        float scale = scaleFor(amax, f.qmax);
        writeF32(scales + 4 * ((r0 / f.groupRows) * scaleCols + c / width), scale);
        for (int64_t r = r0; r < r1; ++r)
          rowScale[r] = scale;
      }
    }
    const double pivot = u[c * n + c];
    for (int64_t r = 0; r < rows; ++r) {
      Rounded rounded = encode(f, float(at(r, c)), rowScale[r]);
      codes.store(r, c, rounded.code);
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
    const plan::QuantFormat &f = plan::quantFormat(w.quantization);
    const Codes codes{f, const_cast<uint8_t *>(q), f.rowCodeBytes(m.cols)};
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t c = 0; c < m.cols; ++c)
        y[r * m.cols + c] =
            codes.decode(r, c) * readF32(scales + 4 * scaleIndex(f, m.cols, r, c));
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
