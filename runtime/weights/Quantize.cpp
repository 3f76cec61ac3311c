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

void packQuantized(const plan::Weight &w, const float *values, uint8_t *out) {
  MatrixShape m = matrixShape(w);
  const plan::PackedMatrix layout = plan::packedMatrix(w.quantization, m.rows, m.cols);
  for (int64_t e = 0; e < m.matrices; ++e) {
    const float *x = values + e * m.rows * m.cols;
    uint8_t *q = out + e * layout.bytes();
    uint8_t *scales = q + layout.codeBytes;
    switch (w.quantization) {
    case Quantization::Int8: {
      for (int64_t r = 0; r < m.rows; ++r) {
        float amax = 0;
        for (int64_t c = 0; c < m.cols; ++c)
          amax = std::max(amax, std::fabs(x[r * m.cols + c]));
        float scale = scaleFor(amax, 127.0f);
        writeF32(scales + 4 * r, scale);
        for (int64_t c = 0; c < m.cols; ++c) {
          long v = std::lround(x[r * m.cols + c] / scale);
          q[r * m.cols + c] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(v, -127L, 127L)));
        }
      }
      break;
    }
    case Quantization::Int4G128: {
      int64_t packedCols = (m.cols + 1) / 2, groups = blocks(m.cols);
      std::memset(q, 0, layout.codeBytes);
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t g = 0; g < groups; ++g) {
          int64_t begin = g * 128, end = std::min(m.cols, begin + 128);
          float amax = 0;
          for (int64_t c = begin; c < end; ++c)
            amax = std::max(amax, std::fabs(x[r * m.cols + c]));
          float scale = scaleFor(amax, 7.0f);
          writeF32(scales + 4 * (r * groups + g), scale);
          for (int64_t c = begin; c < end; ++c) {
            long v = std::clamp(std::lround(x[r * m.cols + c] / scale), -7L, 7L);
            uint8_t nibble = static_cast<uint8_t>(v) & 0xf;
            q[r * packedCols + c / 2] |= (c % 2) ? static_cast<uint8_t>(nibble << 4) : nibble;
          }
        }
      break;
    }
    case Quantization::Fp8Block128: {
      int64_t rowBlocks = blocks(m.rows), colBlocks = blocks(m.cols);
      for (int64_t br = 0; br < rowBlocks; ++br)
        for (int64_t bc = 0; bc < colBlocks; ++bc) {
          int64_t r0 = br * 128, r1 = std::min(m.rows, r0 + 128);
          int64_t c0 = bc * 128, c1 = std::min(m.cols, c0 + 128);
          float amax = 0;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c)
              amax = std::max(amax, std::fabs(x[r * m.cols + c]));
          float scale = scaleFor(amax, 448.0f);
          writeF32(scales + 4 * (br * colBlocks + bc), scale);
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c)
              q[r * m.cols + c] = f32ToF8e4m3(x[r * m.cols + c] / scale);
        }
      break;
    }
    case Quantization::None:
      break;
    }
  }
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
