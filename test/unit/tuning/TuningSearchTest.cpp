//===- TuningSearchTest.cpp - space.json parsing and per-key choices ------===//

#include "runtime/tuning/TuningSearch.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace m2c;

namespace {

const char *kSpace = R"({"version": 1, "model": "tiny", "target": "sm_90", "candidates": [
  {"artifact": "candidate-0.m2a", "kernels": {
     "decode/linear/128x128": {"rows_per_warp": 1, "threads": 128, "tokens_per_block": 4},
     "decode/attention/4h2kv32d": {"splits": 16}}},
  {"artifact": "candidate-1.m2a", "kernels": {
     "decode/linear/128x128": {"rows_per_warp": 2, "threads": 128, "tokens_per_block": 4},
     "decode/attention/4h2kv32d": {"splits": 8}}},
  {"artifact": "candidate-2.m2a", "kernels": {
     "decode/linear/128x128": {"rows_per_warp": 4, "threads": 128, "tokens_per_block": 8},
     "decode/attention/4h2kv32d": {"splits": 16}}}]})";

TuningSpace space() {
  StatusOr<TuningSpace> parsed = parseTuningSpace(kSpace);
  EXPECT_TRUE(parsed) << parsed.status().message();
  return *parsed;
}

/// One measured step: the two keys' times, plus `other` microseconds of
/// kernels nobody tunes.
std::map<std::string, double> step(double linear, double attention, double other = 0) {
  return {{"decode/linear/128x128", linear},
          {"decode/attention/4h2kv32d", attention},
          {"decode/rms_norm/128", other}};
}

CandidateResult result(double linear, double attention, double error = 0) {
  CandidateResult r;
  r.steps = {step(linear, attention)};
  r.logitsError = error;
  return r;
}

TEST(TuningSearchTest, ParsesTheSpace) {
  TuningSpace s = space();
  EXPECT_EQ(s.model, "tiny");
  EXPECT_EQ(s.target, "sm_90");
  ASSERT_EQ(s.candidates.size(), 3u);
  EXPECT_EQ(s.candidates[2].artifact, "candidate-2.m2a");
  EXPECT_EQ(s.candidates[2].kernels["decode/linear/128x128"]["tokens_per_block"], 8);
}

TEST(TuningSearchTest, PicksTheFastestCandidatePerKey) {
  // Linear is fastest in candidate 2, attention in candidate 1.
  StatusOr<std::vector<TuningChoice>> choices =
      chooseTuning(space(), {result(100, 50), result(90, 30), result(60, 50)}, 1e-2, 0.02);
  ASSERT_TRUE(choices) << choices.status().message();
  ASSERT_EQ(choices->size(), 2u);
  // Keys in map order: attention, then linear.
  EXPECT_EQ((*choices)[0].key, "decode/attention/4h2kv32d");
  EXPECT_EQ((*choices)[0].candidate, 1u);
  EXPECT_EQ((*choices)[0].setting.at("splits"), 8);
  // Costs are fractions of candidate 0's step (150 us).
  EXPECT_DOUBLE_EQ((*choices)[0].chosenCost, 30.0 / 150);
  EXPECT_EQ((*choices)[1].candidate, 2u);
  EXPECT_EQ((*choices)[1].setting.at("rows_per_warp"), 4);
  EXPECT_DOUBLE_EQ((*choices)[1].defaultCost, 100.0 / 150);
}

TEST(TuningSearchTest, NeverPicksACandidateWithOtherLogits) {
  StatusOr<std::vector<TuningChoice>> choices =
      chooseTuning(space(), {result(100, 50), result(90, 30, 0.5), result(60, 50)}, 1e-2, 0.02);
  ASSERT_TRUE(choices);
  EXPECT_EQ((*choices)[0].candidate, 0u) << "candidate 1 computed other logits";
  EXPECT_EQ((*choices)[1].candidate, 2u);
}

