//===- DTypeTest.cpp - Exact bf16/f16/f8_e4m3fn decoding and RNE encoding -===//

#include "runtime/checkpoint/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace m2c;

namespace {

uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(CheckpointDType, NamesRoundTrip) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3,
                  DType::F8_E5M2, DType::F64, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U64, DType::U32, DType::U16,
                  DType::U8, DType::BOOL}) {
    std::optional<DType> back = parseDType(dtypeName(d));
    ASSERT_TRUE(back.has_value()) << dtypeName(d);
    EXPECT_EQ(*back, d);
  }
  EXPECT_FALSE(parseDType("F7").has_value());
  EXPECT_FALSE(parseDType("bf16").has_value()); // the format is upper case
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
}

TEST(CheckpointDType, F8E4M3SpotValues) {
  EXPECT_EQ(f8e4m3ToF32(0x38), 1.0f);
  EXPECT_EQ(f8e4m3ToF32(0x7e), 448.0f);
  EXPECT_EQ(f8e4m3ToF32(0xfe), -448.0f);
  EXPECT_EQ(f8e4m3ToF32(0x01), std::ldexp(1.0f, -9)); // smallest subnormal
  EXPECT_EQ(f8e4m3ToF32(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(f8e4m3ToF32(0x08), std::ldexp(1.0f, -6)); // smallest normal
  EXPECT_EQ(f8e4m3ToF32(0x40), 2.0f);
  EXPECT_EQ(f8e4m3ToF32(0x3c), 1.5f);
  EXPECT_EQ(f8e4m3ToF32(0xb8), -1.0f);
  EXPECT_EQ(f8e4m3ToF32(0x77), 240.0f); // e=14: no infinity at e=15
  EXPECT_EQ(f8e4m3ToF32(0x78), 256.0f);
  EXPECT_TRUE(std::isnan(f8e4m3ToF32(0x7f)));
  EXPECT_TRUE(std::isnan(f8e4m3ToF32(0xff)));
  EXPECT_EQ(bitsOf(f8e4m3ToF32(0x00)), 0u);
  EXPECT_EQ(bitsOf(f8e4m3ToF32(0x80)), 0x80000000u); // -0
}

TEST(CheckpointDType, F8E4M3TableIsMonotonicAndRoundTrips) {
  for (int code = 0; code < 0x7f; ++code) {
    if (code > 0) {
      EXPECT_LT(f8e4m3ToF32(code - 1), f8e4m3ToF32(code)) << code;
    }
    EXPECT_EQ(f32ToF8e4m3(f8e4m3ToF32(code)), code) << code;
    EXPECT_EQ(f32ToF8e4m3(f8e4m3ToF32(code | 0x80)), code | 0x80) << code;
  }
}

TEST(CheckpointDType, F8E4M3EncodeRoundsAndSaturates) {
  // 1.0625 lies halfway between 1.0 (0x38) and 1.125 (0x39): ties to even.
  EXPECT_EQ(f32ToF8e4m3(1.0625f), 0x38);
  // 1.1875 is halfway between 0x39 and 0x3a: ties to even.
  EXPECT_EQ(f32ToF8e4m3(1.1875f), 0x3a);
  EXPECT_EQ(f32ToF8e4m3(1.07f), 0x39);
  EXPECT_EQ(f32ToF8e4m3(1000.0f), 0x7e);
  EXPECT_EQ(f32ToF8e4m3(-1000.0f), 0xfe);
  EXPECT_EQ(f32ToF8e4m3(std::numeric_limits<float>::infinity()), 0x7e);
  EXPECT_EQ(f32ToF8e4m3(std::nanf("")), 0x7f);
  EXPECT_EQ(f32ToF8e4m3(std::ldexp(1.0f, -10)), 0x00); // half of 2^-9: even
  EXPECT_EQ(f32ToF8e4m3(std::ldexp(1.0f, -10) * 1.01f), 0x01);
}

TEST(CheckpointDType, Bf16ExhaustiveRoundTrip) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16ToF32(static_cast<uint16_t>(b));
    EXPECT_EQ(bitsOf(f), b << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(f32ToBf16(f), b) << std::hex << b;
    } else {
      EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBf16(f))));
    }
  }
}

TEST(CheckpointDType, Bf16RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7); // bf16 ulp at 1.0
  EXPECT_EQ(f32ToBf16(1.0f + ulp / 2), 0x3f80);           // tie -> even
  EXPECT_EQ(f32ToBf16(1.0f + ulp + ulp / 2), 0x3f82);     // tie -> even
  EXPECT_EQ(f32ToBf16(1.0f + ulp / 2 * 1.01f), 0x3f81);   // above the tie
  EXPECT_EQ(f32ToBf16(std::numeric_limits<float>::max()), 0x7f80); // -> inf
  EXPECT_EQ(f32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
}

TEST(CheckpointDType, F16SpotValues) {
  EXPECT_EQ(f16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(f16ToF32(0xc000), -2.0f);
  EXPECT_EQ(f16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToF32(0x03ff), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToF32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(f16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16ToF32(0x7e00)));
  EXPECT_EQ(bitsOf(f16ToF32(0x8000)), 0x80000000u);
}

#ifdef __FLT16_MAX__
TEST(CheckpointDType, F16ExhaustiveAgainstCompiler) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t h = static_cast<uint16_t>(b);
    _Float16 ref;
    std::memcpy(&ref, &h, 2);
    float want = static_cast<float>(ref);
    float got = f16ToF32(h);
    if (std::isnan(want))
      EXPECT_TRUE(std::isnan(got)) << b;
    else
      ASSERT_EQ(bitsOf(got), bitsOf(want)) << std::hex << b;
  }
}
#endif

TEST(CheckpointDType, ConvertToF32HandlesUnalignedInput) {
  uint8_t buf[1 + 3 * 2];
  const uint16_t vals[3] = {0x3f80, 0xc000, 0x0000}; // bf16 1, -2, 0
  std::memcpy(buf + 1, vals, sizeof(vals));
  float out[3];
  ASSERT_TRUE(convertToF32(DType::BF16, buf + 1, 3, out).isOk());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 0.0f);
}

TEST(CheckpointDType, ConvertToF32RejectsIntegerDtypes) {
  uint8_t buf[4] = {};
  float out[1];
  Status st = convertToF32(DType::I32, buf, 1, out);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "dtype I32 cannot be converted to f32 (supported: "
                          "F32, F16, BF16, F8_E4M3)");
}

} // namespace

namespace {

// Found by the fuzzer: an empty tensor's destination may be a null
// vector::data(), and memcpy(nullptr, p, 0) is undefined.
TEST(CheckpointDType, ConvertsEmptyTensorsWithNullPointers) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3})
    EXPECT_TRUE(convertToF32(d, nullptr, 0, nullptr).isOk()) << dtypeName(d);
}

} // namespace
