//===- DType.h - safetensors element types and exact conversions to f32 ---===//
//
// The checkpoint reader hands every weight to the rest of the runtime as
// f32 (or as raw bytes plus a DType). The decoders here are exact: bf16,
// f16 and f8_e4m3fn values are all representable in f32, so a round trip
// through them never loses information.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHECKPOINT_DTYPE_H
#define M2C_RUNTIME_CHECKPOINT_DTYPE_H

#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace m2c {

/// Every dtype string of the safetensors format. Only F32, F16, BF16 and
/// F8_E4M3 can be converted to f32; the others are recognised so that a
/// file holding them still opens and the error can name the dtype.
enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F8_E4M3,
  F8_E5M2,
  F64,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
};

/// The safetensors spelling, e.g. "F8_E4M3".
const char *dtypeName(DType dtype);
/// Parses a safetensors dtype string; nullopt when unknown.
std::optional<DType> parseDType(const std::string &name);
/// Bytes per element (1 for BOOL and the f8 types).
size_t dtypeSize(DType dtype);
/// True for the dtypes convertToF32 accepts.
bool isConvertibleToF32(DType dtype);

/// Exact decoders.
float bf16ToF32(uint16_t bits);
float f16ToF32(uint16_t bits);
/// OCP float8 e4m3fn: bias 7, no infinities, 0x7f/0xff are NaN, subnormals
/// are m * 2^-9.
float f8e4m3ToF32(uint8_t bits);

/// Round-to-nearest-even encoders for writers. NaN stays a (quiet) NaN.
uint16_t f32ToBf16(float value);
/// Rounds to nearest even and saturates finite overflow (and infinities) to
/// +-448, the way quantizers clamp before casting. NaN maps to 0x7f/0xff.
uint8_t f32ToF8e4m3(float value);

/// Converts `count` elements stored little-endian at `src` (any alignment)
/// to f32. Fails, naming the dtype, for dtypes that are not floating point
/// weights.
Status convertToF32(DType dtype, const uint8_t *src, size_t count, float *dst);

} // namespace m2c

#endif // M2C_RUNTIME_CHECKPOINT_DTYPE_H
