//===- PlanTest.cpp - Plan verification, JSON round trip, memory planner --===//

#include "runtime/plan/KernelCost.h"
#include "runtime/plan/Plan.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace m2c::plan;

namespace {

/// embedding -> rms_norm -> linear(lm_head): the smallest valid plan.
Plan smallPlan() {
  Plan plan;
  plan.maxTokens = 8;
  plan.vocabSize = 16;
  plan.hiddenSize = 4;
  plan.kvCache = {1, 1, 4, 4, ElementType::F32};
  plan.weights = {{"embed", "model.embed_tokens.weight", {16, 4}, ElementType::BF16, {}, {}, {}},
                  {"norm", "model.norm.weight", {4}, ElementType::BF16, {}, {}, {}},
                  {"lm_head", "lm_head.weight", {16, 4}, ElementType::BF16, {}, {}, {}}};
  Entry entry;
  entry.name = "decode";
  entry.buffers = {{"%0", ElementType::F32, 4, 0, 0},
                   {"%1", ElementType::F32, 4, 0, 0},
                   {"%2", ElementType::F32, 16, 0, 0}};
  entry.kernels = {
      {KernelKind::Embedding, "embed", {Operand::input(EntryInput::TokenIds), Operand::weight(0)},
       {0}, {}, ""},
      {KernelKind::RmsNorm, "norm", {Operand::buffer(0), Operand::weight(1)}, {1}, {{"eps", 1e-6}},
       ""},
      {KernelKind::Linear, "lm_head", {Operand::buffer(1), Operand::weight(2)}, {2}, {}, ""}};
  entry.output = 2;
  planMemory(entry, plan.maxTokens);
  plan.entries.push_back(entry);
  return plan;
}

TEST(PlanTest, SmallPlanVerifiesAndRoundTrips) {
  Plan plan = smallPlan();
  ASSERT_TRUE(verifyPlan(plan)) << verifyPlan(plan).message();
  m2c::StatusOr<Plan> parsed = planFromJson(planToJson(plan));
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(planToJson(*parsed), planToJson(plan));
}

TEST(PlanTest, TileKeysRoundTrip) {
  Plan plan = smallPlan();
  plan.entries[0].kernels[2].tileKey = "decode/linear/16x4";
  plan.entries[0].kernels[2].attrs["tile.rows_per_warp"] = 2;
  std::string json = planToJson(plan);
  EXPECT_NE(json.find("\"tile_key\": \"decode/linear/16x4\""), std::string::npos);
  m2c::StatusOr<Plan> parsed = planFromJson(json);
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(parsed->entries[0].kernels[2].tileKey, "decode/linear/16x4");
  EXPECT_TRUE(parsed->entries[0].kernels[0].tileKey.empty());
  size_t at = json.find("\"decode/linear/16x4\"");
  json.replace(at, std::string("\"decode/linear/16x4\"").size(), "7");
  EXPECT_EQ(planFromJson(json).status().message(),
            "plan: entries[0].kernels[2].tile_key: expected a string");
}

TEST(PlanTest, MemoryPlannerReusesDeadBuffers) {
  Plan plan = smallPlan();
  const Entry &entry = plan.entries[0];
  // %0 dies when %1 is written... no: %0 is read by the norm that writes %1,
  // so they overlap; %2 is written after %0's last read and may reuse it.
  EXPECT_NE(entry.buffers[0].offset, entry.buffers[1].offset);
  EXPECT_EQ(entry.buffers[2].offset, 0);
  // 8 rows x 16 f32 for the logits, then %1 after them; %0 shares with %2.
  EXPECT_EQ(entry.buffers[1].offset, 512);
  EXPECT_EQ(entry.arenaBytes, 512 + 128);
}

TEST(PlanTest, MemoryPlannerNeverOverlapsLiveBuffers) {
  // A chain where every buffer is read by the next two kernels.
  Entry entry;
  entry.name = "chain";
  for (int i = 0; i < 6; ++i)
    entry.buffers.push_back({"%" + std::to_string(i), ElementType::F32, 4 + i, 0, 0});
  entry.kernels.push_back({KernelKind::Add, "k0", {}, {0}, {}, ""});
  entry.kernels.push_back({KernelKind::Add, "k1", {Operand::buffer(0)}, {1}, {}, ""});
  for (int i = 2; i < 6; ++i)
    entry.kernels.push_back(
        {KernelKind::Add, "k" + std::to_string(i), {Operand::buffer(i - 1), Operand::buffer(i - 2)}, {i}, {}, ""});
  entry.output = 5;
  planMemory(entry, 3);
  auto end = [&](int i) { return entry.buffers[i].offset + entry.buffers[i].bytesFor(3); };
  for (int i = 0; i < 6; ++i)
    for (int j = i + 1; j < 6; ++j) {
      bool live = j - i <= 2; // i is still read when j is written
      bool overlap = entry.buffers[i].offset < end(j) && entry.buffers[j].offset < end(i);
      if (live)
        EXPECT_FALSE(overlap) << i << " and " << j;
    }
  for (int i = 0; i < 6; ++i)
    EXPECT_LE(end(i), entry.arenaBytes);
}

TEST(PlanTest, VerifierRejectsBadPlans) {
  {
    Plan plan = smallPlan();
    plan.entries[0].kernels[1].inputs[0] = Operand::buffer(7);
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode': kernel 1 (norm) has an operand out of range");
  }
  {
    Plan plan = smallPlan();
    plan.entries[0].kernels[2].inputs.pop_back();
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode' kernel 2 (lm_head, linear): expects 2 inputs and 1 to 8 "
              "outputs, got 1 and 1");
  }
  {
    Plan plan = smallPlan();
    plan.weights[2].shape = {16, 5};
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode' kernel 2 (lm_head, linear): shapes must be x [T, K], "
              "weight [N, K], outputs [T, N] in total");
  }
  {
    // A fused projection: outputs are column ranges that must add up to N.
    Plan plan = smallPlan();
    plan.entries[0].buffers.push_back({"%3", ElementType::F32, 4, 0, 0});
    plan.entries[0].buffers[2].cols = 12;
    plan.entries[0].kernels[2].outputs = {2, 3};
    plan.entries[0].output = 2;
    plan.vocabSize = 12;
    EXPECT_TRUE(verifyPlan(plan).isOk()) << verifyPlan(plan).message();
    plan.entries[0].buffers[3].cols = 3;
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode' kernel 2 (lm_head, linear): shapes must be x [T, K], "
              "weight [N, K], outputs [T, N] in total");
  }
  {
    // A fused weight's parts must tile its rows.
    Plan plan = smallPlan();
    plan.weights[2].parts = {{"q_proj.weight", 8}, {"k_proj.weight", 8}};
    EXPECT_TRUE(verifyPlan(plan).isOk()) << verifyPlan(plan).message();
    plan.weights[2].parts[1].rows = 7;
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: weight 'lm_head' must be a matrix whose parts' rows sum to its own");
    plan.weights[2].parts[1] = {"experts.{e}.w1.weight", 8};
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: weight 'lm_head' has a part without rows or a plain binding");
  }
  {
    Plan plan = smallPlan();
    plan.entries[0].buffers[1].offset = 1 << 20;
    EXPECT_EQ(verifyPlan(plan).message(), "plan: entry 'decode': buffer '%1' lies outside the arena");
  }
  {
    Plan plan = smallPlan();
    plan.entries[0].kernels[1].attrs["eps"] = -1;
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode' kernel 1 (norm, rms_norm): attribute eps must be positive");
  }
  {
    Plan plan = smallPlan();
    plan.entries[0].kernels[0].inputs[0] = Operand::input(EntryInput::Positions);
    EXPECT_EQ(verifyPlan(plan).message(),
              "plan: entry 'decode' kernel 0 (embed, embedding): input 0 must be the entry "
              "input token_ids");
  }
}

