//===- ModelConfig.cpp - config.json parsing and validation ---------------===//

#include "runtime/model/ModelConfig.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace m2c {
namespace {

using json = nlohmann::json;

std::string describe(const json &value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

/// Reads keys with typed checks; every error names origin and key.
class ConfigReader {
public:
  ConfigReader(const json &root, std::string origin)
      : root_(root), origin_(std::move(origin)) {}

  Status error(const std::string &key, const std::string &why) const {
    return Status::error(origin_ + ": " + key + ": " + why);
  }

  Status requireInt(const char *key, int64_t &out, int64_t minValue = 1) const {
    if (!root_.contains(key))
      return error(key, "missing required key");
    return readInt(key, out, minValue);
  }
  Status optionalInt(const char *key, int64_t &out, int64_t minValue = 0) const {
    if (!root_.contains(key) || root_[key].is_null())
      return Status::ok();
    return readInt(key, out, minValue);
  }
  Status readInt(const char *key, int64_t &out, int64_t minValue) const {
    const json &value = root_[key];
    if (value.is_number_integer()) {
      out = value.get<int64_t>();
    } else if (value.is_number_float() && std::floor(value.get<double>()) == value.get<double>() &&
               std::fabs(value.get<double>()) < 9e15) {
      out = static_cast<int64_t>(value.get<double>());
    } else {
      return error(key, "expected an integer, got " + describe(value));
    }
    if (out < minValue)
      return error(key, "expected an integer >= " + std::to_string(minValue) + ", got " +
                            std::to_string(out));
    return Status::ok();
  }
  Status requireNumber(const char *key, double &out) const {
    if (!root_.contains(key))
      return error(key, "missing required key");
    return optionalNumber(key, out);
  }
  Status optionalNumber(const char *key, double &out) const {
    if (!root_.contains(key) || root_[key].is_null())
      return Status::ok();
    const json &value = root_[key];
    if (!value.is_number())
      return error(key, "expected a number, got " + describe(value));
    out = value.get<double>();
    if (!std::isfinite(out) || out <= 0)
      return error(key, "expected a positive number, got " + describe(value));
    return Status::ok();
  }
  Status optionalBool(const char *key, bool &out) const {
    if (!root_.contains(key) || root_[key].is_null())
      return Status::ok();
    if (!root_[key].is_boolean())
      return error(key, "expected true or false, got " + describe(root_[key]));
    out = root_[key].get<bool>();
    return Status::ok();
  }
  Status optionalString(const char *key, std::string &out) const {
    if (!root_.contains(key) || root_[key].is_null())
      return Status::ok();
    if (!root_[key].is_string())
      return error(key, "expected a string, got " + describe(root_[key]));
    out = root_[key].get<std::string>();
    return Status::ok();
  }

private:
  const json &root_;
  std::string origin_;
};

/// Parses "a.b=value" and writes it into the JSON tree; the value is read as
/// JSON when it parses (numbers, booleans, lists) and as a string otherwise.
Status applyOverride(json &root, const std::string &assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::error("--set " + assignment + ": expected key=value");
  std::string key = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded())
    value = text;
  json *node = &root;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty())
      return Status::error("--set " + assignment + ": empty key component");
    if (!node->is_object())
      return Status::error("--set " + assignment + ": '" + part + "' is not inside an object");
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return Status::ok();
    }
    node = &(*node)[part];
    if (node->is_null())
      *node = json::object();
    start = dot + 1;
  }
}