TEST(TuningSearchTest, KeepsTheCostModelWithinNoise) {
  // 1.5% faster is inside the 2% margin: keep candidate 0's setting.
  StatusOr<std::vector<TuningChoice>> choices =
      chooseTuning(space(), {result(100, 50), result(98.5, 49.5), result(99, 50)}, 1e-2, 0.02);
  ASSERT_TRUE(choices);
  for (const TuningChoice &choice : *choices) {
    EXPECT_EQ(choice.candidate, 0u) << choice.key;
    EXPECT_DOUBLE_EQ(choice.chosenCost, choice.defaultCost);
  }
}

TEST(TuningSearchTest, WritesTheTuningFile) {
  TuningSpace s = space();
  StatusOr<std::vector<TuningChoice>> choices =
      chooseTuning(s, {result(100, 50), result(90, 30), result(60, 50)}, 1e-2, 0.02);
  ASSERT_TRUE(choices);
  nlohmann::json file = nlohmann::json::parse(tuningFileJson(s, *choices));
  EXPECT_EQ(file["version"], 1);
  EXPECT_EQ(file["target"], "sm_90");
  EXPECT_EQ(file["kernels"]["decode/attention/4h2kv32d"]["splits"], 8);
  EXPECT_EQ(file["kernels"]["decode/linear/128x128"]["tokens_per_block"], 8);
}

TEST(TuningSearchTest, RejectsMalformedSpaces) {
  for (const char *bad : {
           "", "[]", R"({"version": 2})",
           R"({"version": 1, "model": "m", "target": "sm_90", "candidates": []})",
           R"({"version": 1, "model": "m", "target": "sm_90",
               "candidates": [{"artifact": "../x.m2a", "kernels": {}}]})",
           R"({"version": 1, "model": "m", "target": "sm_90",
               "candidates": [{"artifact": "a.m2a", "kernels": {"k": {"splits": 0}}}]})",
           R"({"version": 1, "model": "m", "target": "sm_90",
               "candidates": [{"artifact": "a.m2a", "kernels": {"k": {"splits": "8"}}}]})"}) {
    StatusOr<TuningSpace> parsed = parseTuningSpace(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed)
      EXPECT_NE(parsed.status().message().find("space.json"), std::string::npos)
          << parsed.status().message();
  }
}

TEST(TuningSearchTest, EachStepWeighsByItsOwnLength) {
  // Step 1 is short (batch 1, 100 us), step 2 long (batch 32, 1000 us).
  // Candidate 1 saves 10 us of the long step but loses 10 us of the short
  // one: 1% against 10%, so candidate 0 stays; candidate 2 saves 100 us of
  // the long step for 2 us of the short one and wins.
  auto measured = [](double l1, double l2) {
    CandidateResult r;
    r.steps = {step(l1, 20, 60), step(l2, 200, 300)};
    return r;
  };
  std::vector<CandidateResult> results = {measured(20, 500), measured(30, 490),
                                          measured(22, 400)};
  StatusOr<std::vector<TuningChoice>> choices = chooseTuning(space(), results, 1e-2, 0.02);
  ASSERT_TRUE(choices) << choices.status().message();
  EXPECT_EQ((*choices)[1].key, "decode/linear/128x128");
  EXPECT_EQ((*choices)[1].candidate, 2u);
  EXPECT_NEAR((*choices)[1].defaultCost, 20.0 / 100 + 500.0 / 1000, 1e-12);
  results.pop_back();
  TuningSpace two = space();
  two.candidates.pop_back();
  choices = chooseTuning(two, results, 1e-2, 0.02);
  ASSERT_TRUE(choices);
  EXPECT_EQ((*choices)[1].candidate, 0u) << "1% of the long step does not pay 10% of the short";
}

TEST(TuningSearchTest, NeedsOneResultPerCandidateOnTheSameSteps) {
  EXPECT_FALSE(chooseTuning(space(), {result(1, 1)}, 1e-2, 0.02));
  CandidateResult fewer = result(1, 1);
  fewer.steps.clear();
  EXPECT_FALSE(chooseTuning(space(), {result(1, 1), fewer, result(1, 1)}, 1e-2, 0.02));
}

} // namespace
