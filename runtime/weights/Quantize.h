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

/// Decodes packed bytes back to f32 (the values the kernels compute with).
void unpackQuantized(const plan::Weight &w, const uint8_t *packed, float *out);

/// packQuantized then unpackQuantized, in place: what a quantized weight
/// computes like, for sources that hold full-precision values.
void fakeQuantize(const plan::Weight &w, float *values);

} // namespace m2c

#endif // M2C_RUNTIME_WEIGHTS_QUANTIZE_H
