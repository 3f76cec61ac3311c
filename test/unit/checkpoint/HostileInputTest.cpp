//===- HostileInputTest.cpp - Malformed files give exact errors, no crash -===//

#include "CheckpointTestUtil.h"

#include "runtime/checkpoint/CheckpointBinding.h"

#include <gtest/gtest.h>

#include <random>

using namespace m2c;
using namespace m2c::test;

namespace {

/// Writes `bytes` and opens them through the mmap path; returns the error.
std::string openError(const TempDir &dir, const std::vector<uint8_t> &bytes) {
  const std::string path = dir.file("bad.safetensors");
  writeBytes(path, bytes);
  StatusOr<SafeTensorsFile> f = SafeTensorsFile::open(path);
  EXPECT_FALSE(f.isOk()) << "hostile file opened";
  // The in-memory parser must agree with the file reader.
  StatusOr<SafeTensorsHeader> h =
      parseSafeTensorsHeader(bytes.data(), bytes.size(), path);
  EXPECT_FALSE(h.isOk());
  if (f || h)
    return "";
  EXPECT_EQ(f.status().message(), h.status().message());
  return f.status().message();
}

std::string headerError(const TempDir &dir, const std::string &header,
                        size_t dataBytes) {
  return openError(dir, rawSafeTensors(header, dataBytes));
}

#define EXPECT_CONTAINS(haystack, needle)                                      \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)             \
      << "message: " << (haystack)

TEST(CheckpointHostile, TruncatedFile) {
  TempDir dir;
  EXPECT_EQ(openError(dir, {1, 2, 3, 4, 5}),
            dir.file("bad.safetensors") +
                ": file is 5 bytes, shorter than the 8-byte header length");
  EXPECT_CONTAINS(openError(dir, {}), ": file is 0 bytes, shorter than");
}

TEST(CheckpointHostile, HeaderLengthBeyondFile) {
  TempDir dir;
  EXPECT_EQ(openError(dir, rawSafeTensors("{}      ", 12, 1000)),
            dir.file("bad.safetensors") +
                ": header length 1000 exceeds the file size minus 8 (20 "
                "bytes)");
}

TEST(CheckpointHostile, HeaderLengthOverCap) {
  TempDir dir;
  EXPECT_CONTAINS(openError(dir, rawSafeTensors("{}", 0, 200000000)),
                  ": header length 200000000 exceeds the limit of 100000000 "
                  "bytes");
  EXPECT_CONTAINS(openError(dir, rawSafeTensors("{}", 0, ~0ull - 1)),
                  ": header length 18446744073709551614 exceeds the limit");
}

TEST(CheckpointHostile, BadJson) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir, "{\"a\": ", 0),
                  ": header is not valid JSON: parse error at line 1, "
                  "column 7: syntax error");
  EXPECT_CONTAINS(headerError(dir, "{\"a\": {}} trailing", 0),
                  ": header is not valid JSON");
  // Invalid UTF-8 in a tensor name.
  EXPECT_CONTAINS(headerError(dir, "{\"\xff\": {}}", 0),
                  ": header is not valid JSON");
}

TEST(CheckpointHostile, HeaderNotAnObject) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir, "[1, 2]", 0),
                  ": header does not start with '{'");
  EXPECT_CONTAINS(openError(dir, rawSafeTensors("", 0)),
                  ": header does not start with '{'");
}

TEST(CheckpointHostile, EntryNotAnObject) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir, R"({"t": 3})", 0),
                  ": tensor 't': entry is not an object (got number)");
}

TEST(CheckpointHostile, MissingDtype) {
  TempDir dir;
  EXPECT_CONTAINS(
      headerError(dir, R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", 4),
      ": tensor 't': missing \"dtype\"");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": 7, "shape": [1],
                                  "data_offsets": [0, 4]}})",
                              4),
                  ": tensor 't': \"dtype\" is not a string (got number)");
}

TEST(CheckpointHostile, UnknownDtype) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F7", "shape": [1],
                                  "data_offsets": [0, 4]}})",
                              4),
                  ": tensor 't': unknown dtype 'F7'");
}

