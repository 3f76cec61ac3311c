//===- InspectCommand.cpp - m2c inspect: what an artifact holds -----------===//

#include "Commands.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/model/ModelConfig.h"
#include "runtime/plan/KernelCost.h"
#include "runtime/support/HumanBytes.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

using namespace llvm;

namespace m2c::tools {

cl::SubCommand inspectCommand("inspect", "Show what an artifact holds");

namespace {

cl::OptionCategory inspectCategory("m2c inspect options");

cl::opt<std::string> artifactArg(cl::Positional, cl::desc("ARTIFACT"), cl::init(""),
                                 cl::sub(inspectCommand), cl::cat(inspectCategory));

} // namespace

int runInspect() {
  if (artifactArg.empty())
    return reportError("inspect: give an ARTIFACT (see 'm2c inspect --help')");
  StatusOr<Artifact> artifact = Artifact::load(artifactArg);
  if (!artifact)
    return reportError(artifact.status().message());
  const plan::Plan &plan = artifact->plan();
  raw_ostream &os = outs();
  os << "artifact: " << artifactArg << " (format " << kArtifactFormatVersion << ", plan version "
     << plan.version << ")\n";
  os << "target: " << plan.target;
  if (!plan.gpu.kernels.empty())
    os << " (" << plan.gpu.kernels.size() << " PTX kernels"
       << (plan.gpu.gridDependencyControl ? ", programmatic dependent launch" : "") << ")";
  os << "\n";

  StatusOr<ModelConfig> config = parseModelConfig(plan.configJson, "the artifact's config.json");
  if (config)
    os << "model: " << config->modelType << ", " << config->numHiddenLayers << " layers, hidden "
       << config->hiddenSize << ", " << config->numAttentionHeads << "/"
       << config->numKeyValueHeads << " heads of " << config->headDim << ", "
       << config->numLocalExperts << " experts top-" << config->numExpertsPerTok << ", vocabulary "
       << config->vocabSize << "\n";
  else
    os << "model: unknown (" << config.status().message() << ")\n";

  // Weights by format, as the plan stores them.
  std::map<std::string, std::pair<int64_t, double>> formats;
  double stored = 0;
  for (const plan::Weight &w : plan.weights) {
    std::string format = w.quantization != plan::Quantization::None
                             ? plan::quantizationName(w.quantization)
                             : plan::elementTypeName(w.storage.type);
    formats[format].first += 1;
    formats[format].second += static_cast<double>(w.storageBytes());
    stored += static_cast<double>(w.storageBytes());
  }
  os << "weights: " << plan.weights.size() << " tensors, " << humanBytes(stored) << " as stored, "
     << plan.weightsMode;
  if (plan.weightsMode == "embed")
    os << " (" << humanBytes(static_cast<double>(artifact->weightBytes())) << " in the file)";
  os << "\n";
  for (const auto &[format, count] : formats)
    os << "  " << format << ": " << count.first << " tensors, " << humanBytes(count.second) << "\n";
  if (plan.weightsMode == "external")
    os << "checkpoint: " << plan.checkpointPath << " (fingerprint "
       << plan.checkpointFingerprint << ")\n";

  const plan::KvCacheSpec &kv = plan.kvCache;
  os << "kv cache: " << plan::elementTypeName(kv.type) << ", blocks of " << kv.blockSize
     << " tokens, " << format("%.1f", kv.tokenBytes() * kv.layers / 1024.0)
     << " KiB per token\n";
  os << "steps: up to " << plan.maxTokens << " tokens, arena " << humanBytes(plan.arenaBytes())
     << "\n";
  for (const plan::Entry &entry : plan.entries) {
    std::set<std::string> tileKeys;
    for (const plan::Kernel &k : entry.kernels)
      if (!k.tileKey.empty())
        tileKeys.insert(k.tileKey);
    os << "entry @" << entry.name << ": " << entry.kernels.size() << " kernels";
    if (!tileKeys.empty())
      os << ", " << tileKeys.size() << " tiled shapes";
    if (!entry.lastTokenLogits) {
      // What a decode step must read at batch 1 and a 1024-token context.
      double bytes = 0;
      for (const plan::Kernel &k : entry.kernels) {
        KernelCost cost = estimateKernelCost(plan, entry, k, StepShape{1, 1024});
        bytes += cost.weightBytes + cost.cacheBytes;
      }
      os << "; one token at context 1024 reads " << humanBytes(bytes);
    }
    os << "\n";
  }
  return 0;
}

} // namespace m2c::tools
