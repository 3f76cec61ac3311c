//===- Dequantize.h - Stored tensors (incl. block-scaled FP8) to f32 ------===//
//
// The released MiniMax-M2 weights are float8_e4m3fn with one f32
// `_scale_inv` per 128x128 block: W[i,j] = fp8[i,j] * scale_inv[i/128, j/128].
// Edge blocks may be partial, so the scale grid is ceil(rows/128) x
// ceil(cols/128). A packed 3-D tensor [E, R, C] carries a scale grid per
// matrix: [E, ceil(R/128), ceil(C/128)].
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHECKPOINT_DEQUANTIZE_H
#define M2C_RUNTIME_CHECKPOINT_DEQUANTIZE_H

#include "runtime/checkpoint/SafeTensors.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <vector>

namespace m2c {

/// Block size of a block-scaled weight (quantization_config's
/// weight_block_size).
struct BlockSize {
  int64_t rows = 128;
  int64_t cols = 128;
};

/// The scale grid shape for a 2-D or 3-D weight; empty for other ranks or
/// non-positive block sizes.
std::vector<int64_t> expectedScaleShape(const std::vector<int64_t> &weightShape,
                                        BlockSize block);

/// Checks that `scaleInv` is F32 with the grid shape `weight` needs.
/// Errors read "<scale name>: expected shape [2, 3] for weight [200, 300]
/// with 128x128 blocks, got [2, 2]".
Status checkScaleInv(const TensorView &weight, const TensorView &scaleInv,
                     BlockSize block);

/// Converts rows [rowBegin, rowBegin + rowCount) of matrix `matrix` of
/// `weight` to f32 row-major at `dst` (rowCount x cols floats). The weight
/// is viewed as [M, R, C]: a 1-D tensor is [1, 1, n] and a 2-D one [1, R, C].
/// `scaleInv` (may be null) applies only to F8_E4M3 weights and is checked
/// with checkScaleInv. Every index is bounds-checked; errors name the tensor.
Status dequantizeRowsF32(const TensorView &weight, const TensorView *scaleInv,
                         BlockSize block, int64_t matrix, int64_t rowBegin,
                         int64_t rowCount, float *dst);

/// Converts a whole tensor (numElements() floats at `dst`).
Status dequantizeF32(const TensorView &weight, const TensorView *scaleInv,
                     BlockSize block, float *dst);

} // namespace m2c

#endif // M2C_RUNTIME_CHECKPOINT_DEQUANTIZE_H
