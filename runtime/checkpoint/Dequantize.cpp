//===- Dequantize.cpp - Stored tensors (incl. block-scaled FP8) to f32 ----===//

#include "runtime/checkpoint/Dequantize.h"

#include <algorithm>
#include <cstring>

namespace m2c {

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The view's byte size must match its shape; views from SafeTensorsFile
/// always do, hand-built ones might not, and every later index relies on it.
Status checkViewConsistent(const TensorView &t) {
  uint64_t n = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      return Status::error(t.name + ": invalid shape " + formatShape(t.shape));
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(n, dtypeSize(t.dtype), &bytes) ||
      bytes != t.byteSize || (bytes != 0 && t.data == nullptr))
    return Status::error(t.name + ": " + std::to_string(t.byteSize) +
                         " bytes do not hold shape " + formatShape(t.shape) +
                         " of " + dtypeName(t.dtype));
  return Status::ok();
}

struct MatrixView {
  int64_t matrices, rows, cols;
};

MatrixView asMatrices(const std::vector<int64_t> &shape) {
  switch (shape.size()) {
  case 0:
    return {1, 1, 1};
  case 1:
    return {1, 1, shape[0]};
  case 2:
    return {1, shape[0], shape[1]};
  case 3:
    return {shape[0], shape[1], shape[2]};
  default: {
    // Higher ranks only ever convert whole: fold the leading dimensions.
    int64_t lead = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
      lead *= shape[i];
    return {1, lead, shape.back()};
  }
  }
}

} // namespace

std::vector<int64_t> expectedScaleShape(const std::vector<int64_t> &weightShape,
                                        BlockSize block) {
  if (block.rows <= 0 || block.cols <= 0)
    return {};
  if (weightShape.size() == 2)
    return {ceilDiv(weightShape[0], block.rows),
            ceilDiv(weightShape[1], block.cols)};
  if (weightShape.size() == 3)
    return {weightShape[0], ceilDiv(weightShape[1], block.rows),
            ceilDiv(weightShape[2], block.cols)};
  return {};
}

Status checkScaleInv(const TensorView &weight, const TensorView &scaleInv,
                     BlockSize block) {
  std::vector<int64_t> want = expectedScaleShape(weight.shape, block);
  if (want.empty())
    return Status::error(weight.name + ": block scales need a 2-D or 3-D "
                                       "weight and positive block sizes, got " +
                         formatShape(weight.shape) + " with " +
                         std::to_string(block.rows) + "x" +
                         std::to_string(block.cols) + " blocks");
  if (scaleInv.dtype != DType::F32)
    return Status::error(scaleInv.name + ": expected dtype F32, got " +
                         dtypeName(scaleInv.dtype));
  if (scaleInv.shape != want)
    return Status::error(scaleInv.name + ": expected shape " +
                         formatShape(want) + " for weight " +
                         formatShape(weight.shape) + " with " +
                         std::to_string(block.rows) + "x" +
                         std::to_string(block.cols) + " blocks, got " +
                         formatShape(scaleInv.shape));
  return checkViewConsistent(scaleInv);
}

Status dequantizeRowsF32(const TensorView &weight, const TensorView *scaleInv,
                         BlockSize block, int64_t matrix, int64_t rowBegin,
                         int64_t rowCount, float *dst) {
  M2C_RETURN_IF_ERROR(checkViewConsistent(weight));
  if (!isConvertibleToF32(weight.dtype))
    return Status::error(weight.name + ": dtype " + dtypeName(weight.dtype) +
                         " cannot be converted to f32 (supported: F32, F16, "
                         "BF16, F8_E4M3)");
  const MatrixView mv = asMatrices(weight.shape);
  if (matrix < 0 || matrix >= mv.matrices || rowBegin < 0 || rowCount < 0 ||
      rowBegin > mv.rows || rowCount > mv.rows - rowBegin)
    return Status::error(weight.name + ": rows [" + std::to_string(rowBegin) +
                         ", " + std::to_string(rowBegin + rowCount) +
                         ") of matrix " + std::to_string(matrix) +
                         " are outside shape " + formatShape(weight.shape));
  const size_t esize = dtypeSize(weight.dtype);
  const size_t rowBytes = static_cast<size_t>(mv.cols) * esize;
  const uint8_t *src =
      weight.data +
      (static_cast<size_t>(matrix) * mv.rows + rowBegin) * rowBytes;

  const bool scaled = scaleInv && weight.dtype == DType::F8_E4M3;
  if (scaleInv && !scaled)
    return Status::error(weight.name + ": block scales apply only to "
                                       "F8_E4M3 weights, got " +
                         dtypeName(weight.dtype));
  if (!scaled)
    return convertToF32(weight.dtype, src,
                        static_cast<size_t>(rowCount) * mv.cols, dst);

  M2C_RETURN_IF_ERROR(checkScaleInv(weight, *scaleInv, block));
  const int64_t scaleRows = ceilDiv(mv.rows, block.rows);
  const int64_t scaleCols = ceilDiv(mv.cols, block.cols);
  for (int64_t r = 0; r < rowCount; ++r) {
    const int64_t row = rowBegin + r;
    const uint8_t *srcRow = src + static_cast<size_t>(r) * rowBytes;
    float *dstRow = dst + static_cast<size_t>(r) * mv.cols;
    M2C_RETURN_IF_ERROR(convertToF32(DType::F8_E4M3, srcRow,
                                     static_cast<size_t>(mv.cols), dstRow));
    const uint8_t *scaleRow =
        scaleInv->data +
        static_cast<size_t>((matrix * scaleRows + row / block.rows) *
                            scaleCols) *
            sizeof(float);
    for (int64_t cb = 0; cb < scaleCols; ++cb) {
      float s;
      std::memcpy(&s, scaleRow + cb * sizeof(float), sizeof(float));
      const int64_t c0 = cb * block.cols;
      const int64_t c1 = std::min(mv.cols, c0 + block.cols);
      for (int64_t c = c0; c < c1; ++c)
        dstRow[c] *= s;
    }
  }
  return Status::ok();
}

Status dequantizeF32(const TensorView &weight, const TensorView *scaleInv,
                     BlockSize block, float *dst) {
  M2C_RETURN_IF_ERROR(checkViewConsistent(weight));
  const MatrixView mv = asMatrices(weight.shape);
  if (weight.shape.empty() && !scaleInv)
    return convertToF32(weight.dtype, weight.data, 1, dst);
  for (int64_t m = 0; m < mv.matrices; ++m)
    M2C_RETURN_IF_ERROR(dequantizeRowsF32(
        weight, scaleInv, block, m, 0, mv.rows,
        dst + static_cast<size_t>(m) * mv.rows * mv.cols));
  return Status::ok();
}

} // namespace m2c