TEST(PlanTest, JsonReaderNamesTheBadField) {
  std::string json = planToJson(smallPlan());
  auto replaced = [&](const std::string &from, const std::string &to) {
    std::string copy = json;
    size_t at = copy.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    copy.replace(at, from.size(), to);
    return planFromJson(copy).status().message();
  };
  EXPECT_EQ(replaced("\"max_tokens\": 8", "\"max_tokens\": \"8\""),
            "plan: plan.max_tokens: expected an integer");
  EXPECT_EQ(replaced("\"kind\": \"rms_norm\"", "\"kind\": \"softmax\""),
            "plan: entries[0].kernels[1].kind: unknown kernel kind 'softmax'");
  EXPECT_EQ(replaced("\"version\": 1", "\"version\": 9"),
            "plan version 9 is not supported (expected 1)");
  EXPECT_EQ(planFromJson("{").status().message(), "plan: not valid JSON");
  EXPECT_EQ(planFromJson("[]").status().message(), "plan: plan: expected an object");
}


/// smallPlan with the decode tail fused: embedding -> lm_head (norm,
/// projection and argmax), returning logits and greedy ids.
Plan fusedTailPlan() {
  Plan plan = smallPlan();
  Entry &entry = plan.entries[0];
  entry.buffers = {{"%0", ElementType::F32, 4, 0, 0},
                   {"%1", ElementType::F32, 16, 0, 0},
                   {"%2", ElementType::I32, 1, 0, 0}};
  entry.kernels.resize(2);
  entry.kernels[1] = {KernelKind::LmHead,
                      "lm_head",
                      {Operand::buffer(0), Operand::weight(1), Operand::weight(2)},
                      {1, 2},
                      {{"eps", 1e-6}},
                      ""};
  entry.output = 1;
  entry.greedyIds = 2;
  planMemory(entry, plan.maxTokens);
  return plan;
}

