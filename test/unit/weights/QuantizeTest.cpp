//===- QuantizeTest.cpp - Packed quantized formats: layout and error ------===//

#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"
#include "runtime/weights/Weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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

namespace {

// GPTQ: with H = I there is nothing to spread, so its bytes are exactly
// round-to-nearest's, in every format, with partial groups and blocks.
class GptqTest : public ::testing::TestWithParam<Quantization> {};

std::vector<double> identity(int64_t k) {
  std::vector<double> h(k * k, 0.0);
  for (int64_t i = 0; i < k; ++i)
    h[i * k + i] = 1.0;
  return h;
}

TEST_P(GptqTest, IdentityHessianPacksWhatRoundToNearestPacks) {
  plan::Weight w = matrix({2, 150, 200}, GetParam());
  std::vector<float> values = gaussian(w.numElements(), 11);
  std::vector<uint8_t> rtn(w.storageBytes()), gptq(w.storageBytes(), 0xAB);
  packQuantized(w, values.data(), rtn.data());
  GptqStats stats = packQuantizedGptq(w, values.data(), {identity(200), identity(200)}, gptq.data());
  EXPECT_EQ(stats.gptqMatrices, 2);
  EXPECT_EQ(stats.roundedMatrices, 0);
  EXPECT_EQ(gptq, rtn);
}

TEST_P(GptqTest, MatrixWithoutHessianIsRoundedToNearest) {
  plan::Weight w = matrix({2, 64, 160}, GetParam());
  std::vector<float> values = gaussian(w.numElements(), 12);
  std::vector<uint8_t> rtn(w.storageBytes()), gptq(w.storageBytes());
  packQuantized(w, values.data(), rtn.data());
  // Expert 1 saw no calibration row; a wrongly sized Hessian counts as none.
  GptqStats stats = packQuantizedGptq(w, values.data(), {identity(160), {}}, gptq.data());
  EXPECT_EQ(stats.gptqMatrices, 1);
  EXPECT_EQ(stats.roundedMatrices, 1);
  EXPECT_EQ(gptq, rtn);
  stats = packQuantizedGptq(w, values.data(), {identity(7)}, gptq.data());
  EXPECT_EQ(stats.roundedMatrices, 2);
  EXPECT_EQ(gptq, rtn);
}

/// ||X (W - Q)^T||^2 over the rows of x ([n, k]).
double outputError(const std::vector<float> &x, int64_t n, int64_t k, const std::vector<float> &w,
                   const std::vector<float> &q, int64_t rows) {
  double sum = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0;
      for (int64_t c = 0; c < k; ++c)
        d += double(x[t * k + c]) * (double(w[r * k + c]) - q[r * k + c]);
      sum += d * d;
    }
  return sum;
}

TEST_P(GptqTest, CorrelatedInputsMoveTheOutputLessThanRoundToNearest) {
  // Inputs with a strong shared component and uneven channel scales, as
  // real activations have; GPTQ must beat round-to-nearest on held-out
  // rows from the same distribution, not only on the calibration rows.
  const int64_t k = 192, rows = 96, n = 512;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> mix(8 * k);
  for (float &v : mix)
    v = normal(gen);
  auto draw = [&](int64_t count) {
    std::vector<float> x(count * k);
    for (int64_t t = 0; t < count; ++t) {
      float z[8];
      for (float &v : z)
        v = normal(gen);
      for (int64_t c = 0; c < k; ++c) {
        float v = 0.3f * normal(gen);
        for (int j = 0; j < 8; ++j)
          v += z[j] * mix[j * k + c];
        x[t * k + c] = v * (1.0f + 3.0f * float(c % 7 == 0));
      }
    }
    return x;
  };
  std::vector<float> calib = draw(n), held = draw(n);
  std::vector<double> h(k * k, 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        h[i * k + j] += double(calib[t * k + i]) * calib[t * k + j];

  plan::Weight w = matrix({rows, k}, GetParam());
  std::vector<float> values = gaussian(w.numElements(), 13);
  std::vector<uint8_t> rtnBytes(w.storageBytes()), gptqBytes(w.storageBytes());
  packQuantized(w, values.data(), rtnBytes.data());
  packQuantizedGptq(w, values.data(), {h}, gptqBytes.data());
  std::vector<float> rtn(values.size()), gptq(values.size());
  unpackQuantized(w, rtnBytes.data(), rtn.data());
  unpackQuantized(w, gptqBytes.data(), gptq.data());
  double rtnError = outputError(held, n, k, values, rtn, rows);
  double gptqError = outputError(held, n, k, values, gptq, rows);
  std::printf("[ gptq     ] format %d: held-out output error %.3g of round-to-nearest's\n",
              int(GetParam()), gptqError / rtnError);
  EXPECT_LT(gptqError, 0.8 * rtnError);
  // The weights themselves move more: GPTQ trades ||W - Q|| for the output.
  EXPECT_GT(relativeRmsError(gptq, values), relativeRmsError(rtn, values));
}

INSTANTIATE_TEST_SUITE_P(Formats, GptqTest,
                         ::testing::Values(Quantization::Int8, Quantization::Int4G128,
                                           Quantization::Fp8Block128),
                         [](const auto &info) {
                           return std::string(info.param == Quantization::Int8       ? "Int8"
                                              : info.param == Quantization::Int4G128 ? "Int4G128"
                                                                                     : "Fp8Block128");
                         });

} // namespace
