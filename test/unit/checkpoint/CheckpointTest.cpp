//===- CheckpointTest.cpp - Single-file and sharded checkpoint directories ===//

#include "CheckpointTestUtil.h"

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/Dequantize.h"

#include <gtest/gtest.h>

using namespace m2c;
using namespace m2c::test;

namespace {

std::vector<float> readAll(const Checkpoint &ckpt, const std::string &name) {
  StatusOr<TensorView> t = ckpt.get(name);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  if (!t)
    return {};
  std::vector<float> out(t->numElements());
  EXPECT_TRUE(dequantizeF32(*t, nullptr, {}, out.data()).isOk());
  return out;
}

TEST(CheckpointDirectory, SingleFile) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, {}), "");
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.isOk()) << ckpt.status().message();
  EXPECT_FALSE(ckpt->isSharded());
  EXPECT_EQ(ckpt->origin(), dir.file("model.safetensors"));
  EXPECT_EQ(ckpt->names().size(), originalTensors(c).size());
  EXPECT_EQ(readAll(*ckpt, "model.norm.weight"), weights["model.norm.weight"]);
  // The file itself opens too.
  StatusOr<Checkpoint> direct = Checkpoint::open(dir.file("model.safetensors"));
  ASSERT_TRUE(direct.isOk());
  EXPECT_TRUE(direct->has("lm_head.weight"));
}

TEST(CheckpointDirectory, ShardedIndexEagerAndLazy) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TinyCheckpointOptions opts;
  opts.shards = 3;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, opts), "");
  for (bool eager : {true, false}) {
    CheckpointOptions o;
    o.eager = eager;
    StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path(), o);
    ASSERT_TRUE(ckpt.isOk()) << ckpt.status().message();
    EXPECT_TRUE(ckpt->isSharded());
    EXPECT_EQ(ckpt->origin(), dir.file("model.safetensors.index.json"));
    EXPECT_EQ(ckpt->names().size(), originalTensors(c).size());
    for (const auto &kv : weights)
      ASSERT_EQ(readAll(*ckpt, kv.first), kv.second) << kv.first;
    EXPECT_EQ(ckpt->fileOf("model.embed_tokens.weight").find(dir.path() +
                                                             "/model-000"),
              0u);
    EXPECT_TRUE(ckpt->openAllShards().isOk());
  }
}

TEST(CheckpointDirectory, MovedCheckpointStillReads) {
  TempDir dir;
  ModelConfig c = tinyConfig();
  auto weights = randomWeights(c);
  TinyCheckpointOptions opts;
  opts.shards = 2;
  ASSERT_EQ(writeTinyCheckpoint(dir.path(), c, weights, opts), "");
  CheckpointOptions lazy;
  lazy.eager = false;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path(), lazy);
  ASSERT_TRUE(ckpt.isOk());
  Checkpoint moved = ckpt.take();
  EXPECT_EQ(readAll(moved, "model.norm.weight"), weights["model.norm.weight"]);
}

TEST(CheckpointDirectory, EmptyDirectoryIsAnError) {
  TempDir dir;
  StatusOr<Checkpoint> ckpt = Checkpoint::open(dir.path());
  ASSERT_FALSE(ckpt.isOk());
  EXPECT_EQ(ckpt.status().message(),
            dir.path() + ": holds neither model.safetensors nor "
                         "model.safetensors.index.json");
}

} // namespace
