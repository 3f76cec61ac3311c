//===- ArtifactTest.cpp - .m2a round trip and every corruption we detect --===//

#include "runtime/artifact/Artifact.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

using namespace m2c;
using namespace m2c::plan;

namespace {

Plan tinyPlan() {
  Plan plan;
  plan.maxTokens = 4;
  plan.vocabSize = 8;
  plan.hiddenSize = 2;
  plan.kvCache = {1, 1, 2, 4, ElementType::F32};
  plan.weightsMode = "embed";
  plan.weights = {{"embed", "model.embed_tokens.weight", {8, 2}, ElementType::BF16, Quantization::None, {ElementType::BF16, 0, 0}, {}},
                  {"lm_head", "lm_head.weight", {8, 2}, ElementType::F32, Quantization::None, {ElementType::F32, 0, 0}, {}}};
  Entry entry;
  entry.name = "decode";
  entry.buffers = {{"%0", ElementType::F32, 2, 0, 0}, {"%1", ElementType::F32, 8, 0, 0}};
  entry.kernels = {
      {KernelKind::Embedding, "embed", {Operand::input(EntryInput::TokenIds), Operand::weight(0)}, {0}, {}, {}},
      {KernelKind::Linear, "lm_head", {Operand::buffer(0), Operand::weight(1)}, {1}, {}, {}}};
  entry.output = 1;
  planMemory(entry, plan.maxTokens);
  plan.entries.push_back(entry);
  layoutEmbeddedWeights(plan);
  return plan;
}

std::string writeTiny(const std::string &name, const Plan &plan = tinyPlan()) {
  std::string path = ::testing::TempDir() + "/" + name + ".m2a";
  Status status = writeArtifact(path, plan, [&](size_t i, const WeightSink &sink) {
    std::vector<uint8_t> bytes(plan.weights[i].storage.bytes);
    for (size_t j = 0; j < bytes.size(); ++j)
      bytes[j] = static_cast<uint8_t>(j * 7 + i);
    return sink(bytes.data(), bytes.size());
  });
  EXPECT_TRUE(status) << status.message();
  return path;
}

std::vector<uint8_t> readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string loadError(const std::vector<uint8_t> &bytes, const std::string &target = "") {
  StatusOr<Artifact> artifact = Artifact::parse(bytes.data(), bytes.size(), "a.m2a", target);
  return artifact ? "" : artifact.status().message();
}

/// Rewrites the checksum so that a corruption behind it is what gets caught.
void reseal(std::vector<uint8_t> &bytes) {
  Checksum checksum;
  checksum.update(bytes.data() + kArtifactHeaderBytes, bytes.size() - kArtifactHeaderBytes);
  uint64_t value = checksum.value();
  std::memcpy(bytes.data() + 56, &value, 8);
}

TEST(ArtifactTest, RoundTrip) {
  std::string path = writeTiny("roundtrip");
  StatusOr<Artifact> artifact = Artifact::load(path, "cpu");
  ASSERT_TRUE(artifact) << artifact.status().message();
  EXPECT_EQ(planToJson(artifact->plan()), planToJson(tinyPlan()));
  const Weight &lmHead = artifact->plan().weights[1];
  EXPECT_EQ(lmHead.storage.offset, 64u); // bf16 embed: 32 bytes, aligned to 64
  EXPECT_EQ(artifact->weightData()[lmHead.storage.offset + 3], static_cast<uint8_t>(3 * 7 + 1));
}

TEST(ArtifactTest, Truncated) {
  std::vector<uint8_t> bytes = readAll(writeTiny("truncated"));
  bytes.resize(bytes.size() - 10);
  EXPECT_NE(loadError(bytes).find("a.m2a: weight section ["), std::string::npos) << loadError(bytes);
  bytes.resize(20);
  EXPECT_EQ(loadError(bytes), "a.m2a: not an m2c artifact (only 20 bytes)");
}

TEST(ArtifactTest, BadMagic) {
  std::vector<uint8_t> bytes = readAll(writeTiny("magic"));
  bytes[0] = 'X';
  EXPECT_EQ(loadError(bytes), "a.m2a: not an m2c artifact (bad magic)");
}

TEST(ArtifactTest, OtherFormatVersion) {
  std::vector<uint8_t> bytes = readAll(writeTiny("version"));
  bytes[8] = 2;
  EXPECT_EQ(loadError(bytes), "a.m2a: artifact format version 2 is not supported by this "
                              "runtime (expected 1); recompile it");
}

TEST(ArtifactTest, ChecksumMismatch) {
  std::vector<uint8_t> bytes = readAll(writeTiny("checksum"));
  bytes.back() ^= 0x40;
  EXPECT_EQ(loadError(bytes), "a.m2a: checksum mismatch: the artifact is corrupt");
}

TEST(ArtifactTest, WrongTarget) {
  std::vector<uint8_t> bytes = readAll(writeTiny("target"));
  EXPECT_EQ(loadError(bytes, "sm_90a"),
            "a.m2a: artifact was compiled for target 'cpu', not 'sm_90a'");
}

TEST(ArtifactTest, ExtraBytesAfterTheWeights) {
  std::vector<uint8_t> bytes = readAll(writeTiny("extra"));
  bytes.push_back(0);
  reseal(bytes);
  EXPECT_NE(loadError(bytes).find("does not match the header"), std::string::npos);
}

TEST(ArtifactTest, PlanSizeBeyondFile) {
  std::vector<uint8_t> bytes = readAll(writeTiny("plansize"));
  uint64_t huge = 1ull << 40;
  std::memcpy(bytes.data() + 32, &huge, 8);
  EXPECT_NE(loadError(bytes).find("a.m2a: plan size 1099511627776 exceeds the file size"),
            std::string::npos);
}

TEST(ArtifactTest, MalformedPlanBehindAValidChecksum) {
  std::vector<uint8_t> bytes = readAll(writeTiny("json"));
  bytes[kArtifactHeaderBytes] = '[';
  reseal(bytes);
  EXPECT_EQ(loadError(bytes), "a.m2a: plan: not valid JSON");
}

TEST(ArtifactTest, PlanThatIndexesOutOfRange) {
  Plan plan = tinyPlan();
  plan.entries[0].kernels[1].inputs[1] = Operand::weight(5);
  std::vector<uint8_t> bytes = readAll(writeTiny("index", plan));
  EXPECT_EQ(loadError(bytes),
            "a.m2a: plan: entry 'decode': kernel 1 (lm_head) has an operand out of range");
}

TEST(ArtifactTest, WeightStorageOutsideTheSection) {
  Plan plan = tinyPlan();
  std::vector<uint8_t> bytes = readAll(writeTiny("storage", plan));
  // Move lm_head's bytes past the end of the section, in the JSON text.
  std::string text(bytes.begin() + kArtifactHeaderBytes, bytes.end());
  size_t at = text.find("\"offset\": 64");
  ASSERT_NE(at, std::string::npos);
  bytes[kArtifactHeaderBytes + at + 11] = '9'; // 64 -> 94
  reseal(bytes);
  EXPECT_EQ(loadError(bytes), "a.m2a: weight 'lm_head' storage lies outside the weight section");
}

Plan gpuPlan() {
  Plan plan = tinyPlan();
  plan.target = "sm_90a";
  plan.gpu.target = "sm_90a";
  GpuKernel kernel;
  kernel.name = "m2c_test";
  kernel.ptx = ".version 8.0\n.target sm_90a\n";
  GpuLaunch launch;
  launch.entry = "m2c_test";
  launch.grid[0] = {1, 1, 1, 0}; // one block per token
  launch.block = {128, 1, 1};
  launch.params = {{GpuParam::Kind::Input, 1}, {GpuParam::Kind::Output, 0},
                   {GpuParam::Kind::NumTokens, 0}};
  kernel.launches.push_back(launch);
  plan.gpu.kernels.push_back(kernel);
  plan.gpu.kernelOf = {{0, 0}};
  plan.gpu.randomFills.push_back(
      {ElementType::BF16, ElementType::F32, "m2c_random_fill_bf16_f32", ".version 8.0\n", 256});
  plan.gpu.packKernels.push_back(
      {Quantization::Int4G128, "m2c_pack_int4_g128", ".version 8.0\n", 32});
  return plan;
}

TEST(ArtifactTest, GpuProgramRoundTrip) {
  std::string path = writeTiny("gpu", gpuPlan());
  StatusOr<Artifact> artifact = Artifact::load(path, "sm_90a");
  ASSERT_TRUE(artifact) << artifact.status().message();
  const GpuProgram &gpu = artifact->plan().gpu;
  ASSERT_EQ(gpu.kernels.size(), 1u);
  EXPECT_EQ(gpu.kernels[0].ptx, ".version 8.0\n.target sm_90a\n");
  EXPECT_EQ(gpu.kernels[0].launches[0].grid[0].evaluate(7), 7);
  EXPECT_EQ(gpu.kernels[0].launches[0].params[2].kind, GpuParam::Kind::NumTokens);
  EXPECT_EQ(gpu.kernelOf, (std::vector<std::vector<int64_t>>{{0, 0}}));
  ASSERT_EQ(gpu.randomFills.size(), 1u);
  EXPECT_EQ(gpu.randomFills[0].logical, ElementType::BF16);
  EXPECT_EQ(gpu.randomFills[0].storage, ElementType::F32);
  EXPECT_EQ(gpu.randomFills[0].name, "m2c_random_fill_bf16_f32");
  EXPECT_EQ(gpu.randomFills[0].block, 256);
  ASSERT_EQ(gpu.packKernels.size(), 1u);
  EXPECT_EQ(gpu.packKernels[0].quantization, Quantization::Int4G128);
  EXPECT_EQ(gpu.packKernels[0].name, "m2c_pack_int4_g128");
  EXPECT_EQ(gpu.packKernels[0].block, 32);
  EXPECT_FALSE(gpu.gridDependencyControl);
}

TEST(ArtifactTest, GridDependencyControlRoundTripsAndIsChecked) {
  Plan plan = gpuPlan();
  plan.gpu.gridDependencyControl = true;
  StatusOr<Artifact> artifact = Artifact::load(writeTiny("gpu-pdl", plan), "sm_90a");
  ASSERT_TRUE(artifact) << artifact.status().message();
  EXPECT_TRUE(artifact->plan().gpu.gridDependencyControl);
  // A program without the field (compiled before it existed) never
  // launches programmatically.
  std::string json = gpuProgramToJson(plan.gpu);
  std::string key = "\"grid_dependency_control\": true";
  size_t at = json.find(key);
  ASSERT_NE(at, std::string::npos) << json.substr(0, 200);
  std::string without = json;
  without.erase(at, key.size() + 1); // and its comma
  StatusOr<GpuProgram> old = gpuProgramFromJson(without, plan);
  ASSERT_TRUE(old) << old.status().message();
  EXPECT_FALSE(old->gridDependencyControl);
  std::string wrong = json;
  wrong.replace(at, key.size(), "\"grid_dependency_control\": 1");
  StatusOr<GpuProgram> bad = gpuProgramFromJson(wrong, plan);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("grid_dependency_control: expected true or false"),
            std::string::npos)
      << bad.status().message();
}

