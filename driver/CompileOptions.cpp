//===- CompileOptions.cpp - Checking and resolving compile options --------===//

#include "driver/CompileOptions.h"
#include "driver/CompileDriver.h"

#include "passes/Pipeline.h"

namespace m2c::driver {

bool isGpuTarget(const std::string &target) {
  return target == "sm_80" || target == "sm_90" || target == "sm_90a";
}

std::string compileTargets(bool gpuOnly) {
  return gpuOnly ? "sm_80, sm_90 or sm_90a" : "cpu, sm_80, sm_90 or sm_90a";
}

StatusOr<CompileSetup> resolveCompileOptions(const CompileOptions &o) {
  CompileSetup setup;
  setup.gpu = isGpuTarget(o.target);
  if (!setup.gpu && (o.gpuOnly || o.target != "cpu"))
    return Status::error("--target: expected " + compileTargets(o.gpuOnly) + ", got '" +
                         o.target + "'");
  if (!o.tuningFile.empty() && !setup.gpu)
    return Status::error("--tuning: only GPU targets are tiled (got --target " + o.target + ")");
  if (o.samplingCandidates < 0 || o.samplingCandidates > 4096)
    return Status::error("--sampling-candidates: expected 0..4096, got " +
                         std::to_string(o.samplingCandidates));
  if (o.kvBlockSize <= 0 || o.kvBlockSize > 4096)
    return Status::error("--kv-block-size: expected 1..4096, got " +
                         std::to_string(o.kvBlockSize));
  StatusOr<plan::ElementType> kvType =
      plan::parseKvCacheType(o.kvCacheType.empty() ? (setup.gpu ? "bf16" : "f32") : o.kvCacheType);
  if (!kvType)
    return Status::error("--kv-cache-dtype: " + kvType.status().message());
  if (o.maxTokens <= 0 || o.maxTokens > (1 << 20))
    return Status::error("--max-tokens: expected 1..1048576, got " + std::to_string(o.maxTokens));

  CompileRequest &request = setup.request;
  request.model = o.model;
  request.overrides = o.overrides;
  request.frontend.kvBlockSize = o.kvBlockSize;
  request.frontend.kvCacheType = *kvType;
  request.plan.target = o.target;
  request.plan.maxTokens = o.maxTokens;

  PassOptions &passes = setup.passes;
  passes.pipeline.disabledPasses.insert(o.disabledPasses.begin(), o.disabledPasses.end());
  passes.printAfter = o.printIrAfter;
  passes.printAfterAll = o.printIrAfterAll;
  passes.pipeline.samplingCandidates = o.samplingCandidates;
  std::string quantError;
  if (mlir::failed(parseQuantSpec(o.quant, passes.pipeline, quantError)))
    return Status::error(quantError);
  if (setup.gpu) {
    passes.pipeline.target = o.target;
    passes.pipeline.tuningFile = o.tuningFile;
  }
  return setup;
}

} // namespace m2c::driver