size_t editDistance(const std::string &a, const std::string &b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

/// A --set whose top-level key neither this config nor the released
/// MiniMax-M2 config has is a typo, not a new key: it would change nothing.
Status checkOverrideKey(const json &root, const std::string &assignment) {
  const std::string key = assignment.substr(0, assignment.find_first_of("=."));
  if (key.empty() || root.contains(key))
    return Status::ok();
  static const json released = json::parse(presetConfigJson("minimax-m2"), nullptr, false);
  if (released.is_object() && released.contains(key))
    return Status::ok();
  // transformers 5 spellings m2c reads that the released config does not use.
  if (key == "rope_parameters" || key == "dtype")
    return Status::ok();
  std::string best;
  size_t bestDistance = 4; // suggest only close spellings
  for (const json *config : {&root, &released}) {
    if (!config->is_object())
      continue;
    for (auto it = config->begin(); it != config->end(); ++it)
      if (size_t d = editDistance(key, it.key()); d < bestDistance) {
        best = it.key();
        bestDistance = d;
      }
  }
  return Status::error("--set " + assignment + ": '" + key +
                       "' is not a key of this config nor of MiniMax-M2's" +
                       (best.empty() ? std::string() : " (did you mean '" + best + "'?)"));
}

/// Every --set, each checked first (checkOverrideKey).
Status applyOverrides(json &root, const std::vector<std::string> &overrides) {
  for (const std::string &assignment : overrides) {
    const json before = root;
    M2C_RETURN_IF_ERROR(applyOverride(root, assignment)); // its syntax first
    M2C_RETURN_IF_ERROR(checkOverrideKey(before, assignment));
  }
  return Status::ok();
}

Status parseQuantization(const json &root, const std::string &origin,
                         CheckpointQuantization &quant) {
  if (!root.contains("quantization_config") || root["quantization_config"].is_null())
    return Status::ok();
  const json &q = root["quantization_config"];
  const std::string key = "quantization_config";
  if (!q.is_object())
    return Status::error(origin + ": " + key + ": expected an object, got " + describe(q));
  if (!q.contains("quant_method") || !q["quant_method"].is_string())
    return Status::error(origin + ": " + key + ".quant_method: missing or not a string");
  quant.method = q["quant_method"].get<std::string>();
  if (quant.method != "fp8")
    return Status::error(origin + ": " + key + ".quant_method: '" + quant.method +
                         "' is not supported (supported: fp8)");
  if (q.contains("fmt") && (!q["fmt"].is_string() || q["fmt"] != "float8_e4m3fn"))
    return Status::error(origin + ": " + key + ".fmt: only float8_e4m3fn is supported, got " +
                         describe(q["fmt"]));
  if (q.contains("weight_block_size")) {
    const json &block = q["weight_block_size"];
    if (!block.is_array() || block.size() != 2 || !block[0].is_number_integer() ||
        !block[1].is_number_integer() || block[0].get<int64_t>() <= 0 ||
        block[1].get<int64_t>() <= 0)
      return Status::error(origin + ": " + key +
                           ".weight_block_size: expected [rows, cols] of positive integers, got " +
                           describe(block));
    quant.blockRows = block[0].get<int64_t>();
    quant.blockCols = block[1].get<int64_t>();
  }
  if (q.contains("modules_to_not_convert") && !q["modules_to_not_convert"].is_null()) {
    const json &list = q["modules_to_not_convert"];
    if (!list.is_array())
      return Status::error(origin + ": " + key +
                           ".modules_to_not_convert: expected a list of strings");
    for (const json &item : list) {
      if (!item.is_string())
        return Status::error(origin + ": " + key +
                             ".modules_to_not_convert: expected a list of strings, got " +
                             describe(item));
      quant.modulesToNotConvert.push_back(item.get<std::string>());
    }
  }
  return Status::ok();
}

Status parseJson(const json &root, const std::string &origin, ModelConfig &config) {
  if (!root.is_object())
    return Status::error(origin + ": expected a JSON object at the top level");
  ConfigReader reader(root, origin);
  M2C_RETURN_IF_ERROR(reader.optionalString("model_type", config.modelType));
  M2C_RETURN_IF_ERROR(reader.requireInt("vocab_size", config.vocabSize));
  M2C_RETURN_IF_ERROR(reader.requireInt("hidden_size", config.hiddenSize));
  M2C_RETURN_IF_ERROR(reader.requireInt("intermediate_size", config.intermediateSize));
  M2C_RETURN_IF_ERROR(reader.requireInt("num_hidden_layers", config.numHiddenLayers));
  M2C_RETURN_IF_ERROR(reader.requireInt("num_attention_heads", config.numAttentionHeads));
  M2C_RETURN_IF_ERROR(reader.requireInt("num_key_value_heads", config.numKeyValueHeads));
  M2C_RETURN_IF_ERROR(reader.requireInt("num_local_experts", config.numLocalExperts));
  M2C_RETURN_IF_ERROR(reader.requireInt("num_experts_per_tok", config.numExpertsPerTok));

  config.headDim = config.hiddenSize / config.numAttentionHeads;
  M2C_RETURN_IF_ERROR(reader.optionalInt("head_dim", config.headDim, 1));

  // transformers 5 spells partial RoPE and theta inside rope_parameters;
  // the released config uses rotary_dim and rope_theta at the top level.
  double partialFactor = 1.0;
  bool haveTheta = root.contains("rope_theta") && !root["rope_theta"].is_null();
  if (root.contains("rope_parameters") && root["rope_parameters"].is_object()) {
    ConfigReader rope(root["rope_parameters"], origin + ": rope_parameters");
    if (!haveTheta && root["rope_parameters"].contains("rope_theta")) {
      M2C_RETURN_IF_ERROR(rope.requireNumber("rope_theta", config.ropeTheta));
      haveTheta = true;
    }
    M2C_RETURN_IF_ERROR(rope.optionalNumber("partial_rotary_factor", partialFactor));
  }
  if (haveTheta)
    M2C_RETURN_IF_ERROR(reader.requireNumber("rope_theta", config.ropeTheta));
  else
    return reader.error("rope_theta", "missing required key");
  M2C_RETURN_IF_ERROR(reader.optionalNumber("partial_rotary_factor", partialFactor));
  config.rotaryDim = static_cast<int64_t>(std::llround(partialFactor * config.headDim));
  M2C_RETURN_IF_ERROR(reader.optionalInt("rotary_dim", config.rotaryDim, 0));

  M2C_RETURN_IF_ERROR(reader.optionalNumber("rms_norm_eps", config.rmsNormEps));
  M2C_RETURN_IF_ERROR(reader.optionalString("scoring_func", config.scoringFunc));
  M2C_RETURN_IF_ERROR(reader.optionalBool("use_routing_bias", config.useRoutingBias));
  M2C_RETURN_IF_ERROR(reader.optionalBool("use_qk_norm", config.useQkNorm));
  M2C_RETURN_IF_ERROR(reader.optionalString("qk_norm_type", config.qkNormType));
  M2C_RETURN_IF_ERROR(reader.optionalBool("tie_word_embeddings", config.tieWordEmbeddings));
  M2C_RETURN_IF_ERROR(
      reader.optionalInt("max_position_embeddings", config.maxPositionEmbeddings, 1));
  M2C_RETURN_IF_ERROR(reader.optionalBool("use_mtp", config.useMtp));
  M2C_RETURN_IF_ERROR(reader.optionalInt("num_mtp_modules", config.numMtpModules, 0));
  std::string dtype = config.torchDtype;
  if (root.contains("dtype"))
    M2C_RETURN_IF_ERROR(reader.optionalString("dtype", dtype));
  else
    M2C_RETURN_IF_ERROR(reader.optionalString("torch_dtype", dtype));
  config.torchDtype = dtype;

  int64_t sharedIntermediate = 0;
  M2C_RETURN_IF_ERROR(reader.optionalInt("shared_intermediate_size", sharedIntermediate, 0));
  if (sharedIntermediate != 0)
    return reader.error("shared_intermediate_size",
                        "shared experts are not supported, got " +
                            std::to_string(sharedIntermediate));

  if (root.contains("attn_type_list") && !root["attn_type_list"].is_null()) {
    const json &list = root["attn_type_list"];
    if (!list.is_array())
      return reader.error("attn_type_list", "expected a list of integers, got " + describe(list));
    if (static_cast<int64_t>(list.size()) != config.numHiddenLayers)
      return reader.error("attn_type_list", "has " + std::to_string(list.size()) +
                                                " entries but num_hidden_layers is " +
                                                std::to_string(config.numHiddenLayers) +
                                                " (set both: --set num_hidden_layers=N --set "
                                                "'attn_type_list=[1,...]' with N ones)");
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_number_integer())
        return reader.error("attn_type_list",
                            "entry " + std::to_string(i) + ": expected an integer, got " +
                                describe(list[i]));
      if (list[i].get<int64_t>() != 1)
        return reader.error("attn_type_list",
                            "layer " + std::to_string(i) + " has attention type " +
                                describe(list[i]) +
                                ", which is not supported (only 1, full softmax attention)");
    }
  }
  M2C_RETURN_IF_ERROR(parseQuantization(root, origin, config.quantization));
  return validateModelConfig(config, origin);
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad())
    return false;
  out = buffer.str();
  return true;
}

