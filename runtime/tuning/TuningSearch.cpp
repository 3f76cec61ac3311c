//===- TuningSearch.cpp - Reading a tuning space, choosing per kernel -----===//

#include "runtime/tuning/TuningSearch.h"

#include <nlohmann/json.hpp>

namespace m2c {

namespace {

using json = nlohmann::json;

Status readSetting(const json &node, const std::string &path, TileSetting &out) {
  if (!node.is_object())
    return Status::error(path + ": expected an object");
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() <= 0)
      return Status::error(path + "." + it.key() + ": expected a positive integer");
    out[it.key()] = it.value().get<int64_t>();
  }
  return Status::ok();
}

} // namespace

StatusOr<TuningSpace> parseTuningSpace(const std::string &text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    return Status::error("space.json: not a JSON object");
  if (!root.contains("version") || root["version"] != 1)
    return Status::error("space.json: expected \"version\": 1");
  TuningSpace space;
  for (const char *key : {"model", "target"}) {
    if (!root.contains(key) || !root[key].is_string())
      return Status::error(std::string("space.json: missing \"") + key + "\"");
  }
  space.model = root["model"].get<std::string>();
  space.target = root["target"].get<std::string>();
  if (!root.contains("candidates") || !root["candidates"].is_array() ||
      root["candidates"].empty() || root["candidates"].size() > 1024)
    return Status::error("space.json: \"candidates\" must be an array of 1 to 1024 entries");
  for (size_t i = 0; i < root["candidates"].size(); ++i) {
    const json &node = root["candidates"][i];
    std::string path = "space.json: candidates[" + std::to_string(i) + "]";
    if (!node.is_object() || !node.contains("artifact") || !node["artifact"].is_string() ||
        !node.contains("kernels") || !node["kernels"].is_object())
      return Status::error(path + ": expected {\"artifact\": FILE, \"kernels\": {...}}");
    TuningSpace::Candidate candidate;
    candidate.artifact = node["artifact"].get<std::string>();
    if (candidate.artifact.empty() || candidate.artifact.find('/') != std::string::npos)
      return Status::error(path + ".artifact: expected a file name in the space's directory");
    for (auto it = node["kernels"].begin(); it != node["kernels"].end(); ++it)
      M2C_RETURN_IF_ERROR(readSetting(it.value(), path + ".kernels." + it.key(),
                                      candidate.kernels[it.key()]));
    space.candidates.push_back(std::move(candidate));
  }
  return space;
}

StatusOr<std::vector<TuningChoice>> chooseTuning(const TuningSpace &space,
                                                 const std::vector<CandidateResult> &results,
                                                 double errorBound, double minGain) {
  if (results.size() != space.candidates.size())
    return Status::error("expected one result per candidate");
  if (!(results[0].logitsError <= errorBound))
    return Status::error("candidate 0 (the cost model's choice) is its own reference");
  const size_t numSteps = results[0].steps.size();
  std::vector<double> stepTotal(numSteps, 0);
  for (size_t s = 0; s < numSteps; ++s)
    for (const auto &[key, us] : results[0].steps[s])
      stepTotal[s] += us;
  for (const CandidateResult &result : results)
    if (result.steps.size() != numSteps)
      return Status::error("every candidate must be measured on the same steps");

  std::vector<TuningChoice> choices;
  for (const auto &[key, setting] : space.candidates[0].kernels) {
    // -1: the key has no kernel in some step of this candidate.
    auto costOf = [&, key = key](size_t c) -> double {
      double cost = 0;
      bool seen = false;
      for (size_t s = 0; s < numSteps; ++s) {
        auto it = results[c].steps[s].find(key);
        if (it == results[c].steps[s].end() || stepTotal[s] <= 0)
          continue;
        cost += it->second / stepTotal[s];
        seen = true;
      }
      return seen ? cost : -1;
    };
    TuningChoice choice{key, 0, costOf(0), costOf(0), setting};
    if (choice.defaultCost < 0)
      return Status::error("no kernel of candidate 0 has tiling key '" + key + "'");
    for (size_t c = 1; c < space.candidates.size(); ++c) {
      auto it = space.candidates[c].kernels.find(key);
      double cost = costOf(c);
      if (it == space.candidates[c].kernels.end() || cost < 0 ||
          !(results[c].logitsError <= errorBound))
        continue;
      if (cost < choice.chosenCost) {
        choice.candidate = c;
        choice.chosenCost = cost;
        choice.setting = it->second;
      }
    }
    if (choice.chosenCost > choice.defaultCost * (1 - minGain)) {
      choice.candidate = 0;
      choice.chosenCost = choice.defaultCost;
      choice.setting = setting;
    }
    choices.push_back(std::move(choice));
  }
  return choices;
}

std::string tuningFileJson(const TuningSpace &space, const std::vector<TuningChoice> &choices) {
  nlohmann::ordered_json kernels = nlohmann::ordered_json::object();
  for (const TuningChoice &choice : choices) {
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (const auto &[name, value] : choice.setting)
      params[name] = value;
    kernels[choice.key] = params;
  }
  nlohmann::ordered_json root = {{"version", 1}, {"target", space.target}, {"kernels", kernels}};
  return root.dump(2) + "\n";
}

} // namespace m2c
