//===- SafeTensorsTest.cpp - Writer/reader round trips and FP8 dequant ----===//

#include "CheckpointTestUtil.h"

#include "runtime/checkpoint/Dequantize.h"
#include "runtime/checkpoint/SafeTensors.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace m2c;
using namespace m2c::test;

namespace {

std::vector<uint8_t> patternBytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(seed + 31 * i);
  return v;
}

TEST(CheckpointSafeTensors, RoundTripsEveryDtype) {
  TempDir dir;
  SafeTensorsWriter w;
  struct Case {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Case> cases = {
      {"f32", DType::F32, {3, 5}},     {"f16", DType::F16, {7}},
      {"bf16", DType::BF16, {2, 3, 1}}, {"f8", DType::F8_E4M3, {5, 3}},
      {"f8e5", DType::F8_E5M2, {4}},   {"f64", DType::F64, {2}},
      {"i64", DType::I64, {3}},        {"i32", DType::I32, {1, 1}},
      {"i16", DType::I16, {5}},        {"i8", DType::I8, {9}},
      {"u64", DType::U64, {1}},        {"u32", DType::U32, {2}},
      {"u16", DType::U16, {3}},        {"u8", DType::U8, {13}},
      {"bool", DType::BOOL, {2, 2}},   {"scalar", DType::F32, {}},
      {"empty", DType::BF16, {0, 4}},
  };
  uint8_t seed = 1;
  for (const Case &c : cases) {
    std::vector<uint8_t> bytes =
        patternBytes(numElements(c.shape) * dtypeSize(c.dtype), seed++);
    ASSERT_TRUE(w.addTensor(c.name, c.dtype, c.shape, bytes.data(),
                            bytes.size()).isOk())
        << c.name;
  }
  w.setMetadata("format", "pt");
  w.setMetadata("producer", "m2c test");
  const std::string path = dir.file("all.safetensors");
  ASSERT_TRUE(w.write(path).isOk());

  StatusOr<SafeTensorsFile> file = SafeTensorsFile::open(path);
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->names().size(), cases.size());
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->metadata().at("producer"), "m2c test");
  // The data section starts 8-byte aligned and the header is space padded.
  EXPECT_EQ(file->header().dataOffset % 8, 0u);
  seed = 1;
  for (const Case &c : cases) {
    std::vector<uint8_t> bytes =
        patternBytes(numElements(c.shape) * dtypeSize(c.dtype), seed++);
    StatusOr<TensorView> t = file->get(c.name);
    ASSERT_TRUE(t.isOk()) << t.status().message();
    EXPECT_EQ(t->name, c.name);
    EXPECT_EQ(t->dtype, c.dtype);
    EXPECT_EQ(t->shape, c.shape);
    ASSERT_EQ(t->byteSize, bytes.size());
    if (!bytes.empty()) {
      EXPECT_EQ(std::memcmp(t->data, bytes.data(), bytes.size()), 0) << c.name;
      // Sorting by element size keeps every tensor naturally aligned.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % dtypeSize(c.dtype), 0u)
          << c.name;
    }
  }
  EXPECT_FALSE(file->has("missing"));
  StatusOr<TensorView> missing = file->get("missing");
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().message(), path + ": no tensor named 'missing'");
}

TEST(CheckpointSafeTensors, SerializeMatchesWriteAndPadsWithSpaces) {
  TempDir dir;
  SafeTensorsWriter w;
  float v[3] = {1, 2, 3};
  ASSERT_TRUE(w.addTensorFromF32("x", DType::F32, {3}, v).isOk());
  std::vector<uint8_t> mem = w.serialize();
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | mem[i];
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(mem[8], '{');
  std::string header(mem.begin() + 8, mem.begin() + 8 + n);
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  EXPECT_EQ(mem.size(), 8 + n + 12);
  ASSERT_TRUE(w.write(dir.file("x.safetensors")).isOk());
  StatusOr<SafeTensorsHeader> h =
      parseSafeTensorsHeader(mem.data(), mem.size(), "mem");
  ASSERT_TRUE(h.isOk()) << h.status().message();
  ASSERT_EQ(h->entries.size(), 1u);
  EXPECT_EQ(h->entries[0].end, 12u);
}