bool isDirectory(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

} // namespace

bool CheckpointQuantization::appliesTo(const std::string &tensorName) const {
  if (!isFp8())
    return false;
  for (const std::string &module : modulesToNotConvert) {
    // Match whole dotted components so "gate" does not catch "gate_up_proj".
    size_t pos = 0;
    while ((pos = tensorName.find(module, pos)) != std::string::npos) {
      bool startOk = pos == 0 || tensorName[pos - 1] == '.';
      size_t end = pos + module.size();
      bool endOk = end == tensorName.size() || tensorName[end] == '.';
      if (startOk && endOk)
        return false;
      pos = end;
    }
  }
  return true;
}

Status validateModelConfig(const ModelConfig &c, const std::string &origin) {
  auto fail = [&](const std::string &key, const std::string &why) {
    return Status::error(origin + ": " + key + ": " + why);
  };
  if (c.numAttentionHeads % c.numKeyValueHeads != 0)
    return fail("num_attention_heads",
                "num_attention_heads (" + std::to_string(c.numAttentionHeads) +
                    ") must be a multiple of num_key_value_heads (" +
                    std::to_string(c.numKeyValueHeads) + ")");
  if (c.rotaryDim % 2 != 0 || c.rotaryDim > c.headDim)
    return fail("rotary_dim", "rotary_dim (" + std::to_string(c.rotaryDim) +
                                  ") must be even and at most head_dim (" +
                                  std::to_string(c.headDim) + ")");
  if (c.numExpertsPerTok > c.numLocalExperts)
    return fail("num_experts_per_tok", "num_experts_per_tok (" +
                                           std::to_string(c.numExpertsPerTok) +
                                           ") exceeds num_local_experts (" +
                                           std::to_string(c.numLocalExperts) + ")");
  if (c.scoringFunc != "sigmoid" && c.scoringFunc != "softmax")
    return fail("scoring_func", "expected \"sigmoid\" or \"softmax\", got \"" + c.scoringFunc + "\"");
  if (c.useQkNorm && c.qkNormType != "per_layer")
    return fail("qk_norm_type",
                "only \"per_layer\" QK-norm is supported, got \"" + c.qkNormType + "\"");
  if (c.modelType != "minimax_m2" && c.modelType != "minimax")
    return fail("model_type", "expected \"minimax_m2\", got \"" + c.modelType + "\"");
  return Status::ok();
}

