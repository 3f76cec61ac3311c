//===- DType.cpp - safetensors element types and exact conversions to f32 -===//

#include "runtime/checkpoint/DType.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

namespace m2c {

namespace {

struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},         {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},         {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},         {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeInfo &info(DType dtype) {
  for (const DTypeInfo &i : kDTypes)
    if (i.dtype == dtype)
      return i;
  return kDTypes[0]; // unreachable for a valid enum value
}

float bitsToF32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint32_t f32ToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

float decodeF8e4m3(uint8_t bits) {
  const bool negative = bits & 0x80;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  float magnitude;
  if (exponent == 0xf && mantissa == 0x7)
    magnitude = std::numeric_limits<float>::quiet_NaN();
  else if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  else
    magnitude = std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
  return negative ? -magnitude : magnitude;
}

// A table, because FP8 weights are decoded one byte at a time over hundreds
// of gigabytes and a load beats the branches above.
const std::array<float, 256> &f8e4m3Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i)
      t[i] = decodeF8e4m3(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

template <typename T> T loadLE(const uint8_t *p) {
  // The runtime targets little-endian hosts (x86-64, aarch64), as does the
  // format, so a memcpy is a load; memcpy also tolerates misaligned data,
  // which safetensors allows.
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

} // namespace

const char *dtypeName(DType dtype) { return info(dtype).name; }

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeInfo &i : kDTypes)
    if (name == i.name)
      return i.dtype;
  return std::nullopt;
}

size_t dtypeSize(DType dtype) { return info(dtype).size; }

bool isConvertibleToF32(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 ||
         dtype == DType::F8_E4M3;
}

float bf16ToF32(uint16_t bits) {
  return bitsToF32(static_cast<uint32_t>(bits) << 16);
}

float f16ToF32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ff;
  if (exponent == 0x1f) // inf / NaN keep their payload
    return bitsToF32(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return bitsToF32(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0)
    return bitsToF32(sign);
  // Subnormal: m * 2^-24 is exact in f32.
  float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  return sign ? -magnitude : magnitude;
}

float f8e4m3ToF32(uint8_t bits) { return f8e4m3Table()[bits]; }

uint16_t f32ToBf16(float value) {
  uint32_t bits = f32ToBits(value);
  if (std::isnan(value))
    return static_cast<uint16_t>((bits >> 16) | 0x0040); // keep it a NaN
  // Adding 0x7fff plus the lowest kept bit rounds half to even; overflow
  // into the exponent correctly produces the next binade or infinity.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

uint8_t f32ToF8e4m3(float value) {
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value))
    return sign | 0x7f;
  const float magnitude = std::fabs(value);
  if (magnitude >= 448.0f)
    return sign | 0x7e;
  // The 127 non-negative finite codes 0x00..0x7e are increasing in value:
  // binary-search the neighbours and round to nearest, ties to the even code.
  const std::array<float, 256> &table = f8e4m3Table();
  int lo = 0, hi = 0x7e;
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (table[mid] <= magnitude)
      lo = mid;
    else
      hi = mid;
  }
  const float dLo = magnitude - table[lo];
  const float dHi = table[hi] - magnitude;
  int code;
  if (dLo < dHi)
    code = lo;
  else if (dHi < dLo)
    code = hi;
  else
    code = (lo % 2 == 0) ? lo : hi;
  return static_cast<uint8_t>(sign | code);
}

Status convertToF32(DType dtype, const uint8_t *src, size_t count,
                    float *dst) {
  if (count == 0 && isConvertibleToF32(dtype))
    return Status::ok(); // empty tensors may come with null pointers
  switch (dtype) {
  case DType::F32:
    std::memcpy(dst, src, count * sizeof(float));
    return Status::ok();
  case DType::BF16:
    for (size_t i = 0; i < count; ++i)
      dst[i] = bf16ToF32(loadLE<uint16_t>(src + 2 * i));
    return Status::ok();
  case DType::F16:
    for (size_t i = 0; i < count; ++i)
      dst[i] = f16ToF32(loadLE<uint16_t>(src + 2 * i));
    return Status::ok();
  case DType::F8_E4M3: {
    const std::array<float, 256> &table = f8e4m3Table();
    for (size_t i = 0; i < count; ++i)
      dst[i] = table[src[i]];
    return Status::ok();
  }
  default:
    return Status::error(std::string("dtype ") + dtypeName(dtype) +
                         " cannot be converted to f32 (supported: F32, "
                         "F16, BF16, F8_E4M3)");
  }
}

} // namespace m2c