TEST(CheckpointHostile, BadShapes) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [1, -2],
                                  "data_offsets": [0, 4]}})",
                              4),
                  ": tensor 't': shape[1] is negative (-2)");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [2.5],
                                  "data_offsets": [0, 4]}})",
                              4),
                  ": tensor 't': shape[0] is not an integer (got number)");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": "3",
                                  "data_offsets": [0, 4]}})",
                              4),
                  ": tensor 't': \"shape\" is not an array (got string)");
  EXPECT_CONTAINS(
      headerError(dir,
                  R"({"t": {"dtype": "F32", "shape": [18446744073709551615],
                      "data_offsets": [0, 4]}})",
                  4),
      ": tensor 't': shape[0] is too large (18446744073709551615)");
  EXPECT_CONTAINS(headerError(dir, R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
                  ": tensor 't': missing \"shape\"");
}

TEST(CheckpointHostile, ShapeProductOverflows) {
  TempDir dir;
  EXPECT_CONTAINS(
      headerError(dir,
                  R"({"t": {"dtype": "F32",
                      "shape": [4294967296, 4294967296, 16],
                      "data_offsets": [0, 4]}})",
                  4),
      ": tensor 't': shape [4294967296, 4294967296]... has more elements "
      "than fit in 64 bits");
  EXPECT_CONTAINS(
      headerError(dir,
                  R"({"t": {"dtype": "F64", "shape": [4611686018427387904],
                      "data_offsets": [0, 4]}})",
                  4),
      ": tensor 't': shape [4611686018427387904] of F64 needs more bytes "
      "than fit in 63 bits");
}

TEST(CheckpointHostile, OffsetsOutOfRange) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [100],
                                  "data_offsets": [0, 400]}})",
                              4),
                  ": tensor 't': data_offsets [0, 400] end exceeds the data "
                  "section size (4 bytes)");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [1],
                                  "data_offsets": [8, 4]}})",
                              8),
                  ": tensor 't': data_offsets [8, 4] has begin > end");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [1],
                                  "data_offsets": [0, 4, 8]}})",
                              8),
                  ": tensor 't': \"data_offsets\" is not an array of 2 "
                  "integers");
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [1],
                                  "data_offsets": [-4, 0]}})",
                              8),
                  ": tensor 't': data_offsets[0] is negative (-4)");
}

TEST(CheckpointHostile, OverlappingOffsets) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir,
                              R"({"a": {"dtype": "F32", "shape": [2],
                                  "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2],
                                  "data_offsets": [4, 12]}})",
                              12),
                  ": tensors 'a' [0, 8) and 'b' [4, 12) overlap");
  // Empty tensors overlap nothing, wherever they sit.
  std::vector<uint8_t> ok = rawSafeTensors(
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})",
      8);
  EXPECT_TRUE(parseSafeTensorsHeader(ok.data(), ok.size(), "ok").isOk());
}

TEST(CheckpointHostile, SizeShapeMismatch) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir,
                              R"({"t": {"dtype": "F32", "shape": [3],
                                  "data_offsets": [0, 8]}})",
                              8),
                  ": tensor 't': data_offsets [0, 8] span 8 bytes but shape "
                  "[3] of F32 needs 12 bytes");
}

TEST(CheckpointHostile, BadMetadata) {
  TempDir dir;
  EXPECT_CONTAINS(headerError(dir, R"({"__metadata__": {"k": 1}})", 0),
                  ": \"__metadata__\" key 'k' is not a string (got number)");
  EXPECT_CONTAINS(headerError(dir, R"({"__metadata__": [1]})", 0),
                  ": \"__metadata__\" is not an object (got array)");
}

TEST(CheckpointHostile, DeeplyNestedJsonDoesNotOverflowTheStack) {
  TempDir dir;
  std::string deep = "{\"t\": " + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  EXPECT_CONTAINS(headerError(dir, deep, 0),
                  ": tensor 't': entry is not an object (got array)");
}

//===----------------------------------------------------------------------===//
// Sharded index
//===----------------------------------------------------------------------===//

class CheckpointHostileIndex : public ::testing::Test {
protected:
  void SetUp() override {
    config = tinyConfig();
    TinyCheckpointOptions opts;
    opts.shards = 2;
    ASSERT_EQ(writeTinyCheckpoint(dir.path(), config, randomWeights(config),
                                  opts),
              "");
  }
  std::string openIndex(const std::string &text, bool eager = true) {
    writeText(indexPath(), text);
    CheckpointOptions o;
    o.eager = eager;
    StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path(), o);
    EXPECT_FALSE(ckpt.isOk());
    return ckpt ? "" : ckpt.status().message();
  }
  std::string indexPath() const {
    return dir.file("model.safetensors.index.json");
  }
  const std::string shard1 = "model-00001-of-00002.safetensors";
  TempDir dir;
  ModelConfig config;
};