TEST(PlanTest, FusedTailVerifiesRoundTripsAndKeepsItsIdsLive) {
  Plan plan = fusedTailPlan();
  ASSERT_TRUE(verifyPlan(plan)) << verifyPlan(plan).message();
  std::string json = planToJson(plan);
  EXPECT_NE(json.find("\"greedy_ids\": 2"), std::string::npos);
  m2c::StatusOr<Plan> parsed = planFromJson(json);
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(parsed->entries[0].greedyIds, 2);
  EXPECT_EQ(planToJson(*parsed), json);
  // Without the key an entry has no ids.
  EXPECT_EQ(planFromJson(planToJson(smallPlan()))->entries[0].greedyIds, -1);
  // The ids and logits are read after the last kernel: they never share bytes.
  const Entry &entry = plan.entries[0];
  EXPECT_TRUE(entry.buffers[2].offset >= entry.buffers[1].offset + 8 * 16 * 4 ||
              entry.buffers[1].offset >= entry.buffers[2].offset + 8 * 4);
}

TEST(PlanTest, VerifierRejectsBadFusedTails) {
  auto message = [](auto mutate) {
    Plan plan = fusedTailPlan();
    mutate(plan.entries[0]);
    return verifyPlan(plan).message();
  };
  const std::string kernel = "plan: entry 'decode' kernel 1 (lm_head, lm_head): ";
  EXPECT_EQ(message([](Entry &e) { e.kernels[1].inputs.pop_back(); }),
            kernel + "expects 3 inputs and 2 outputs, got 2 and 2");
  EXPECT_EQ(message([](Entry &e) { e.kernels[1].inputs[2] = Operand::weight(1); }),
            kernel + "weight 'norm' must have rank 2");
  EXPECT_EQ(message([](Entry &e) { e.kernels[1].attrs["eps"] = 0; }),
            kernel + "attribute eps must be positive");
  {
    Plan plan = fusedTailPlan();
    plan.weights[1].shape = {5};
    EXPECT_EQ(verifyPlan(plan).message(),
              kernel + "shapes must be x [T, H] f32, norm weight [H], lm_head [V, H]");
  }
  EXPECT_EQ(message([](Entry &e) { e.buffers[1].type = ElementType::BF16; }),
            kernel + "outputs must be logits f32 [T, V] and ids i32 [T, 1]");
  EXPECT_EQ(message([](Entry &e) { e.kernels[1].inputs.push_back(Operand::weight(1)); }),
            kernel + "input 3 must be a buffer");
  EXPECT_EQ(message([](Entry &e) {
              e.buffers.push_back({"%3", ElementType::F32, 3, 0, 0});
              e.kernels[1].inputs.push_back(Operand::buffer(3));
            }),
            kernel + "the residual must have the input's shape");
  EXPECT_EQ(message([](Entry &e) { e.greedyIds = 9; }),
            "plan: entry 'decode': greedy_ids buffer out of range");
  EXPECT_EQ(message([](Entry &e) { e.greedyIds = 0; }),
            "plan: entry 'decode': greedy_ids must be i32 [rows, 1], one per logits row");
}

