//===- ModelConfigTest.cpp - config.json parsing, presets and errors ------===//

#include "runtime/model/ModelConfig.h"

#include <gtest/gtest.h>

using namespace m2c;

namespace {

std::string tinyWith(const std::vector<std::string> &overrides, Status *error) {
  StatusOr<ModelConfig> config = parseModelConfig(presetConfigJson("tiny"), "config.json",
                                                  overrides);
  if (!config) {
    *error = config.status();
    return config.status().message();
  }
  return "";
}

std::string errorFor(const std::vector<std::string> &overrides) {
  Status status;
  return tinyWith(overrides, &status);
}

TEST(ModelConfigTest, ReleasedPresetMatchesTheModelCard) {
  StatusOr<ModelConfig> config = resolveModelConfig("minimax-m2");
  ASSERT_TRUE(config) << config.status().message();
  EXPECT_EQ(config->numHiddenLayers, 62);
  EXPECT_EQ(config->hiddenSize, 3072);
  EXPECT_EQ(config->numAttentionHeads, 48);
  EXPECT_EQ(config->numKeyValueHeads, 8);
  EXPECT_EQ(config->headDim, 128);
  EXPECT_EQ(config->rotaryDim, 64);
  EXPECT_EQ(config->numLocalExperts, 256);
  EXPECT_EQ(config->numExpertsPerTok, 8);
  EXPECT_EQ(config->intermediateSize, 1536);
  EXPECT_EQ(config->vocabSize, 200064);
  EXPECT_DOUBLE_EQ(config->ropeTheta, 5e6);
  EXPECT_TRUE(config->useMtp);
  EXPECT_TRUE(config->quantization.isFp8());
  EXPECT_EQ(config->quantization.blockRows, 128);
  EXPECT_FALSE(config->quantization.appliesTo("model.layers.0.block_sparse_moe.gate.weight"));
  EXPECT_FALSE(config->quantization.appliesTo("lm_head.weight"));
  EXPECT_TRUE(config->quantization.appliesTo("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(
      config->quantization.appliesTo("model.layers.0.block_sparse_moe.experts.3.w1.weight"));
}

TEST(ModelConfigTest, CardPreset) {
  StatusOr<ModelConfig> config = resolveModelConfig("minimax-m2-card");
  ASSERT_TRUE(config) << config.status().message();
  EXPECT_EQ(config->numHiddenLayers, 32);
  EXPECT_EQ(config->hiddenSize, 4096);
  EXPECT_EQ(config->numAttentionHeads, 32);
  EXPECT_EQ(config->numLocalExperts, 8);
  EXPECT_EQ(config->numExpertsPerTok, 2);
}

TEST(ModelConfigTest, OverridesAnyKeyIncludingNested) {
  StatusOr<ModelConfig> config =
      parseModelConfig(presetConfigJson("minimax-m2"), "config.json",
                       {"num_hidden_layers=8", "attn_type_list=[1,1,1,1,1,1,1,1]",
                        "quantization_config.weight_block_size=[64,64]"});
  ASSERT_TRUE(config) << config.status().message();
  EXPECT_EQ(config->numHiddenLayers, 8);
  EXPECT_EQ(config->quantization.blockRows, 64);
}

TEST(ModelConfigTest, TransformersFiveRopeParameters) {
  StatusOr<ModelConfig> config = parseModelConfig(
      presetConfigJson("tiny"), "config.json",
      {"rotary_dim=null", "rope_theta=null",
       "rope_parameters={\"rope_type\":\"default\",\"rope_theta\":10000,"
       "\"partial_rotary_factor\":0.25}"});
  ASSERT_TRUE(config) << config.status().message();
  EXPECT_EQ(config->rotaryDim, 8);
  EXPECT_DOUBLE_EQ(config->ropeTheta, 10000.0);
}

TEST(ModelConfigTest, UnknownKeysAreIgnored) {
  std::string text = presetConfigJson("tiny");
  text.insert(text.find('{') + 1, R"("some_future_key": {"a": 1}, "router_jitter_noise": 0.0,)");
  StatusOr<ModelConfig> config = parseModelConfig(text, "config.json");
  EXPECT_TRUE(config) << config.status().message();
}

TEST(ModelConfigTest, AnOverrideOfAKeyNoConfigHasIsATypo) {
  EXPECT_EQ(errorFor({"num_hiden_layers=4"}),
            "--set num_hiden_layers=4: 'num_hiden_layers' is not a key of this config nor of "
            "MiniMax-M2's (did you mean 'num_hidden_layers'?)");
  EXPECT_EQ(errorFor({"qqqq.x=1"}),
            "--set qqqq.x=1: 'qqqq' is not a key of this config nor of MiniMax-M2's");
  // Keys of the released config, and transformers 5 spellings m2c reads.
  EXPECT_EQ(errorFor({"use_mtp=false"}), "");
  EXPECT_EQ(errorFor({"dtype=\"bfloat16\""}), "");
}

TEST(ModelConfigTest, MissingKeyIsNamed) {
  EXPECT_EQ(errorFor({"hidden_size=null"}), "config.json: hidden_size: expected an integer, got null");
  StatusOr<ModelConfig> config =
      parseModelConfig(R"({"model_type":"minimax_m2","vocab_size":10})", "config.json");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.status().message(), "config.json: hidden_size: missing required key");
}

TEST(ModelConfigTest, IllTypedKeys) {
  EXPECT_EQ(errorFor({"num_attention_heads=\"many\""}),
            "config.json: num_attention_heads: expected an integer, got \"many\"");
  EXPECT_EQ(errorFor({"num_hidden_layers=2.5"}),
            "config.json: num_hidden_layers: expected an integer, got 2.5");
  EXPECT_EQ(errorFor({"vocab_size=0"}),
            "config.json: vocab_size: expected an integer >= 1, got 0");
  EXPECT_EQ(errorFor({"use_qk_norm=1"}),
            "config.json: use_qk_norm: expected true or false, got 1");
  EXPECT_EQ(errorFor({"rope_theta=-1"}),
            "config.json: rope_theta: expected a positive number, got -1");
}

TEST(ModelConfigTest, CrossKeyConstraints) {
  EXPECT_EQ(errorFor({"num_key_value_heads=3"}),
            "config.json: num_attention_heads: num_attention_heads (4) must be a multiple of "
            "num_key_value_heads (3)");
  EXPECT_EQ(errorFor({"rotary_dim=15"}),
            "config.json: rotary_dim: rotary_dim (15) must be even and at most head_dim (32)");
  EXPECT_EQ(errorFor({"num_experts_per_tok=9"}),
            "config.json: num_experts_per_tok: num_experts_per_tok (9) exceeds "
            "num_local_experts (8)");
  EXPECT_EQ(errorFor({"scoring_func=\"relu\""}),
            "config.json: scoring_func: expected \"sigmoid\" or \"softmax\", got \"relu\"");
  EXPECT_EQ(errorFor({"shared_intermediate_size=128"}),
            "config.json: shared_intermediate_size: shared experts are not supported, got 128");
}

TEST(ModelConfigTest, UnsupportedAttentionType) {
  EXPECT_EQ(errorFor({"attn_type_list=[1,0]"}),
            "config.json: attn_type_list: layer 1 has attention type 0, which is not "
            "supported (only 1, full softmax attention)");
  EXPECT_EQ(errorFor({"attn_type_list=[1]"}),
            "config.json: attn_type_list: has 1 entries but num_hidden_layers is 2 (set both: "
            "--set num_hidden_layers=N --set 'attn_type_list=[1,...]' with N ones)");
}

TEST(ModelConfigTest, MalformedDocuments) {
  EXPECT_EQ(parseModelConfig("{\"a\":", "config.json").status().message(),
            "config.json: not valid JSON");
  EXPECT_EQ(parseModelConfig("[1,2]", "config.json").status().message(),
            "config.json: expected a JSON object at the top level");
  // Invalid UTF-8 inside a value must not throw while describing it.
  std::string text = presetConfigJson("tiny");
  text.replace(text.find("\"silu\"") == std::string::npos ? 1 : 1, 0,
               "\"hidden_size\": \"\xff\xfe\",");
  StatusOr<ModelConfig> config = parseModelConfig(text, "config.json");
  EXPECT_FALSE(config);
}

TEST(ModelConfigTest, BadOverrides) {
  EXPECT_EQ(errorFor({"novalue"}), "--set novalue: expected key=value");
  EXPECT_EQ(errorFor({"a..b=1"}), "--set a..b=1: empty key component");
}

TEST(ModelConfigTest, UnreadableFileAndUnknownPreset) {
  StatusOr<ModelConfig> config = loadModelConfigFile("/nonexistent/dir/config.json");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.status().message(), "/nonexistent/dir/config.json: cannot read file");
  config = resolveModelConfig("no-such-model");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.status().message(),
            "no-such-model: no such file, directory or preset (presets: minimax-m2, "
            "minimax-m2-card, tiny)");
}

} // namespace
