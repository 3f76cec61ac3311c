//===- BindingTest.cpp - MiniMax-M2 weights from both expert layouts ------===//

#include "CheckpointTestUtil.h"

#include "runtime/checkpoint/CheckpointBinding.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace m2c;
using namespace m2c::test;

namespace {

struct Opened {
  std::unique_ptr<Checkpoint> ckpt;
  std::unique_ptr<CheckpointBinding> binding;
};

Opened openBound(const std::string &dir, const ModelConfig &c) {
  Opened o;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.isOk()) << ckpt.status().message();
  if (!ckpt)
    return o;
  o.ckpt = std::make_unique<Checkpoint>(ckpt.take());
  StatusOr<CheckpointBinding> b = CheckpointBinding::create(*o.ckpt, c);
  EXPECT_TRUE(b.isOk()) << b.status().message();
  if (b)
    o.binding = std::make_unique<CheckpointBinding>(b.take());
  return o;
}

struct LayoutCase {
  DType dtype;
  int shards;
};

// Readable names in `--gtest_list_tests` and ctest output.
void PrintTo(const LayoutCase &c, std::ostream *os) {
  *os << dtypeName(c.dtype) << " x" << c.shards << " shards";
}

class CheckpointBindingLayouts : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(CheckpointBindingLayouts, BothExpertLayoutsGiveIdenticalF32) {
  const LayoutCase param = GetParam();
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TempDir original, packed;
  TinyCheckpointOptions opts;
  opts.matrixDtype = param.dtype;
  opts.shards = param.shards;
  ASSERT_EQ(writeTinyCheckpoint(original.path(), c, weights, opts), "");
  opts.layout = ExpertLayoutForTest::Packed;
  ASSERT_EQ(writeTinyCheckpoint(packed.path(), c, weights, opts), "");

  Opened a = openBound(original.path(), c);
  Opened b = openBound(packed.path(), c);
  ASSERT_TRUE(a.binding && b.binding);
  EXPECT_EQ(a.binding->expertLayout(1), ExpertLayout::PerExpert);
  EXPECT_EQ(b.binding->expertLayout(1), ExpertLayout::Packed);

  for (const Opened *o : {&a, &b}) {
    ValidationReport report = o->binding->validate();
    EXPECT_TRUE(report.status().isOk()) << report.status().message();
    EXPECT_TRUE(report.unexpected.empty());
  }

  size_t checked = 0;
  for (const WeightRef &ref : a.binding->allWeights()) {
    const std::string name = canonicalWeightName(ref);
    std::vector<float> fromA, fromB;
    ASSERT_TRUE(a.binding->readWeightF32(ref, fromA).isOk()) << name;
    Status sb = b.binding->readWeightF32(ref, fromB);
    ASSERT_TRUE(sb.isOk()) << sb.message();
    ASSERT_EQ(fromA, fromB) << name;
    const std::vector<float> &want = weights.at(name);
    ASSERT_EQ(fromA.size(), want.size()) << name;
    if (param.dtype == DType::F32 || !isQuantizable(name)) {
      ASSERT_EQ(fromA, want) << name;
    } else if (param.dtype == DType::BF16) {
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(fromA[i], bf16ToF32(f32ToBf16(want[i]))) << name;
    } else {
      // e4m3 keeps 3 mantissa bits: within 1/16 relative, or a subnormal
      // step of the block scale (|w| <= 448 * scale, scale <= max|w|/448).
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(fromA[i], want[i], std::fabs(want[i]) / 16 + 0.02) << name;
    }
    ++checked;
  }
  // 1 embed + 2 layers x (10 + 3 experts x 3) + norm + lm_head.
  EXPECT_EQ(checked, 1u + 2 * (10 + 9) + 2);
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypes, CheckpointBindingLayouts,
    ::testing::Values(LayoutCase{DType::F32, 0}, LayoutCase{DType::BF16, 0},
                      LayoutCase{DType::F8_E4M3, 0},
                      LayoutCase{DType::F8_E4M3, 4}),
    [](const ::testing::TestParamInfo<LayoutCase> &info) {
      return std::string(dtypeName(info.param.dtype)) +
             (info.param.shards ? "Sharded" : "Single");
    });

TEST(CheckpointBinding, PackedSlicesMatchGateUpAndDown) {
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TempDir dir;
  TinyCheckpointOptions opts;
  opts.layout = ExpertLayoutForTest::Packed;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, opts), "");
  Opened o = openBound(dir.path(), c);
  ASSERT_TRUE(o.binding);
  StatusOr<ResolvedWeight> w3 =
      o.binding->resolve(WeightRef::ofExpert(WeightKind::ExpertW3, 1, 2));
  ASSERT_TRUE(w3.isOk()) << w3.status().message();
  EXPECT_EQ(w3->tensor.name, "model.layers.1.mlp.experts.gate_up_proj");
  EXPECT_EQ(w3->matrixIndex, 2);
  EXPECT_EQ(w3->rowOffset, c.intermediateSize);
  EXPECT_EQ(w3->shape, (std::vector<int64_t>{8, 10}));
  std::vector<float> v;
  ASSERT_TRUE(o.binding
                  ->readWeightF32(
                      "model.layers.1.block_sparse_moe.experts.2.w3.weight", v)
                  .isOk());
  EXPECT_EQ(v, weights["model.layers.1.block_sparse_moe.experts.2.w3.weight"]);
  ASSERT_TRUE(
      o.binding->readWeightF32("model.layers.0.block_sparse_moe.gate.weight", v)
          .isOk());
  EXPECT_EQ(v, weights["model.layers.0.block_sparse_moe.gate.weight"]);
}