TEST_F(CheckpointHostileIndex, IndexNamesMissingShard) {
  EXPECT_EQ(openIndex(R"({"weight_map": {"model.norm.weight":
                          "model-00009-of-00009.safetensors"}})"),
            indexPath() + ": shard '" +
                dir.file("model-00009-of-00009.safetensors") +
                "' (named for tensor 'model.norm.weight') does not exist");
}

TEST_F(CheckpointHostileIndex, IndexNamesTensorAbsentFromShard) {
  const std::string text =
      R"({"weight_map": {"ghost": ")" + shard1 + R"("}})";
  EXPECT_EQ(openIndex(text),
            dir.file(shard1) + ": tensor 'ghost' is listed in "
                               "model.safetensors.index.json but absent from "
                               "this shard");
  // Lazily opened, the same error comes from get().
  writeText(indexPath(), text);
  CheckpointOptions lazy;
  lazy.eager = false;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path(), lazy);
  ASSERT_TRUE(ckpt.isOk());
  StatusOr<TensorView> t = ckpt->get("ghost");
  ASSERT_FALSE(t.isOk());
  EXPECT_EQ(t.status().message(),
            dir.file(shard1) + ": tensor 'ghost' is listed in "
                               "model.safetensors.index.json but absent from "
                               "this shard");
}

TEST_F(CheckpointHostileIndex, MalformedIndex) {
  EXPECT_EQ(openIndex("{\"weight_map\": "), indexPath() + ": not valid JSON");
  EXPECT_EQ(openIndex("[]"), indexPath() + ": not a JSON object (got array)");
  EXPECT_EQ(openIndex("{}"), indexPath() + ": missing \"weight_map\"");
  EXPECT_EQ(openIndex(R"({"weight_map": []})"),
            indexPath() + ": \"weight_map\" is not an object (got array)");
  EXPECT_EQ(openIndex(R"({"weight_map": {}})"),
            indexPath() + ": \"weight_map\" is empty");
  EXPECT_EQ(openIndex(R"({"weight_map": {"a": 1}})"),
            indexPath() + ": weight_map['a'] is not a string (got number)");
  EXPECT_EQ(openIndex(R"({"weight_map": {"a": "../x.safetensors"}})"),
            indexPath() + ": weight_map['a'] names shard '../x.safetensors', "
                          "which is outside the checkpoint directory");
  EXPECT_EQ(openIndex(R"({"weight_map": {"a": "/etc/passwd"}})"),
            indexPath() + ": weight_map['a'] names shard '/etc/passwd', "
                          "which is outside the checkpoint directory");
}

TEST_F(CheckpointHostileIndex, CorruptShardBehindIndex) {
  writeBytes(dir.file(shard1), {1, 2, 3});
  CheckpointOptions o;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path(), o);
  ASSERT_FALSE(ckpt.isOk());
  EXPECT_EQ(ckpt.status().message(),
            dir.file(shard1) +
                ": file is 3 bytes, shorter than the 8-byte header length");
}

//===----------------------------------------------------------------------===//
// Checkpoint vs config
//===----------------------------------------------------------------------===//

std::string validationError(const TempDir &dir, const ModelConfig &c,
                            const TinyCheckpointOptions &opts) {
  std::string w = writeTinyCheckpoint(dir.path(), c, randomWeights(c), opts);
  EXPECT_EQ(w, "");
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path());
  EXPECT_TRUE(ckpt.isOk()) << ckpt.status().message();
  if (!ckpt)
    return "";
  Status st = validateCheckpoint(*ckpt, c);
  EXPECT_FALSE(st.isOk());
  return st.message();
}

TEST(CheckpointHostileConfig, MissingTensor) {
  TempDir dir;
  TinyCheckpointOptions opts;
  opts.omit = {"model.layers.1.self_attn.q_proj.weight"};
  EXPECT_EQ(validationError(dir, tinyConfig(), opts),
            dir.file("model.safetensors") +
                ": missing tensor 'model.layers.1.self_attn.q_proj.weight'");
}

TEST(CheckpointHostileConfig, MissingRouterNamesBothLayouts) {
  TempDir dir;
  TinyCheckpointOptions opts;
  opts.omit = {"model.layers.0.block_sparse_moe.gate.weight"};
  EXPECT_EQ(validationError(dir, tinyConfig(), opts),
            dir.file("model.safetensors") +
                ": missing tensor 'model.layers.0.block_sparse_moe.gate."
                "weight' (also looked for 'model.layers.0.mlp.gate.weight')");
}