StatusOr<ModelConfig> parseModelConfig(const std::string &jsonText, const std::string &origin,
                                       const std::vector<std::string> &overrides) {
  json root = json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return Status::error(origin + ": not valid JSON");
  if (!root.is_object())
    return Status::error(origin + ": expected a JSON object at the top level");
  M2C_RETURN_IF_ERROR(applyOverrides(root, overrides));
  ModelConfig config;
  M2C_RETURN_IF_ERROR(parseJson(root, origin, config));
  return config;
}

StatusOr<ModelConfig> loadModelConfigFile(const std::string &path,
                                          const std::vector<std::string> &overrides) {
  std::string file = isDirectory(path) ? path + "/config.json" : path;
  std::string text;
  if (!readFile(file, text))
    return Status::error(file + ": cannot read file");
  return parseModelConfig(text, file, overrides);
}

StatusOr<ModelConfig> resolveModelConfig(const std::string &model,
                                         const std::vector<std::string> &overrides) {
  std::string preset = presetConfigJson(model);
  if (!preset.empty())
    return parseModelConfig(preset, "preset '" + model + "'", overrides);
  struct stat info;
  if (stat(model.c_str(), &info) != 0) {
    std::string names;
    for (const std::string &name : presetNames())
      names += (names.empty() ? "" : ", ") + name;
    return Status::error(model + ": no such file, directory or preset (presets: " + names + ")");
  }
  return loadModelConfigFile(model, overrides);
}

StatusOr<std::string> resolveModelConfigText(const std::string &model,
                                             const std::vector<std::string> &overrides,
                                             std::string *origin) {
  std::string text = presetConfigJson(model);
  *origin = "preset '" + model + "'";
  if (text.empty()) {
    struct stat info;
    if (stat(model.c_str(), &info) != 0)
      return resolveModelConfig(model, overrides).status();
    *origin = isDirectory(model) ? model + "/config.json" : model;
    if (!readFile(*origin, text))
      return Status::error(*origin + ": cannot read file");
  }
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return Status::error(*origin + ": not valid JSON");
  if (!root.is_object())
    return Status::error(*origin + ": expected a JSON object at the top level");
  M2C_RETURN_IF_ERROR(applyOverrides(root, overrides));
  return root.dump(1, ' ', false, json::error_handler_t::replace);
}

} // namespace m2c
