//===- Quantization.h - Weight quantization formats and their traits ------===//
//
// The formats are listed once, in QuantFormats.def; QuantFormat holds each
// one's traits (ggml's type_traits idea), and every consumer (the quantize
// pass, packing on the host and the GPU, the kernels' weight operand, plan
// sizes, reports) reads them instead of restating 128, 7 or 448.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_PLAN_QUANTIZATION_H
#define M2C_RUNTIME_PLAN_QUANTIZATION_H

#include "runtime/support/Status.h"

#include <array>
#include <cstdint>
#include <string>

namespace m2c::plan {

/// Weight quantization formats (docs/quantization.md). Matrices are the
/// last two dimensions [N, K]; a leading dimension stacks experts.
enum class Quantization : uint8_t {
  None,
#define M2C_QUANT_FORMAT(Id, ...) Id,
#include "runtime/plan/QuantFormats.def"
};

/// The traits of one packed format (a line of QuantFormats.def).
struct QuantFormat {
  Quantization id;
  const char *name;   ///< in plans and artifacts: "int4_g128"
  const char *option; ///< in --quant and kernel names: "int4"
  int codeBits;       ///< 8, or 4 (two codes a byte, low nibble first)
  bool floatCodes;    ///< e4m3fn codes rather than symmetric integers
  int64_t groupRows;  ///< rows sharing a scale
  int64_t groupCols;  ///< columns sharing a scale; 0: the whole row
  float qmax;         ///< the largest code magnitude; a scale is amax / qmax

  /// Columns of a group in a matrix of `cols` columns.
  int64_t groupWidth(int64_t cols) const { return groupCols ? groupCols : cols; }
  /// The scale grid of a [rows, cols] matrix.
  int64_t scaleRows(int64_t rows) const { return (rows + groupRows - 1) / groupRows; }
  int64_t scaleCols(int64_t cols) const {
    return groupCols ? (cols + groupCols - 1) / groupCols : 1;
  }
  /// Bytes of one row's codes.
  int64_t rowCodeBytes(int64_t cols) const { return (cols * codeBits + 7) / 8; }
};

/// Every packed format, in QuantFormats.def order.
const std::array<QuantFormat, 3> &quantFormats();
/// The traits of a packed format; `q` must not be None.
const QuantFormat &quantFormat(Quantization q);

/// "none", or the format's plan name.
const char *quantizationName(Quantization q);
StatusOr<Quantization> parseQuantization(const std::string &name);
/// The format a --quant option names ("none", "int8", "int4", "fp8").
StatusOr<Quantization> parseQuantizationOption(const std::string &option);
/// "none, int8, int4, fp8": the --quant choices, for messages.
std::string quantizationOptions();

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