TEST(CheckpointHostileConfig, WrongShape) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  TinyCheckpointOptions opts;
  opts.omit = {"model.layers.0.self_attn.q_proj.weight"};
  opts.extra["model.layers.0.self_attn.q_proj.weight"] =
      std::vector<float>(60, 0.5f);
  EXPECT_EQ(validationError(dir, c, opts),
            dir.file("model.safetensors") +
                ": model.layers.0.self_attn.q_proj.weight: expected shape "
                "[6, 10], got [60]");
}

TEST(CheckpointHostileConfig, WrongPackedShape) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  TinyCheckpointOptions opts;
  opts.layout = ExpertLayoutForTest::Packed;
  opts.omit = {"model.layers.1.mlp.experts.down_proj"};
  opts.extra["model.layers.1.mlp.experts.down_proj"] =
      std::vector<float>(240, 0.5f);
  EXPECT_EQ(validationError(dir, c, opts),
            dir.file("model.safetensors") +
                ": model.layers.1.mlp.experts.down_proj: expected shape "
                "[3, 10, 8], got [240]");
}

TEST(CheckpointHostileConfig, MissingScaleInv) {
  TempDir dir;
  TinyCheckpointOptions opts;
  opts.matrixDtype = DType::F8_E4M3;
  opts.omit = {"model.layers.0.self_attn.k_proj.weight_scale_inv"};
  EXPECT_EQ(validationError(dir, tinyConfig(), opts),
            dir.file("model.safetensors") +
                ": model.layers.0.self_attn.k_proj.weight: F8_E4M3 weight has "
                "no scale tensor "
                "'model.layers.0.self_attn.k_proj.weight_scale_inv'");
}

TEST(CheckpointHostileConfig, WrongScaleShape) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  TinyCheckpointOptions opts;
  opts.matrixDtype = DType::F8_E4M3;
  opts.omit = {"model.layers.0.self_attn.o_proj.weight_scale_inv"};
  opts.extra["model.layers.0.self_attn.o_proj.weight_scale_inv"] = {1, 1};
  // o_proj is [10, 6]: with 4x4 blocks the grid is [3, 2].
  EXPECT_EQ(validationError(dir, c, opts),
            dir.file("model.safetensors") +
                ": model.layers.0.self_attn.o_proj.weight_scale_inv: expected "
                "shape [3, 2] for weight [10, 6] with 4x4 blocks, got [2]");
}

//===----------------------------------------------------------------------===//
// Random mutations of a valid file: errors are fine, crashes are not.
//===----------------------------------------------------------------------===//

TEST(CheckpointHostile, RandomMutationsNeverCrash) {
  SafeTensorsWriter w;
  float v[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(w.addTensorFromF32("a", DType::F32, {2, 3}, v).isOk());
  ASSERT_TRUE(w.addTensorFromF32("b", DType::BF16, {6}, v).isOk());
  ASSERT_TRUE(w.addTensorFromF32("c", DType::F8_E4M3, {3, 2}, v).isOk());
  w.setMetadata("format", "pt");
  const std::vector<uint8_t> valid = w.serialize();
  std::mt19937 rng(7);
  size_t accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> m = valid;
    int edits = 1 + rng() % 4;
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
      case 0:
        m[rng() % m.size()] = static_cast<uint8_t>(rng());
        break;
      case 1:
        m.resize(rng() % (m.size() + 1));
        break;
      case 2:
        if (m.size() >= 8)
          m[rng() % 8] = static_cast<uint8_t>(rng());
        break;
      default:
        m.insert(m.begin() + rng() % (m.size() + 1),
                 static_cast<uint8_t>("0123456789-[]{},:\" e"[rng() % 20]));
      }
      if (m.empty())
        break;
    }
    StatusOr<SafeTensorsHeader> h =
        parseSafeTensorsHeader(m.data(), m.size(), "mut");
    if (!h) {
      ASSERT_EQ(h.status().message().rfind("mut: ", 0), 0u);
      continue;
    }
    ++accepted;
    for (const SafeTensorsEntry &e : h->entries)
      ASSERT_LE(h->dataOffset + e.end, m.size());
  }
  EXPECT_GT(accepted, 0u);
}

} // namespace
