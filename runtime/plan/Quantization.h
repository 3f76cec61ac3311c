//===- Quantization.h - Weight quantization formats -----------------------===//

#ifndef M2C_RUNTIME_PLAN_QUANTIZATION_H
#define M2C_RUNTIME_PLAN_QUANTIZATION_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>

namespace m2c::plan {

/// Weight quantization formats (docs/quantization.md). Matrices are the
/// last two dimensions [N, K]; a leading dimension stacks experts.
enum class Quantization : uint8_t {
  None,
  Int8,         // symmetric int8 per output row: q [N, K] i8, scales [N] f32
  Int4G128,     // symmetric int4, groups of 128 along K: q [N, ceil(K/2)] packed
                // low nibble first, scales [N, ceil(K/128)] f32
  Fp8Block128,  // e4m3fn, 128x128 blocks: q [N, K], scales [ceil(N/128), ceil(K/128)] f32
};
const char *quantizationName(Quantization q);
StatusOr<Quantization> parseQuantization(const std::string &name);

/// One packed [rows, cols] matrix: its codes, then its f32 scales. Stacked
/// experts repeat this layout, one matrix after the other.
struct PackedMatrix {
  uint64_t codeBytes = 0;  ///< the codes; scales start here
  uint64_t scaleBytes = 0;
  uint64_t bytes() const { return codeBytes + scaleBytes; }
};
/// The layout of a matrix in a quantized format (not None).
PackedMatrix packedMatrix(Quantization q, int64_t rows, int64_t cols);

} // namespace m2c::plan

#endif // M2C_RUNTIME_PLAN_QUANTIZATION_H
