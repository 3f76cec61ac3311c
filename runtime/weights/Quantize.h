//===- Quantize.h - Packing weights into the quantized formats ------------===//
//
// The formats of plan::Quantization, packed the way the artifact stores
// them (data, then f32 scales) and the kernels read them. All are
// symmetric (no zero point): MiniMax-M2's weights are centred, and a zero
// point would cost a second load per group in the GEMV inner loop.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_WEIGHTS_QUANTIZE_H
#define M2C_RUNTIME_WEIGHTS_QUANTIZE_H

#include "runtime/plan/Plan.h"

#include <cstdint>
#include <vector>

namespace m2c {

/// Packs `values` (w.numElements() floats) into w.storageBytes() bytes.
void packQuantized(const plan::Weight &w, const float *values, uint8_t *out);

/// How packQuantizedGptq packed a weight's matrices.
struct GptqStats {
  int64_t gptqMatrices = 0;
  /// Matrices without a Hessian (too few calibration rows: see
  /// packWithGptq), or whose Hessian stayed singular: round-to-nearest.
  int64_t roundedMatrices = 0;
};

/// GPTQ (Frantar et al., 2022) into packQuantized's layout. The columns of
/// each matrix are rounded in order and each column's rounding error is
/// spread over the columns not yet rounded, through the inverse Hessian of
/// the calibration inputs: it minimises ||X (W - Q)^T|| over the inputs X
/// rather than ||W - Q||. hessians[m] is X^T X ([k, k] row-major) of matrix
/// m of the weight (one per expert of a stacked weight); `damping` times
/// the mean of its diagonal is added to it. A group's scale is the format's
/// (amax / 127, / 7, / 448), taken when GPTQ reaches the group; int8's from
/// the whole row at the start. With H = I nothing is spread, and the bytes
/// are packQuantized's.
GptqStats packQuantizedGptq(const plan::Weight &w, const float *values,
                            const std::vector<std::vector<double>> &hessians, uint8_t *out,
                            double damping = 0.01);

/// packQuantizedGptq for matrix `matrix` of `w` alone (its bytes in `out`,
/// the whole weight's packed buffer), so that matrices can be packed in
/// parallel. Returns false when it rounded to nearest instead.
bool packMatrixQuantizedGptq(const plan::Weight &w, int64_t matrix, const float *values,
                             const std::vector<double> &hessian, uint8_t *out,
                             double damping = 0.01);

/// Decodes packed bytes back to f32 (the values the kernels compute with).
void unpackQuantized(const plan::Weight &w, const uint8_t *packed, float *out);

/// packQuantized then unpackQuantized, in place: what a quantized weight
/// computes like, for sources that hold full-precision values.
void fakeQuantize(const plan::Weight &w, float *values);

} // namespace m2c

#endif // M2C_RUNTIME_WEIGHTS_QUANTIZE_H