TEST(CheckpointBinding, TiedLmHeadReadsTheEmbedding) {
  ModelConfig c = tinyConfig();
  c.tieWordEmbeddings = true;
  auto weights = randomWeights(c);
  TempDir dir;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, {}), "");
  Opened o = openBound(dir.path(), c);
  ASSERT_TRUE(o.binding);
  std::vector<float> head;
  ASSERT_TRUE(o.binding->readWeightF32(WeightRef::global(WeightKind::LmHead),
                                       head)
                  .isOk());
  EXPECT_EQ(head, weights["model.embed_tokens.weight"]);
  EXPECT_TRUE(o.binding->validate().status().isOk());
}

TEST(CheckpointBinding, ReportsUnexpectedTensorsAndIgnoresMtp) {
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TempDir dir;
  TinyCheckpointOptions opts;
  opts.extra["model.mtp.0.norm.weight"] = {1, 2};
  opts.extra["model.layers.0.self_attn.rotary_emb.inv_freq"] = {1, 2};
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, opts), "");
  Opened o = openBound(dir.path(), c);
  ASSERT_TRUE(o.binding);
  ValidationReport r = o.binding->validate();
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.unexpected.size(), 1u);
  EXPECT_EQ(r.unexpected[0], "model.layers.0.self_attn.rotary_emb.inv_freq");
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("ignored 1 MTP tensor(s) (e.g. "
                            "'model.mtp.0.norm.weight')"),
            std::string::npos)
      << r.notes[0];
  Status st = r.status();
  EXPECT_EQ(st.message(), "unexpected tensor "
                          "'model.layers.0.self_attn.rotary_emb.inv_freq' "
                          "(not used by a model with this config)");
  EXPECT_TRUE(r.status(/*allowUnexpected=*/true).isOk());
}

TEST(CheckpointBinding, ConfigWithMoreExpertsThanCheckpoint) {
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TempDir dir;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, {}), "");
  ModelConfig bigger = c;
  bigger.numLocalExperts = 4;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.isOk());
  ValidationReport r;
  Status st = validateCheckpoint(*ckpt, bigger, &r);
  ASSERT_FALSE(st.isOk());
  // Router shapes change and expert 3 is missing in both layers.
  EXPECT_NE(st.message().find(dir.file("model.safetensors") +
                              ": model.layers.0.block_sparse_moe.gate.weight: "
                              "expected shape [4, 10], got [3, 10]"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find(
                ": missing tensor "
                "'model.layers.0.block_sparse_moe.experts.3.w1.weight'"),
            std::string::npos);
  EXPECT_EQ(r.errors.size(), 2u * (2 + 3));
}

TEST(CheckpointBinding, CanonicalNamesRoundTrip) {
  ModelConfig c = tinyConfig();
  TempDir dir;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, randomWeights(c), {}), "");
  Opened o = openBound(dir.path(), c);
  ASSERT_TRUE(o.binding);
  for (const WeightRef &ref : o.binding->allWeights()) {
    StatusOr<WeightRef> back = parseCanonicalWeightName(canonicalWeightName(ref));
    ASSERT_TRUE(back.isOk()) << canonicalWeightName(ref);
    EXPECT_TRUE(*back == ref) << canonicalWeightName(ref);
  }
  for (const char *bad :
       {"model.layers.x.input_layernorm.weight", "model.layers.01.mlp",
        "model.layers.0.block_sparse_moe.experts.1.w4.weight",
        "model.layers.99999999999.input_layernorm.weight", "", "lm_head"}) {
    StatusOr<WeightRef> r = parseCanonicalWeightName(bad);
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_EQ(r.status().message(),
              "'" + std::string(bad) + "' is not a MiniMax-M2 weight name");
  }
}

TEST(CheckpointBinding, RejectsOutOfRangeRefsAndBadConfigs) {
  ModelConfig c = tinyConfig();
  TempDir dir;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, randomWeights(c), {}), "");
  Opened o = openBound(dir.path(), c);
  ASSERT_TRUE(o.binding);
  std::vector<float> v;
  Status st =
      o.binding->readWeightF32(WeightRef::ofExpert(WeightKind::ExpertW1, 0, 3), v);
  EXPECT_EQ(st.message(),
            dir.file("model.safetensors") +
                ": weight model.layers.0.block_sparse_moe.experts.3.w1.weight: "
                "expert 3 is outside [0, 3)");
  st = o.binding->readWeightF32(WeightRef::inLayer(WeightKind::QProj, 2), v);
  EXPECT_EQ(st.message(), dir.file("model.safetensors") +
                              ": weight model.layers.2.self_attn.q_proj.weight: "
                              "layer 2 is outside [0, 2)");

  ModelConfig broken = c;
  broken.hiddenSize = 0;
  StatusOr<CheckpointBinding> b = CheckpointBinding::create(*o.ckpt, broken);
  ASSERT_FALSE(b.isOk());
  EXPECT_EQ(b.status().message(),
            dir.file("model.safetensors") +
                ": config hidden_size (0) is outside the supported range [1, "
                "1048576]");
}

} // namespace
