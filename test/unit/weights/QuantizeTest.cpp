//===- QuantizeTest.cpp - Packed quantized formats: layout and error ------===//

#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"
#include "runtime/weights/Weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace m2c;
using plan::Quantization;

namespace {

plan::Weight matrix(std::vector<int64_t> shape, Quantization q) {
  plan::Weight w;
  w.symbol = "w";
  w.shape = std::move(shape);
  w.quantization = q;
  return w;
}

std::vector<float> gaussian(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> values(n);
  for (float &v : values)
    v = normal(gen);
  return values;
}

double relativeRmsError(const std::vector<float> &a, const std::vector<float> &b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

TEST(QuantizeTest, StorageBytes) {
  // Two experts of [200, 300]: partial groups and blocks in both dims.
  EXPECT_EQ(matrix({2, 200, 300}, Quantization::Int8).storageBytes(), 2u * (200 * 300 + 4 * 200));
  EXPECT_EQ(matrix({2, 200, 300}, Quantization::Int4G128).storageBytes(),
            2u * (200 * 150 + 4 * 200 * 3));
  EXPECT_EQ(matrix({2, 200, 300}, Quantization::Fp8Block128).storageBytes(),
            2u * (200 * 300 + 4 * 2 * 3));
}

// The expected error of each format on Gaussian weights: int8 ~0.5% of
// rms, int4 g128 ~10%, fp8 e4m3 ~2-3%. A packing bug shows up as ~100%.
struct ErrorCase {
  Quantization q;
  double low, high;
};

class QuantizeErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(QuantizeErrorTest, RoundTripErrorIsWhatTheFormatAllows) {
  plan::Weight w = matrix({3, 130, 300}, GetParam().q);
  std::vector<float> values = gaussian(w.numElements(), 7);
  std::vector<float> restored = values;
  fakeQuantize(w, restored.data());
  double error = relativeRmsError(restored, values);
  EXPECT_GT(error, GetParam().low);
  EXPECT_LT(error, GetParam().high);
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantizeErrorTest,
                         ::testing::Values(ErrorCase{Quantization::Int8, 1e-3, 1e-2},
                                           ErrorCase{Quantization::Int4G128, 0.05, 0.15},
                                           ErrorCase{Quantization::Fp8Block128, 0.01, 0.05}));

TEST(QuantizeTest, Int4PacksLowNibbleFirstWithOneScalePerGroup) {
  plan::Weight w = matrix({1, 130}, Quantization::Int4G128);
  std::vector<float> values(130, 0.0f);
  values[0] = 7.0f;   // group 0 amax 7 -> scale 1
  values[1] = -3.0f;
  values[129] = 0.5f; // group 1 amax 0.5 -> scale 0.5/7
  std::vector<uint8_t> packed(w.storageBytes());
  packQuantized(w, values.data(), packed.data());
  EXPECT_EQ(packed[0], 0xd7); // low nibble 7, high nibble -3 = 0xd
  float scale0, scale1;
  std::memcpy(&scale0, packed.data() + 65, 4);
  std::memcpy(&scale1, packed.data() + 69, 4);
  EXPECT_FLOAT_EQ(scale0, 1.0f);
  EXPECT_FLOAT_EQ(scale1, 0.5f / 7.0f);
  EXPECT_EQ(packed[64] >> 4, 7); // element 129: high nibble of byte 64
  std::vector<float> restored(130);
  unpackQuantized(w, packed.data(), restored.data());
  EXPECT_FLOAT_EQ(restored[0], 7.0f);
  EXPECT_FLOAT_EQ(restored[1], -3.0f);
  EXPECT_FLOAT_EQ(restored[129], 0.5f);
}

TEST(QuantizeTest, Fp8OfAnFp8CheckpointIsExact) {
  // Values that are e4m3 codes times a block scale, with each block's
  // largest magnitude at 448 as a quantizer leaves them: requantizing gives
  // the same codes and scales, so a native FP8 checkpoint loses nothing.
  plan::Weight w = matrix({200, 150}, Quantization::Fp8Block128);
  std::mt19937 gen(3);
  std::vector<float> values(w.numElements());
  for (int64_t r = 0; r < 200; ++r)
    for (int64_t c = 0; c < 150; ++c) {
      float scale = 0.001f * (1 + (r / 128) * 2 + c / 128);
      uint8_t code = static_cast<uint8_t>(gen() % 0x7e);
      if (r % 128 == 0 && c % 128 == 0)
        code = 0x7e; // 448
      values[r * 150 + c] = f8e4m3ToF32(code) * scale * ((gen() & 1) ? 1 : -1);
    }
  std::vector<float> restored = values;
  fakeQuantize(w, restored.data());
  EXPECT_EQ(restored, values);
}

TEST(QuantizeTest, Int8IsPerOutputRow) {
  plan::Weight w = matrix({2, 4}, Quantization::Int8);
  std::vector<float> values = {1.0f, -0.5f, 0.25f, 0.0f, 100.0f, 50.0f, -25.0f, 12.5f};
  std::vector<uint8_t> packed(w.storageBytes());
  packQuantized(w, values.data(), packed.data());
  EXPECT_EQ(static_cast<int8_t>(packed[0]), 127);
  EXPECT_EQ(static_cast<int8_t>(packed[4]), 127);
  float scales[2];
  std::memcpy(scales, packed.data() + 8, 8);
  EXPECT_FLOAT_EQ(scales[0], 1.0f / 127);
  EXPECT_FLOAT_EQ(scales[1], 100.0f / 127);
}

} // namespace

namespace {

TEST(RandomWeightsTest, TiedLmHeadDrawsTheEmbedding) {
  plan::Weight embed, lmHead, untied;
  embed.symbol = embed.binding = "model.embed_tokens.weight";
  lmHead.symbol = "lm_head.weight";
  lmHead.binding = "model.embed_tokens.weight";
  untied.symbol = untied.binding = "lm_head.weight";
  for (plan::Weight *w : {&embed, &lmHead, &untied})
    w->shape = {16, 8};
  std::vector<float> a(128), b(128), c(128);
  randomWeightF32(embed, 3, a.data());
  randomWeightF32(lmHead, 3, b.data());
  randomWeightF32(untied, 3, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(RandomWeightsTest, ParallelFillDrawsTheSequentialStream) {
  // Large weights fill in parallel chunks; the values must not depend on
  // how many chunks there are. 1024 elements fill on one thread, 2M and 4M
  // on several with different chunk boundaries; each is a prefix of the next.
  plan::Weight w;
  w.symbol = w.binding = "model.layers.0.self_attn.q_proj.weight";
  w.type = plan::ElementType::F32;
  std::vector<std::vector<float>> fills;
  for (int64_t rows : {1, 2049, 4096}) {
    w.shape = {rows, 1024};
    fills.emplace_back(static_cast<size_t>(rows * 1024));
    randomWeightF32(w, 11, fills.back().data());
  }
  EXPECT_TRUE(std::equal(fills[0].begin(), fills[0].end(), fills[2].begin()));
  EXPECT_TRUE(std::equal(fills[1].begin(), fills[1].end(), fills[2].begin()));
  EXPECT_NE(fills[2][4096 * 1024 - 1], fills[2][4096 * 1024 - 2]);
}

// What the CUDA backend uploads for a quantized weight the GPU does not
// pack itself: the random stream packed exactly as the CPU fake-quantizes it.
TEST(RandomWeightsTest, ReadPackedIsTheStreamPacked) {
  plan::Plan plan;
  plan.weights.push_back(matrix({2, 64, 256}, Quantization::Int4G128));
  plan.weights.back().symbol = "model.layers.0.block_sparse_moe.experts.w1";
  plan.weights.back().binding = "model.layers.0.block_sparse_moe.experts.{e}.w1.weight";
  plan.weights.push_back(matrix({64, 256}, Quantization::None));
  WeightSourceOptions source;
  source.random = true;
  source.seed = 5;
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, nullptr, source);
  ASSERT_TRUE(reader) << reader.status().message();
  const plan::Weight &w = plan.weights[0];
  std::vector<uint8_t> packed(w.storageBytes()), expected(w.storageBytes());
  ASSERT_TRUE((*reader)->readPacked(w, packed.data()));
  std::vector<float> values(static_cast<size_t>(w.numElements()));
  randomWeightF32(w, 5, values.data());
  packQuantized(w, values.data(), expected.data());
  EXPECT_EQ(packed, expected);
  // Unpacked, they are the values the CPU backend computes with.
  std::vector<float> unpacked(values.size());
  unpackQuantized(w, packed.data(), unpacked.data());
  fakeQuantize(w, values.data());
  EXPECT_EQ(unpacked, values);
  EXPECT_EQ((*reader)->readPacked(plan.weights[1], packed.data()).message(),
            "weight 'w' is not quantized");
}

} // namespace
