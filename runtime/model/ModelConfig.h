//===- ModelConfig.h - A MiniMax-M2-family variant, read from config.json -===//
//
// One struct describes every variant (released model, card, test sizes);
// no code branches on model names. Parsing never throws: a bad key yields
// "config.json: <key>: <why>".
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_MODEL_MODELCONFIG_H
#define M2C_RUNTIME_MODEL_MODELCONFIG_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace m2c {

/// How the checkpoint stores quantized linear weights (quantization_config).
struct CheckpointQuantization {
  /// "" for an unquantized checkpoint, "fp8" for block-scaled float8_e4m3fn.
  std::string method;
  int64_t blockRows = 128;
  int64_t blockCols = 128;
  /// Module-name fragments that stay unquantized ("gate", "lm_head", ...).
  std::vector<std::string> modulesToNotConvert;

  bool isFp8() const { return method == "fp8"; }
  /// True when a weight named `tensorName` is stored quantized.
  bool appliesTo(const std::string &tensorName) const;
};

struct ModelConfig {
  std::string modelType = "minimax_m2";
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0; // per expert
  int64_t numHiddenLayers = 0;
  int64_t numAttentionHeads = 0;
  int64_t numKeyValueHeads = 0;
  int64_t headDim = 0;
  int64_t rotaryDim = 0;
  double ropeTheta = 0.0;
  double rmsNormEps = 1e-6;
  int64_t numLocalExperts = 0;
  int64_t numExpertsPerTok = 0;
  std::string scoringFunc = "sigmoid"; // sigmoid | softmax
  bool useRoutingBias = true;
  bool useQkNorm = true;
  std::string qkNormType = "per_layer";
  bool tieWordEmbeddings = false;
  int64_t maxPositionEmbeddings = 0;
  bool useMtp = false;
  int64_t numMtpModules = 0;
  std::string torchDtype = "bfloat16";
  CheckpointQuantization quantization;

  int64_t qSize() const { return numAttentionHeads * headDim; }
  int64_t kvSize() const { return numKeyValueHeads * headDim; }
};

/// Parses config.json text. `origin` prefixes every error ("config.json").
StatusOr<ModelConfig> parseModelConfig(const std::string &jsonText,
                                       const std::string &origin,
                                       const std::vector<std::string> &overrides = {});

/// Reads a config.json path, or a directory holding one.
StatusOr<ModelConfig> loadModelConfigFile(const std::string &path,
                                          const std::vector<std::string> &overrides = {});

/// The built-in variants: "minimax-m2", "minimax-m2-card", "tiny".
std::vector<std::string> presetNames();
/// The config.json text of a preset, or an empty string.
std::string presetConfigJson(const std::string &name);

/// Resolves MODEL the way every tool does: a preset name, a directory
/// holding config.json, or a config.json path.
StatusOr<ModelConfig> resolveModelConfig(const std::string &model,
                                         const std::vector<std::string> &overrides = {});

/// The config.json text MODEL resolves to (preset text, or the file's), with
/// `overrides` applied; `origin` receives the name errors should carry.
StatusOr<std::string> resolveModelConfigText(const std::string &model,
                                             const std::vector<std::string> &overrides,
                                             std::string *origin);

/// Checks the cross-key constraints (heads divisible, rotary_dim even, ...).
Status validateModelConfig(const ModelConfig &config, const std::string &origin);

} // namespace m2c

#endif // M2C_RUNTIME_MODEL_MODELCONFIG_H