TEST(ArtifactTest, GpuPackKernelNeedsAFormat) {
  Plan plan = gpuPlan();
  plan.gpu.packKernels[0].quantization = Quantization::None;
  std::vector<uint8_t> bytes = readAll(writeTiny("gpu-pack", plan));
  EXPECT_EQ(loadError(bytes), "a.m2a: gpu program: pack_kernels[0].quantization: expected int8, "
                              "int4_g128 or fp8_block128");
}

TEST(ArtifactTest, PackGridCoversEveryRowGroupOrBlock) {
  using A = std::array<int64_t, 3>;
  EXPECT_EQ(packGrid(Quantization::Int8, 300, 200), (A{300, 1, 1}));
  EXPECT_EQ(packGrid(Quantization::Int4G128, 300, 200), (A{300, 2, 1}));
  EXPECT_EQ(packGrid(Quantization::Fp8Block128, 300, 200), (A{3, 2, 1}));
}

TEST(ArtifactTest, GpuRandomFillWithPartialWarps) {
  Plan plan = gpuPlan();
  plan.gpu.randomFills[0].block = 100;
  std::vector<uint8_t> bytes = readAll(writeTiny("gpu-fill", plan));
  EXPECT_EQ(loadError(bytes), "a.m2a: gpu program: random_fills[0].block: expected whole warps, "
                              "at most 1024 threads");
}