TEST(CheckpointSafeTensors, WriterEncodesF32AsBf16AndFp8) {
  TempDir dir;
  SafeTensorsWriter w;
  float v[4] = {1.0f, -2.5f, 448.0f, 0.001f};
  ASSERT_TRUE(w.addTensorFromF32("b", DType::BF16, {4}, v).isOk());
  ASSERT_TRUE(w.addTensorFromF32("f", DType::F8_E4M3, {2, 2}, v).isOk());
  ASSERT_TRUE(w.write(dir.file("t.safetensors")).isOk());
  StatusOr<SafeTensorsFile> file =
      SafeTensorsFile::open(dir.file("t.safetensors"));
  ASSERT_TRUE(file.isOk());
  float out[4];
  StatusOr<TensorView> b = file->get("b");
  ASSERT_TRUE(dequantizeF32(*b, nullptr, {}, out).isOk());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(out[i], bf16ToF32(f32ToBf16(v[i])));
  StatusOr<TensorView> f = file->get("f");
  ASSERT_TRUE(dequantizeF32(*f, nullptr, {}, out).isOk());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.5f);
  EXPECT_EQ(out[2], 448.0f);
  EXPECT_EQ(out[3], f8e4m3ToF32(f32ToF8e4m3(0.001f)));
}

TEST(CheckpointSafeTensors, WriterRejectsBadTensors) {
  SafeTensorsWriter w;
  uint8_t bytes[6] = {};
  Status st = w.addTensor("a", DType::F32, {2}, bytes, 6);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(),
            "tensor 'a': got 6 bytes but shape [2] of F32 needs 8");
  ASSERT_TRUE(w.addTensor("a", DType::U8, {6}, bytes, 6).isOk());
  st = w.addTensor("a", DType::U8, {6}, bytes, 6);
  EXPECT_EQ(st.message(), "tensor 'a': added twice");
  st = w.addTensor("__metadata__", DType::U8, {6}, bytes, 6);
  EXPECT_EQ(st.message(), "tensor '__metadata__': the name is reserved for "
                          "metadata");
  st = w.addTensor("n", DType::U8, {-1}, bytes, 0);
  EXPECT_EQ(st.message(), "tensor 'n': shape [-1] has a negative dimension");
  st = w.addTensorFromF32("i", DType::I32, {1}, nullptr);
  EXPECT_EQ(st.message(), "tensor 'i': cannot encode f32 as I32");
}

TEST(CheckpointSafeTensors, OpenReportsMissingFilesAndDirectories) {
  TempDir dir;
  StatusOr<SafeTensorsFile> f = SafeTensorsFile::open(dir.file("nope"));
  ASSERT_FALSE(f.isOk());
  EXPECT_EQ(f.status().message(),
            dir.file("nope") + ": cannot open: No such file or directory");
  f = SafeTensorsFile::open(dir.path());
  ASSERT_FALSE(f.isOk());
  EXPECT_EQ(f.status().message(), dir.path() + ": not a regular file");
}

TEST(CheckpointSafeTensors, MovedFileKeepsViewsValid) {
  TempDir dir;
  SafeTensorsWriter w;
  float v[2] = {3, 4};
  ASSERT_TRUE(w.addTensorFromF32("x", DType::F32, {2}, v).isOk());
  ASSERT_TRUE(w.write(dir.file("x.safetensors")).isOk());
  StatusOr<SafeTensorsFile> a = SafeTensorsFile::open(dir.file("x.safetensors"));
  ASSERT_TRUE(a.isOk());
  SafeTensorsFile moved = a.take();
  StatusOr<TensorView> t = moved.get("x");
  ASSERT_TRUE(t.isOk());
  float out[2];
  std::memcpy(out, t->data, 8);
  EXPECT_EQ(out[1], 4.0f);
}

//===----------------------------------------------------------------------===//
// FP8 block dequantization
//===----------------------------------------------------------------------===//

TensorView makeView(const std::string &name, DType dtype,
                    std::vector<int64_t> shape,
                    const std::vector<uint8_t> &bytes) {
  TensorView v;
  v.name = name;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.data = bytes.data();
  v.byteSize = bytes.size();
  return v;
}

