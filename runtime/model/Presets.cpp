//===- Presets.cpp - The built-in variants, as config.json text -----------===//
//
// Variants are data: each preset is the config.json a user could have
// written. minimax-m2 mirrors the released config's keys (leftover keys
// included, to prove they are ignored).
//
//===----------------------------------------------------------------------===//

#include "runtime/model/ModelConfig.h"

#include <string>

namespace m2c {
namespace {

std::string repeatedOnes(int count) {
  std::string list = "[";
  for (int i = 0; i < count; ++i)
    list += i ? ",1" : "1";
  return list + "]";
}

std::string releasedConfig() {
  return R"({
  "architectures": ["MiniMaxM2ForCausalLM"],
  "model_type": "minimax_m2",
  "attn_type_list": )" + repeatedOnes(62) + R"(,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 3072,
  "intermediate_size": 1536,
  "layernorm_full_attention_beta": 1.0,
  "layernorm_linear_attention_beta": 1.0,
  "layernorm_mlp_beta": 1.0,
  "max_position_embeddings": 196608,
  "mlp_intermediate_size": 8192,
  "mtp_transformer_layers": 1,
  "num_attention_heads": 48,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 62,
  "num_key_value_heads": 8,
  "num_local_experts": 256,
  "num_mtp_modules": 3,
  "qk_norm_type": "per_layer",
  "quantization_config": {
    "activation_scheme": "dynamic",
    "fmt": "float8_e4m3fn",
    "quant_method": "fp8",
    "weight_block_size": [128, 128],
    "modules_to_not_convert": ["gate", "e_score_correction_bias", "lm_head"]
  },
  "rms_norm_eps": 1e-06,
  "rope_theta": 5000000,
  "rotary_dim": 64,
  "scoring_func": "sigmoid",
  "shared_intermediate_size": 0,
  "shared_moe_mode": "sigmoid",
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_mtp": true,
  "use_qk_norm": true,
  "use_routing_bias": true,
  "vocab_size": 200064
})";
}

std::string cardConfig() {
  return R"({
  "model_type": "minimax_m2",
  "attn_type_list": )" + repeatedOnes(32) + R"(,
  "head_dim": 128,
  "hidden_size": 4096,
  "intermediate_size": 1536,
  "max_position_embeddings": 131072,
  "num_attention_heads": 32,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "num_local_experts": 8,
  "num_mtp_modules": 3,
  "qk_norm_type": "per_layer",
  "rms_norm_eps": 1e-06,
  "rope_theta": 5000000,
  "rotary_dim": 64,
  "scoring_func": "sigmoid",
  "shared_intermediate_size": 0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_mtp": true,
  "use_qk_norm": true,
  "use_routing_bias": true,
  "vocab_size": 200064
})";
}

// Small enough for CI, with every feature of the family switched on.
std::string tinyConfig() {
  return R"({
  "model_type": "minimax_m2",
  "attn_type_list": [1, 1],
  "head_dim": 32,
  "hidden_size": 128,
  "intermediate_size": 96,
  "max_position_embeddings": 4096,
  "num_attention_heads": 4,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "num_local_experts": 8,
  "qk_norm_type": "per_layer",
  "rms_norm_eps": 1e-06,
  "rope_theta": 5000000,
  "rotary_dim": 16,
  "scoring_func": "sigmoid",
  "shared_intermediate_size": 0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_qk_norm": true,
  "use_routing_bias": true,
  "vocab_size": 512
})";
}

} // namespace

std::vector<std::string> presetNames() { return {"minimax-m2", "minimax-m2-card", "tiny"}; }

std::string presetConfigJson(const std::string &name) {
  if (name == "minimax-m2")
    return releasedConfig();
  if (name == "minimax-m2-card")
    return cardConfig();
  if (name == "tiny")
    return tinyConfig();
  return "";
}

} // namespace m2c