TEST(ArtifactTest, GpuProgramThatReadsAMissingOperand) {
  Plan plan = gpuPlan();
  plan.gpu.kernels[0].launches[0].params[0].index = 5; // the kernels have 2 inputs
  std::vector<uint8_t> bytes = readAll(writeTiny("gpu-operand", plan));
  EXPECT_EQ(loadError(bytes), "a.m2a: gpu program: kernel_of: kernel 'm2c_test' reads an operand "
                              "plan kernel 'embed' does not have");
}

TEST(ArtifactTest, GpuProgramWithBadGeometry) {
  Plan plan = gpuPlan();
  plan.gpu.kernels[0].launches[0].block = {2048, 1, 1};
  std::vector<uint8_t> bytes = readAll(writeTiny("gpu-block", plan));
  EXPECT_EQ(loadError(bytes), "a.m2a: gpu program: kernels[0].launches[0].block: block sizes "
                              "must be in [1, 1024]");
}

TEST(ArtifactTest, KernelStateRoundTripsAndOffsetsStayInside) {
  Plan plan = gpuPlan();
  plan.gpu.kernels[0].stateBytes = 64;
  plan.gpu.kernels[0].workspaceBytes = 32;
  plan.gpu.kernels[0].launches[0].params.push_back({GpuParam::Kind::State, 8});
  plan.gpu.kernels[0].launches[0].params.push_back({GpuParam::Kind::Workspace, 16});
  StatusOr<Artifact> artifact = Artifact::load(writeTiny("gpu-state", plan), "sm_90a");
  ASSERT_TRUE(artifact) << artifact.status().message();
  EXPECT_EQ(artifact->plan().gpu.kernels[0].stateBytes, 64);
  EXPECT_EQ(artifact->plan().gpu.kernels[0].launches[0].params[3].kind, GpuParam::Kind::State);
  // A kernel without state writes no key, and reads back as 0.
  EXPECT_EQ(gpuProgramToJson(gpuPlan().gpu).find("state_bytes"), std::string::npos);

  Plan outside = plan;
  outside.gpu.kernels[0].launches[0].params[3].index = 64;
  EXPECT_EQ(loadError(readAll(writeTiny("gpu-state-out", outside))),
            "a.m2a: gpu program: kernels[0].launches[0].params: a state offset lies outside the "
            "kernel's state");
  Plan workspace = plan;
  workspace.gpu.kernels[0].launches[0].params[4].index = 33;
  EXPECT_EQ(loadError(readAll(writeTiny("gpu-workspace-out", workspace))),
            "a.m2a: gpu program: kernels[0].launches[0].params: a workspace offset lies outside "
            "the workspace");
  Plan huge = plan;
  huge.gpu.kernels[0].stateBytes = (int64_t(1) << 30) + 1;
  EXPECT_EQ(loadError(readAll(writeTiny("gpu-state-huge", huge))),
            "a.m2a: gpu program: kernels[0].state_bytes: expected 0 to 1 GiB");
}

