//===- Pipeline.cpp - The one m2c compile pipeline ------------------------===//

#include "passes/Pipeline.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassRegistry.h"

namespace m2c {

const std::vector<std::string> &compilePipelinePasses() {
  static const std::vector<std::string> passes = {"m2c-fuse-add-rmsnorm",
                                                  "m2c-fuse-moe-residual"};
  return passes;
}

void buildCompilePipeline(mlir::OpPassManager &pm, const PipelineOptions &options) {
  auto enabled = [&](const char *name) { return !options.disabledPasses.count(name); };
  mlir::OpPassManager &funcs = pm.nest<mlir::func::FuncOp>();

  // Stage 1, fusion (per entry point). Post-conditions: no norm.rms reads
  // an arith.addf result (it is a norm.add_rms); no arith.addf reads a
  // single-use moe.experts result (the residual is the experts' operand).
  // Each fusion keeps the arithmetic of the unfused ops, so the fused plan
  // equals the unfused one on the CPU backend.
  if (enabled("m2c-fuse-add-rmsnorm"))
    funcs.addPass(createFuseAddRmsNorm());
  if (enabled("m2c-fuse-moe-residual"))
    funcs.addPass(createFuseMoeResidual());

  // Stage 2, quantization, and stage 3, tiling, are not written yet: the
  // IR leaving the pipeline holds weights in their checkpoint types and no
  // tile decisions.
}

void registerCompilePipeline() {
  mlir::PassPipelineRegistration<>(
      "m2c-compile-pipeline", "The passes m2c compile runs, in order",
      [](mlir::OpPassManager &pm) { buildCompilePipeline(pm, PipelineOptions()); });
}

} // namespace m2c