/// fusedTailPlan with 5 sampling candidates per row.
Plan candidatesPlan() {
  Plan plan = fusedTailPlan();
  Entry &entry = plan.entries[0];
  entry.buffers.push_back({"%3", ElementType::I32, 5, 0, 0});
  entry.buffers.push_back({"%4", ElementType::F32, 5, 0, 0});
  entry.kernels[1].outputs = {1, 2, 3, 4};
  entry.candidateIds = 3;
  entry.candidateLogits = 4;
  planMemory(entry, plan.maxTokens);
  return plan;
}

TEST(PlanTest, CandidatesVerifyRoundTripAndStayLive) {
  Plan plan = candidatesPlan();
  ASSERT_TRUE(verifyPlan(plan)) << verifyPlan(plan).message();
  std::string json = planToJson(plan);
  EXPECT_NE(json.find("\"candidate_ids\": 3"), std::string::npos);
  EXPECT_NE(json.find("\"candidate_logits\": 4"), std::string::npos);
  m2c::StatusOr<Plan> parsed = planFromJson(json);
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(parsed->entries[0].candidateIds, 3);
  EXPECT_EQ(parsed->entries[0].candidateLogits, 4);
  EXPECT_EQ(planToJson(*parsed), json);
  EXPECT_EQ(planFromJson(planToJson(fusedTailPlan()))->entries[0].candidateIds, -1);
  // Every result is read after the last kernel: no two share bytes.
  const Entry &entry = plan.entries[0];
  for (int64_t a : {1, 2, 3, 4})
    for (int64_t b : {1, 2, 3, 4})
      if (a < b)
        EXPECT_TRUE(entry.buffers[a].offset + entry.buffers[a].bytesFor(8) <=
                        entry.buffers[b].offset ||
                    entry.buffers[b].offset + entry.buffers[b].bytesFor(8) <=
                        entry.buffers[a].offset)
            << a << " and " << b;
}

TEST(PlanTest, VerifierRejectsBadCandidates) {
  auto message = [](auto mutate) {
    Plan plan = candidatesPlan();
    mutate(plan.entries[0]);
    return verifyPlan(plan).message();
  };
  const std::string kernel = "plan: entry 'decode' kernel 1 (lm_head, lm_head): ";
  const std::string where = "plan: entry 'decode': ";
  EXPECT_EQ(message([](Entry &e) { e.kernels[1].outputs.pop_back(); }),
            kernel + "expects 3 inputs and 2 outputs, got 3 and 3");
  // The kernel's own outputs (the entry names others here).
  EXPECT_EQ(message([](Entry &e) {
              e.buffers.push_back({"%5", ElementType::F32, 4, 0, 0});
              e.kernels[1].outputs[3] = 5;
              planMemory(e, 8);
            }),
            kernel + "candidates must be ids i32 [T, K] and values f32 [T, K], K <= V");
  EXPECT_EQ(message([](Entry &e) {
              e.buffers.push_back({"%5", ElementType::F32, 5, 0, 0});
              e.kernels[1].outputs[2] = 5;
              planMemory(e, 8);
            }),
            kernel + "candidates must be ids i32 [T, K] and values f32 [T, K], K <= V");
  EXPECT_EQ(message([](Entry &e) { e.candidateLogits = -1; }),
            where + "candidate_ids and candidate_logits come together");
  EXPECT_EQ(message([](Entry &e) { e.candidateIds = 7; }),
            where + "candidate buffers out of range");
  EXPECT_EQ(message([](Entry &e) { e.candidateIds = 2; }),
            where + "candidate_ids and candidate_logits must be i32 and f32 [rows, K], K <= "
                    "vocab_size, one row per logits row");
  {
    Plan plan = candidatesPlan();
    for (int64_t b : {3, 4})
      plan.entries[0].buffers[b].cols = 17; // more than the vocabulary
    plan.entries[0].kernels[1].outputs = {1, 2};
    planMemory(plan.entries[0], plan.maxTokens);
    EXPECT_EQ(verifyPlan(plan).message(),
              where + "candidate_ids and candidate_logits must be i32 and f32 [rows, K], K <= "
                      "vocab_size, one row per logits row");
  }
}

} // namespace