TEST(ArtifactTest, CandidateLaunchesAreMarkedAndTheMarkIsChecked) {
  Plan plan = gpuPlan();
  plan.gpu.kernels[0].launches[0].forCandidates = true;
  std::string json = gpuProgramToJson(plan.gpu);
  const std::string mark = "\"for_candidates\": true";
  ASSERT_NE(json.find(mark), std::string::npos) << json;
  StatusOr<Artifact> artifact = Artifact::load(writeTiny("gpu-candidates", plan), "sm_90a");
  ASSERT_TRUE(artifact) << artifact.status().message();
  EXPECT_TRUE(artifact->plan().gpu.kernels[0].launches[0].forCandidates);
  // Unmarked launches write no key and read back unmarked.
  EXPECT_EQ(gpuProgramToJson(gpuPlan().gpu).find("for_candidates"), std::string::npos);
  std::string bad = json;
  bad.replace(bad.find(mark), mark.size(), "\"for_candidates\": 1");
  StatusOr<GpuProgram> parsed = gpuProgramFromJson(bad, plan);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.status().message(),
            "gpu program: kernels[0].launches[0].for_candidates: expected a boolean");
}

// A tensor map names a weight and a box; the loader checks both, since the
// backend hands the map to the copy engine as is.
TEST(ArtifactTest, TensorMapParamsRoundTripAndAreChecked) {
  Plan plan = gpuPlan();
  // The kernel reads input 1 of both plan kernels: make both bf16 weights
  // with 128-byte rows (a hidden size of 64).
  for (Weight &w : plan.weights) {
    w.shape = {8, 64};
    w.type = w.storage.type = ElementType::BF16;
  }
  plan.hiddenSize = 64;
  plan.entries[0].buffers[0].cols = 64;
  planMemory(plan.entries[0], plan.maxTokens);
  layoutEmbeddedWeights(plan);
  GpuParam map{GpuParam::Kind::TensorMap, 1, {8, 64}};
  plan.gpu.kernels[0].launches[0].params.push_back(map);
  std::string json = gpuProgramToJson(plan.gpu);
  ASSERT_NE(json.find("\"kind\": \"tensor_map\""), std::string::npos) << json;
  StatusOr<GpuProgram> read = gpuProgramFromJson(json, plan);
  ASSERT_TRUE(read) << read.status().message();
  const GpuParam &back = read->kernels[0].launches[0].params.back();
  EXPECT_EQ(back.kind, GpuParam::Kind::TensorMap);
  EXPECT_EQ(back.index, 1);
  EXPECT_EQ(back.box, (std::array<int64_t, 2>{8, 64}));
  // And through a whole artifact (test/fuzz/corpus/artifact keeps one).
  StatusOr<Artifact> artifact = Artifact::load(writeTiny("gpu-tensor-map", plan), "sm_90a");
  ASSERT_TRUE(artifact) << artifact.status().message();
  EXPECT_EQ(artifact->plan().gpu.kernels[0].launches[0].params.back().box,
            (std::array<int64_t, 2>{8, 64}));

  auto error = [&](const Plan &p) {
    StatusOr<GpuProgram> bad = gpuProgramFromJson(gpuProgramToJson(p.gpu), p);
    return bad ? std::string() : bad.status().message();
  };
  const std::string needs = "gpu program: kernel_of: kernel 'm2c_test' maps input 1 of plan "
                            "kernel 'embed' as a tensor, which needs an unpacked weight with "
                            "128-byte box rows";
  Plan narrowBox = plan; // 32 bf16 = 64 bytes: not one swizzle row
  narrowBox.gpu.kernels[0].launches[0].params.back().box = {8, 32};
  EXPECT_EQ(error(narrowBox), needs);
  Plan packed = plan;
  packed.weights[0].quantization = Quantization::Int8;
  EXPECT_EQ(error(packed), needs);
  Plan buffer = plan; // input 0 of 'lm_head' is an activation buffer
  buffer.gpu.kernels[0].launches[0].params.back().index = 0;
  EXPECT_EQ(error(buffer), "gpu program: kernel_of: kernel 'm2c_test' maps input 0 of plan "
                           "kernel 'embed' as a tensor, which needs an unpacked weight with "
                           "128-byte box rows");
  Plan missing = plan;
  missing.gpu.kernels[0].launches[0].params.back().index = 2;
  EXPECT_EQ(error(missing), "gpu program: kernel_of: kernel 'm2c_test' reads an operand plan "
                            "kernel 'embed' does not have");
  std::string noBox = json;
  size_t at = noBox.find("\"box\"");
  ASSERT_NE(at, std::string::npos);
  noBox.replace(at, 5, "\"bax\"");
  StatusOr<GpuProgram> unboxed = gpuProgramFromJson(noBox, plan);
  ASSERT_FALSE(unboxed);
  EXPECT_EQ(unboxed.status().message(), "gpu program: kernels[0].launches[0].params: a "
                                        "tensor_map needs a box of two sides in [1, 256]");
  Plan bigBox = plan;
  bigBox.gpu.kernels[0].launches[0].params.back().box = {512, 64};
  EXPECT_EQ(error(bigBox), "gpu program: kernels[0].launches[0].params: a tensor_map needs a box "
                           "of two sides in [1, 256]");
}

TEST(ArtifactTest, MissingFile) {
  StatusOr<Artifact> artifact = Artifact::load("/nonexistent/x.m2a");
  ASSERT_FALSE(artifact);
  EXPECT_EQ(artifact.status().message(), "/nonexistent/x.m2a: cannot open: No such file or directory");
}

TEST(ArtifactTest, FailedWriteLeavesNoFile) {
  Plan plan = tinyPlan();
  std::string path = ::testing::TempDir() + "/failed.m2a";
  Status status = writeArtifact(path, plan, [](size_t, const WeightSink &) {
    return Status::error("source vanished");
  });
  EXPECT_EQ(status.message(), "source vanished");
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".partial").good());
}

} // namespace