TEST(CheckpointDequantize, Fp8BlocksWithPartialEdgesAt128) {
  // 200 x 300 with 128 x 128 blocks: a 2 x 3 grid whose last row of blocks
  // has 72 rows and last column 44 columns.
  const int64_t R = 200, C = 300;
  std::vector<uint8_t> codes(R * C);
  for (int64_t i = 0; i < R * C; ++i) {
    uint8_t c = static_cast<uint8_t>((i * 7 + 3) & 0xff);
    codes[i] = (c & 0x7f) == 0x7f ? 0x3a : c; // no NaNs
  }
  std::vector<float> scales(2 * 3);
  for (int i = 0; i < 6; ++i)
    scales[i] = 0.5f + i; // distinct per block
  std::vector<uint8_t> scaleBytes(scales.size() * 4);
  std::memcpy(scaleBytes.data(), scales.data(), scaleBytes.size());
  TensorView w = makeView("w", DType::F8_E4M3, {R, C}, codes);
  TensorView s = makeView("w_scale_inv", DType::F32, {2, 3}, scaleBytes);
  std::vector<float> out(R * C);
  ASSERT_TRUE(dequantizeF32(w, &s, {128, 128}, out.data()).isOk());
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j)
      ASSERT_EQ(out[i * C + j],
                f8e4m3ToF32(codes[i * C + j]) * scales[(i / 128) * 3 + j / 128])
          << i << "," << j;

  // A row slice reads the same values.
  std::vector<float> rows(3 * C);
  ASSERT_TRUE(dequantizeRowsF32(w, &s, {128, 128}, 0, 127, 3, rows.data())
                  .isOk());
  for (int64_t j = 0; j < 3 * C; ++j)
    ASSERT_EQ(rows[j], out[127 * C + j]);
}

TEST(CheckpointDequantize, Packed3DUsesPerMatrixScales) {
  // [E=2, R=6, C=5] with 4x4 blocks: grid [2, 2, 2].
  const int64_t E = 2, R = 6, C = 5;
  std::vector<uint8_t> codes(E * R * C, 0x38); // all 1.0
  std::vector<float> scales = {1, 2, 3, 4, 10, 20, 30, 40};
  std::vector<uint8_t> scaleBytes(scales.size() * 4);
  std::memcpy(scaleBytes.data(), scales.data(), scaleBytes.size());
  TensorView w = makeView("p", DType::F8_E4M3, {E, R, C}, codes);
  TensorView s = makeView("p_scale_inv", DType::F32, {E, 2, 2}, scaleBytes);
  std::vector<float> out(3 * C);
  // Matrix 1, rows 3..5: row 3 is in block row 0, rows 4-5 in block row 1.
  ASSERT_TRUE(dequantizeRowsF32(w, &s, {4, 4}, 1, 3, 3, out.data()).isOk());
  EXPECT_EQ(out[0], 10.0f);
  EXPECT_EQ(out[4], 20.0f);
  EXPECT_EQ(out[C + 0], 30.0f);
  EXPECT_EQ(out[2 * C + 4], 40.0f);
}

TEST(CheckpointDequantize, RejectsBadScalesAndRanges) {
  std::vector<uint8_t> codes(6 * 5, 0x38);
  std::vector<uint8_t> scaleBytes(4 * 4);
  TensorView w = makeView("w", DType::F8_E4M3, {6, 5}, codes);
  TensorView s = makeView("w_scale_inv", DType::F32, {1, 4}, scaleBytes);
  std::vector<float> out(30);
  Status st = dequantizeF32(w, &s, {4, 4}, out.data());
  EXPECT_EQ(st.message(), "w_scale_inv: expected shape [2, 2] for weight "
                          "[6, 5] with 4x4 blocks, got [1, 4]");
  TensorView sb = makeView("w_scale_inv", DType::BF16, {2, 4}, scaleBytes);
  st = dequantizeF32(w, &sb, {4, 4}, out.data());
  EXPECT_EQ(st.message(), "w_scale_inv: expected dtype F32, got BF16");
  st = dequantizeRowsF32(w, nullptr, {4, 4}, 0, 4, 3, out.data());
  EXPECT_EQ(st.message(), "w: rows [4, 7) of matrix 0 are outside shape [6, 5]");
  TensorView lying = w;
  lying.byteSize = 7;
  st = dequantizeF32(lying, nullptr, {4, 4}, out.data());
  EXPECT_EQ(st.message(), "w: 7 bytes do not hold shape [6, 5] of F8_E4M3");
  TensorView bf = makeView("b", DType::BF16, {3, 5}, codes);
  TensorView s2 = makeView("b_scale_inv", DType::F32, {1, 2}, scaleBytes);
  st = dequantizeF32(bf, &s2, {4, 4}, out.data());
  EXPECT_EQ(st.message(),
            "b: block scales apply only to F8_E4M3 weights, got BF16");
}

} // namespace
