//===- PlanJson.cpp - The plan as JSON, read defensively ------------------===//
//
// Artifacts come from anywhere, so reading checks every type and range and
// names the offending field; verifyPlan then checks the semantics.
//
//===----------------------------------------------------------------------===//

#include "runtime/plan/Plan.h"

#include <nlohmann/json.hpp>

namespace m2c::plan {
namespace {

using json = nlohmann::json;
// Written in insertion order, so a plan reads top-down: header, weights,
// then each entry's buffers and kernels.
using ordered_json = nlohmann::ordered_json;

ordered_json operandToJson(const Operand &op) {
  switch (op.kind) {
  case Operand::Kind::Input:
    return {{"input", entryInputName(static_cast<EntryInput>(op.index))}};
  case Operand::Kind::Buffer:
    return {{"buffer", op.index}};
  case Operand::Kind::Weight:
    return {{"weight", op.index}};
  }
  return nullptr;
}

/// Typed access to a JSON object; errors name the path.
class Reader {
public:
  Reader(const json &node, std::string path) : node_(node), path_(std::move(path)) {}

  Status error(const std::string &key, const std::string &why) const {
    return Status::error("plan: " + path_ + (key.empty() ? "" : "." + key) + ": " + why);
  }
  Status object() const {
    return node_.is_object() ? Status::ok() : error("", "expected an object");
  }
  bool has(const char *key) const { return node_.contains(key); }
  const json &at(const char *key) const { return node_[key]; }