namespace {

TEST(KernelContractTest, EveryKindParsesByItsName) {
  int kinds = 0;
#define M2C_KERNEL_KIND(Enum, name, Attrs, operands)                                           \
  {                                                                                            \
    ++kinds;                                                                                   \
    m2c::StatusOr<KernelKind> parsed = parseKernelKind(name);                                  \
    ASSERT_TRUE(parsed) << name;                                                               \
    EXPECT_EQ(*parsed, KernelKind::Enum);                                                      \
    EXPECT_STREQ(kernelKindName(KernelKind::Enum), name);                                      \
    EXPECT_STREQ(kernelKindOperands(KernelKind::Enum), operands);                              \
  }
#include "runtime/plan/KernelKinds.def"
  EXPECT_EQ(kinds, 10);
  EXPECT_EQ(parseKernelKind("gemm").status().message(), "unknown kernel kind 'gemm'");
}

TEST(KernelContractTest, TypedAttributesWriteTheirNamesAndSkipUnsetOptionalOnes) {
  AttentionAttrs attention;
  attention.layer = 3;
  attention.numHeads = 48;
  attention.numKvHeads = 8;
  attention.headDim = 128;
  attention.rotaryDim = 64;
  attention.ropeTheta = 5e6;
  attention.causal = false;
  AttrMap map;
  writeAttrs(attention, map);
  EXPECT_EQ(map, (AttrMap{{"layer", 3},
                          {"num_heads", 48},
                          {"num_kv_heads", 8},
                          {"head_dim", 128},
                          {"rotary_dim", 64},
                          {"rope_theta", 5e6},
                          {"causal", 0}}));
  attention.qkNormEps = 1e-6;
  writeAttrs(attention, map);
  EXPECT_EQ(map.at("qk_norm_eps"), 1e-6);
  AttentionAttrs read = readAttrs<AttentionAttrs>(map);
  EXPECT_EQ(read.layer, 3);
  EXPECT_EQ(read.numKvHeads, 8);
  EXPECT_EQ(read.ropeTheta, 5e6);
  EXPECT_FALSE(read.causal);
  EXPECT_EQ(read.qkNormEps, 1e-6);

  const char *missing = nullptr;
  map.erase("rotary_dim");
  readAttrs<AttentionAttrs>(map, &missing);
  ASSERT_NE(missing, nullptr);
  EXPECT_STREQ(missing, "rotary_dim");
  missing = nullptr;
  readAttrs<MoeRouteAttrs>({{"top_k", 2}, {"num_experts", 8}, {"softmax", 0}, {"renormalize", 1}},
                           &missing);
  EXPECT_EQ(missing, nullptr) << "add_rms_norm and eps are optional";
  // A number no int64 holds reads as -1 (never undefined behaviour).
  EXPECT_EQ(readAttrs<AttentionAttrs>({{"layer", 1e300}}).layer, -1);
  EXPECT_EQ(readAttrs<AttentionAttrs>({{"layer", std::nan("")}}).layer, -1);
}

TEST(KernelContractTest, VerifierNamesAMissingAttribute) {
  Plan plan = smallPlan();
  plan.entries[0].kernels[1].attrs.erase("eps");
  EXPECT_EQ(verifyPlan(plan).message(),
            "plan: entry 'decode' kernel 1 (norm, rms_norm): attribute eps is missing");
  // verifyKernel checks one kernel alone, by the same rules.
  EXPECT_EQ(verifyKernel(plan, plan.entries[0], plan.entries[0].kernels[1]).message(),
            verifyPlan(plan).message());
  EXPECT_TRUE(verifyKernel(plan, plan.entries[0], plan.entries[0].kernels[2]));
}

TEST(QuantFormatTest, TraitsGiveEachFormatsLayout) {
  // int4 g128: two codes a byte; a scale per row and 128 columns.
  PackedMatrix int4 = packedMatrix(Quantization::Int4G128, 3, 300);
  EXPECT_EQ(int4.codeBytes, 3u * 150);
  EXPECT_EQ(int4.scaleBytes, 4u * 3 * 3);
  // int8: a scale per row.
  PackedMatrix int8 = packedMatrix(Quantization::Int8, 3, 301);
  EXPECT_EQ(int8.codeBytes, 3u * 301);
  EXPECT_EQ(int8.scaleBytes, 4u * 3);
  // FP8: a scale per 128 x 128 block, partial edge blocks included.
  PackedMatrix fp8 = packedMatrix(Quantization::Fp8Block128, 130, 300);
  EXPECT_EQ(fp8.codeBytes, 130u * 300);
  EXPECT_EQ(fp8.scaleBytes, 4u * 2 * 3);
  EXPECT_EQ(packedMatrix(Quantization::None, 3, 3).bytes(), 0u);
  EXPECT_EQ(packGrid(Quantization::Int4G128, 3, 300), (std::array<int64_t, 3>{3, 3, 1}));
  EXPECT_EQ(packGrid(Quantization::Fp8Block128, 130, 300), (std::array<int64_t, 3>{2, 3, 1}));
  EXPECT_EQ(quantFormat(Quantization::Int8).qmax, 127.0f);
  EXPECT_EQ(quantFormat(Quantization::Int4G128).qmax, 7.0f);
  EXPECT_EQ(quantFormat(Quantization::Fp8Block128).qmax, 448.0f);
}

TEST(QuantFormatTest, NamesAndOptionsParse) {
  for (const QuantFormat &format : quantFormats()) {
    EXPECT_EQ(*parseQuantization(format.name), format.id);
    EXPECT_EQ(*parseQuantizationOption(format.option), format.id);
    EXPECT_STREQ(quantizationName(format.id), format.name);
  }
  EXPECT_EQ(*parseQuantizationOption("none"), Quantization::None);
  EXPECT_EQ(quantizationOptions(), "none, int8, int4, fp8");
  EXPECT_EQ(parseQuantizationOption("int3").status().message(),
            "unknown format 'int3' (expected none, int8, int4, fp8)");
  EXPECT_EQ(parseQuantization("int4").status().message(),
            "unknown quantization 'int4' (expected none, int8, int4_g128, fp8_block128)");
}

TEST(KvCacheSpecTest, GeometryIsComputedInOnePlace) {
  KvCacheSpec kv{62, 8, 128, 16, ElementType::BF16};
  EXPECT_EQ(kv.blocksFor(1), 1);
  EXPECT_EQ(kv.blocksFor(16), 1);
  EXPECT_EQ(kv.blocksFor(17), 2);
  EXPECT_EQ(kv.tokenBytes(), 2 * 8 * 128 * 2);
  EXPECT_EQ(kv.blockBytes(), 16 * 4096);
  // minimax-m2: 248 KiB of bf16 KV per token over 62 layers.
  EXPECT_EQ(kv.bytes(1) / kv.blockSize, 62.0 * 4096);
  EXPECT_EQ(*parseKvCacheType("f16"), ElementType::F16);
  EXPECT_EQ(parseKvCacheType("i32").status().message(), "expected bf16, f16 or f32, got 'i32'");
}

TEST(KernelCostTest, FloorBytesAreWeightsAsStoredAndTheCache) {
  Plan plan = smallPlan();
  const Entry &entry = plan.entries[0];
  m2c::StepShape shape{2, 100};
  // The embedding reads only the rows of the step's tokens.
  m2c::KernelCost embed = m2c::estimateKernelCost(plan, entry, entry.kernels[0], shape);
  EXPECT_EQ(embed.weightBytes, 2 * 4 * 2);
  EXPECT_EQ(embed.bytesRead, 2 * 4 + embed.weightBytes);
  // A linear reads its whole weight, packed when quantized.
  m2c::KernelCost head = m2c::estimateKernelCost(plan, entry, entry.kernels[2], shape);
  EXPECT_EQ(head.weightBytes, 16 * 4 * 2);
  EXPECT_EQ(head.cacheBytes, 0);
  EXPECT_EQ(head.bytesRead, 2 * 4 * 4 + head.weightBytes);
  EXPECT_EQ(head.bytesWritten, 2 * 16 * 4);
  plan.weights[2].quantization = Quantization::Int8;
  EXPECT_EQ(m2c::estimateKernelCost(plan, entry, entry.kernels[2], shape).weightBytes,
            16 * 4 + 16 * 4);
}

} // namespace