  Status integer(const char *key, int64_t &out, int64_t min = 0,
                 int64_t max = int64_t(1) << 50) const {
    if (!node_.contains(key) || !node_[key].is_number_integer())
      return error(key, "expected an integer");
    out = node_[key].get<int64_t>();
    if (out < min || out > max)
      return error(key, "value " + std::to_string(out) + " out of range");
    return Status::ok();
  }
  Status uinteger(const char *key, uint64_t &out) const {
    int64_t value = 0;
    M2C_RETURN_IF_ERROR(integer(key, value, 0, int64_t(1) << 62));
    out = static_cast<uint64_t>(value);
    return Status::ok();
  }
  Status string(const char *key, std::string &out) const {
    if (!node_.contains(key) || !node_[key].is_string())
      return error(key, "expected a string");
    out = node_[key].get<std::string>();
    return Status::ok();
  }
  Status boolean(const char *key, bool &out) const {
    if (!node_.contains(key) || !node_[key].is_boolean())
      return error(key, "expected true or false");
    out = node_[key].get<bool>();
    return Status::ok();
  }
  Status array(const char *key, size_t maxSize = size_t(1) << 24) const {
    if (!node_.contains(key) || !node_[key].is_array())
      return error(key, "expected an array");
    if (node_[key].size() > maxSize)
      return error(key, "too many entries");
    return Status::ok();
  }
  Status elementType(const char *key, ElementType &out) const {
    std::string name;
    M2C_RETURN_IF_ERROR(string(key, name));
    StatusOr<ElementType> type = parseElementType(name);
    if (!type)
      return error(key, type.status().message());
    out = *type;
    return Status::ok();
  }
  const std::string &path() const { return path_; }

private:
  const json &node_;
  std::string path_;
};

Status readOperand(const json &node, const std::string &path, Operand &op) {
  Reader r(node, path);
  M2C_RETURN_IF_ERROR(r.object());
  if (r.has("input")) {
    std::string name;
    M2C_RETURN_IF_ERROR(r.string("input", name));
    for (int i = 0; i < kNumEntryInputs; ++i)
      if (name == entryInputName(static_cast<EntryInput>(i))) {
        op = Operand::input(static_cast<EntryInput>(i));
        return Status::ok();
      }
    return r.error("input", "unknown entry input '" + name + "'");
  }
  int64_t index = 0;
  if (r.has("buffer")) {
    M2C_RETURN_IF_ERROR(r.integer("buffer", index));
    op = Operand::buffer(index);
    return Status::ok();
  }
  if (r.has("weight")) {
    M2C_RETURN_IF_ERROR(r.integer("weight", index));
    op = Operand::weight(index);
    return Status::ok();
  }
  return r.error("", "expected one of input, buffer, weight");
}

Status readKernel(const json &node, const std::string &path, Kernel &k) {
  Reader r(node, path);
  M2C_RETURN_IF_ERROR(r.object());
  std::string kind;
  M2C_RETURN_IF_ERROR(r.string("kind", kind));
  StatusOr<KernelKind> parsed = parseKernelKind(kind);
  if (!parsed)
    return r.error("kind", parsed.status().message());
  k.kind = *parsed;
  M2C_RETURN_IF_ERROR(r.string("name", k.name));
  if (r.has("tile_key"))
    M2C_RETURN_IF_ERROR(r.string("tile_key", k.tileKey));
  M2C_RETURN_IF_ERROR(r.array("inputs", 16));
  for (size_t i = 0; i < r.at("inputs").size(); ++i) {
    Operand op;
    M2C_RETURN_IF_ERROR(readOperand(r.at("inputs")[i], path + ".inputs[" + std::to_string(i) + "]", op));
    k.inputs.push_back(op);
  }
  M2C_RETURN_IF_ERROR(r.array("outputs", 16));
  for (const json &out : r.at("outputs")) {
    if (!out.is_number_integer())
      return r.error("outputs", "expected buffer ids");
    k.outputs.push_back(out.get<int64_t>());
  }
  if (r.has("attrs")) {
    const json &attrs = r.at("attrs");
    if (!attrs.is_object())
      return r.error("attrs", "expected an object");
    for (auto it = attrs.begin(); it != attrs.end(); ++it) {
      if (!it.value().is_number())
        return r.error("attrs." + it.key(), "expected a number");
      k.attrs[it.key()] = it.value().get<double>();
    }
  }
  return Status::ok();
}

Status readEntry(const json &node, const std::string &path, Entry &entry) {
  Reader r(node, path);
  M2C_RETURN_IF_ERROR(r.object());
  M2C_RETURN_IF_ERROR(r.string("name", entry.name));
  M2C_RETURN_IF_ERROR(r.boolean("last_token_logits", entry.lastTokenLogits));
  M2C_RETURN_IF_ERROR(r.integer("output", entry.output));
  if (r.has("greedy_ids"))
    M2C_RETURN_IF_ERROR(r.integer("greedy_ids", entry.greedyIds));
  if (r.has("candidate_ids"))
    M2C_RETURN_IF_ERROR(r.integer("candidate_ids", entry.candidateIds));
  if (r.has("candidate_logits"))
    M2C_RETURN_IF_ERROR(r.integer("candidate_logits", entry.candidateLogits));
  M2C_RETURN_IF_ERROR(r.integer("arena_bytes", entry.arenaBytes));
  M2C_RETURN_IF_ERROR(r.array("buffers"));
  for (size_t i = 0; i < r.at("buffers").size(); ++i) {
    Reader b(r.at("buffers")[i], path + ".buffers[" + std::to_string(i) + "]");
    M2C_RETURN_IF_ERROR(b.object());
    Buffer buffer;
    M2C_RETURN_IF_ERROR(b.string("name", buffer.name));
    M2C_RETURN_IF_ERROR(b.elementType("type", buffer.type));
    M2C_RETURN_IF_ERROR(b.integer("cols", buffer.cols, 1));
    M2C_RETURN_IF_ERROR(b.integer("static_rows", buffer.staticRows));
    M2C_RETURN_IF_ERROR(b.integer("offset", buffer.offset));
    entry.buffers.push_back(buffer);
  }
  M2C_RETURN_IF_ERROR(r.array("kernels"));
  for (size_t i = 0; i < r.at("kernels").size(); ++i) {
    Kernel k;
    M2C_RETURN_IF_ERROR(readKernel(r.at("kernels")[i], path + ".kernels[" + std::to_string(i) + "]", k));
    entry.kernels.push_back(std::move(k));
  }
  return Status::ok();
}

} // namespace

std::string planToJson(const Plan &plan) {
  ordered_json root;
  root["format"] = "m2c-plan";
  root["version"] = plan.version;
  root["target"] = plan.target;
  root["max_tokens"] = plan.maxTokens;
  root["vocab_size"] = plan.vocabSize;
  root["hidden_size"] = plan.hiddenSize;
  root["kv_cache"] = {{"layers", plan.kvCache.layers},
                      {"kv_heads", plan.kvCache.kvHeads},
                      {"head_dim", plan.kvCache.headDim},
                      {"block_size", plan.kvCache.blockSize},
                      {"type", elementTypeName(plan.kvCache.type)}};
  root["weights_mode"] = plan.weightsMode;
  root["checkpoint_path"] = plan.checkpointPath;
  root["checkpoint_fingerprint"] = plan.checkpointFingerprint;
  root["config_json"] = plan.configJson;
  ordered_json weights = ordered_json::array();
  for (const Weight &w : plan.weights) {
    ordered_json weight = {{"symbol", w.symbol},
                           {"binding", w.binding},
                           {"shape", w.shape},
                           {"type", elementTypeName(w.type)},
                           {"quantization", quantizationName(w.quantization)},
                           {"storage",
                            {{"type", elementTypeName(w.storage.type)},
                             {"offset", w.storage.offset},
                             {"bytes", w.storage.bytes}}}};
    if (!w.parts.empty()) {
      ordered_json parts = ordered_json::array();
      for (const WeightPart &part : w.parts)
        parts.push_back({{"binding", part.binding}, {"rows", part.rows}});
      weight["parts"] = std::move(parts);
    }
    weights.push_back(std::move(weight));
  }
  root["weights"] = std::move(weights);
  ordered_json entries = ordered_json::array();
  for (const Entry &entry : plan.entries) {
    ordered_json buffers = ordered_json::array();
    for (const Buffer &b : entry.buffers)
      buffers.push_back({{"name", b.name},
                         {"type", elementTypeName(b.type)},
                         {"cols", b.cols},
                         {"static_rows", b.staticRows},
                         {"offset", b.offset}});
    ordered_json kernels = ordered_json::array();
    for (const Kernel &k : entry.kernels) {
      ordered_json inputs = ordered_json::array();
      for (const Operand &op : k.inputs)
        inputs.push_back(operandToJson(op));
      ordered_json attrs = ordered_json::object();
      for (const auto &[key, value] : k.attrs)
        attrs[key] = value;
      ordered_json kernel = {{"kind", kernelKindName(k.kind)},
                             {"name", k.name},
                             {"inputs", std::move(inputs)},
                             {"outputs", k.outputs},
                             {"attrs", std::move(attrs)}};
      if (!k.tileKey.empty())
        kernel["tile_key"] = k.tileKey;
      kernels.push_back(std::move(kernel));
    }
    ordered_json node = {{"name", entry.name},
                         {"last_token_logits", entry.lastTokenLogits},
                         {"output", entry.output}};
    if (entry.greedyIds >= 0)
      node["greedy_ids"] = entry.greedyIds;
    if (entry.candidateIds >= 0) {
      node["candidate_ids"] = entry.candidateIds;
      node["candidate_logits"] = entry.candidateLogits;
    }
    node["arena_bytes"] = entry.arenaBytes;
    node["buffers"] = std::move(buffers);
    node["kernels"] = std::move(kernels);
    entries.push_back(std::move(node));
  }
  root["entries"] = std::move(entries);
  if (plan.target != "cpu")
    root["gpu"] = ordered_json::parse(gpuProgramToJson(plan.gpu));
  return root.dump(1);
}

StatusOr<Plan> planFromJson(const std::string &text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return Status::error("plan: not valid JSON");
  Reader r(root, "plan");
  M2C_RETURN_IF_ERROR(r.object());
  std::string format;
  M2C_RETURN_IF_ERROR(r.string("format", format));
  if (format != "m2c-plan")
    return r.error("format", "expected \"m2c-plan\", got \"" + format + "\"");
  Plan plan;
  M2C_RETURN_IF_ERROR(r.integer("version", plan.version));
  if (plan.version != kPlanVersion)
    return Status::error("plan version " + std::to_string(plan.version) +
                         " is not supported (expected " + std::to_string(kPlanVersion) + ")");
  M2C_RETURN_IF_ERROR(r.string("target", plan.target));
  M2C_RETURN_IF_ERROR(r.integer("max_tokens", plan.maxTokens, 1));
  M2C_RETURN_IF_ERROR(r.integer("vocab_size", plan.vocabSize, 1));
  M2C_RETURN_IF_ERROR(r.integer("hidden_size", plan.hiddenSize, 1));
  M2C_RETURN_IF_ERROR(r.string("weights_mode", plan.weightsMode));
  M2C_RETURN_IF_ERROR(r.string("checkpoint_path", plan.checkpointPath));
  M2C_RETURN_IF_ERROR(r.string("checkpoint_fingerprint", plan.checkpointFingerprint));
  M2C_RETURN_IF_ERROR(r.string("config_json", plan.configJson));
  if (!r.has("kv_cache"))
    return r.error("kv_cache", "missing");
  Reader cache(r.at("kv_cache"), "plan.kv_cache");
  M2C_RETURN_IF_ERROR(cache.object());
  M2C_RETURN_IF_ERROR(cache.integer("layers", plan.kvCache.layers, 1));
  M2C_RETURN_IF_ERROR(cache.integer("kv_heads", plan.kvCache.kvHeads, 1));
  M2C_RETURN_IF_ERROR(cache.integer("head_dim", plan.kvCache.headDim, 1));
  M2C_RETURN_IF_ERROR(cache.integer("block_size", plan.kvCache.blockSize, 1));
  M2C_RETURN_IF_ERROR(cache.elementType("type", plan.kvCache.type));

  M2C_RETURN_IF_ERROR(r.array("weights"));
  for (size_t i = 0; i < r.at("weights").size(); ++i) {
    std::string path = "weights[" + std::to_string(i) + "]";
    Reader w(r.at("weights")[i], path);
    M2C_RETURN_IF_ERROR(w.object());
    Weight weight;
    M2C_RETURN_IF_ERROR(w.string("symbol", weight.symbol));
    M2C_RETURN_IF_ERROR(w.string("binding", weight.binding));
    M2C_RETURN_IF_ERROR(w.elementType("type", weight.type));
    std::string quantization;
    M2C_RETURN_IF_ERROR(w.string("quantization", quantization));
    StatusOr<Quantization> parsedQuantization = parseQuantization(quantization);
    if (!parsedQuantization)
      return w.error("quantization", parsedQuantization.status().message());
    weight.quantization = *parsedQuantization;
    M2C_RETURN_IF_ERROR(w.array("shape", 3));
    for (const json &d : w.at("shape")) {
      if (!d.is_number_integer())
        return w.error("shape", "expected integers");
      weight.shape.push_back(d.get<int64_t>());
    }
    if (!w.has("storage"))
      return w.error("storage", "missing");
    Reader s(w.at("storage"), path + ".storage");
    M2C_RETURN_IF_ERROR(s.object());
    M2C_RETURN_IF_ERROR(s.elementType("type", weight.storage.type));
    M2C_RETURN_IF_ERROR(s.uinteger("offset", weight.storage.offset));
    M2C_RETURN_IF_ERROR(s.uinteger("bytes", weight.storage.bytes));
    if (w.has("parts")) {
      M2C_RETURN_IF_ERROR(w.array("parts", 64));
      for (size_t j = 0; j < w.at("parts").size(); ++j) {
        Reader p(w.at("parts")[j], path + ".parts[" + std::to_string(j) + "]");
        M2C_RETURN_IF_ERROR(p.object());
        WeightPart part;
        M2C_RETURN_IF_ERROR(p.string("binding", part.binding));
        M2C_RETURN_IF_ERROR(p.integer("rows", part.rows, 1));
        weight.parts.push_back(std::move(part));
      }
    }
    plan.weights.push_back(std::move(weight));
  }
  M2C_RETURN_IF_ERROR(r.array("entries", 16));
  for (size_t i = 0; i < r.at("entries").size(); ++i) {
    Entry entry;
    M2C_RETURN_IF_ERROR(readEntry(r.at("entries")[i], "entries[" + std::to_string(i) + "]", entry));
    plan.entries.push_back(std::move(entry));
  }
  M2C_RETURN_IF_ERROR(verifyPlan(plan));
  if (plan.target != "cpu") {
    if (!root.contains("gpu"))
      return Status::error("plan: target " + plan.target + " needs a \"gpu\" program");
    StatusOr<GpuProgram> gpu = gpuProgramFromJson(root["gpu"].dump(), plan);
    if (!gpu)
      return gpu.status();
    if (gpu->target != plan.target)
      return Status::error("plan: gpu program for " + gpu->target + " in a plan for " +
                           plan.target);
    plan.gpu = gpu.take();
  }
  return plan;
}

} // namespace m2c::plan
