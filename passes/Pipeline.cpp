//===- Pipeline.cpp - The one m2c compile pipeline ------------------------===//

#include "passes/Pipeline.h"
#include "passes/Passes.h"
#include "runtime/plan/Quantization.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassRegistry.h"

namespace m2c {

const std::vector<std::string> &compilePipelinePasses() {
  static const std::vector<std::string> passes = {
      "m2c-fuse-add-rmsnorm", "m2c-fuse-moe-residual", "m2c-fuse-qk-norm",
      "m2c-fuse-norm-route", "m2c-fuse-decode-tail",
      "m2c-quantize-weights", "m2c-fuse-projections",
      "m2c-tile-kernels"};
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
  // ... and no attn.gqa reads single-use norm.rms queries and keys (the
  // QK-norm runs inside the attention kernel, before RoPE; on the GPU the
  // KV-write and attend launches each normalise the rows they read).
  if (enabled("m2c-fuse-qk-norm"))
    funcs.addPass(createFuseQkNorm());
  // ... and no moe.route reads a norm.add_rms result (the router kernel
  // normalises its token's row itself and writes the sum and the norm).
  if (enabled("m2c-fuse-norm-route"))
    funcs.addPass(createFuseNormRoute());
  // ... and no entry point returns the lm_head matmul of a norm.rms: it
  // returns the logits, greedy ids and sampling candidates of one
  // norm.rms_logits.
  if (enabled("m2c-fuse-decode-tail")) {
    FuseDecodeTailOptions tail;
    tail.candidates = options.samplingCandidates;
    funcs.addPass(createFuseDecodeTail(tail));
  }

  // Stage 2, quantization (module level). Post-condition: every weight of
  // a quantized class carries m2c.quantization, except those the
  // checkpoint's modules_to_not_convert names; logical types are unchanged.
  if (enabled("m2c-quantize-weights")) {
    QuantizeWeightsOptions quant;
    quant.attn = options.quantAttn;
    quant.experts = options.quantExperts;
    quant.lmHead = options.quantLmHead;
    pm.addPass(createQuantizeWeights(quant));
  }

  // Stage 3, weight fusion (module level; after quantization, because
  // parts must share a format and FP8 blocks must not straddle them).
  // Post-condition: no two fusable matmuls read one value; a fused weight
  // lists its parts, and the plan's linear writes each part's columns to
  // the buffer the part's consumers already read.
  if (enabled("m2c-fuse-projections"))
    pm.addPass(createFuseProjections());

  // Stage 4, tiling (GPU targets only; the CPU backend has no tiles).
  // Post-condition: every compute op of an entry point carries m2c.tile
  // and m2c.tile_key, from the cost model or the tuning file.
  if (!options.target.empty() && enabled("m2c-tile-kernels")) {
    TileKernelsOptions tile;
    tile.target = options.target;
    tile.tuning = options.tuningFile;
    pm.addPass(createTileKernels(tile));
  }
}

mlir::LogicalResult parseQuantSpec(llvm::StringRef spec, PipelineOptions &options,
                                   std::string &error) {
  llvm::SmallVector<llvm::StringRef> items;
  spec.split(items, ',', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef item : items) {
    auto [key, value] = item.split('=');
    key = key.trim();
    value = value.trim();
    if (!item.contains('=')) {
      error = "--quant: '" + item.str() +
              "': expected CLASS=FORMAT with CLASS attn, experts or lm_head (e.g. experts=" +
              item.trim().str() + ")";
      return mlir::failure();
    }
    if (!m2c::plan::parseQuantizationOption(value.str())) {
      error = "--quant: '" + item.str() + "': the format must be one of " +
              m2c::plan::quantizationOptions();
      return mlir::failure();
    }
    if (key == "attn")
      options.quantAttn = value.str();
    else if (key == "experts")
      options.quantExperts = value.str();
    else if (key == "lm_head" || key == "lm-head")
      options.quantLmHead = value.str();
    else {
      error = "--quant: '" + item.str() + "': the class must be attn, experts or lm_head";
      return mlir::failure();
    }
  }
  return mlir::success();
}

void registerCompilePipeline() {
  mlir::PassPipelineRegistration<>(
      "m2c-compile-pipeline", "The passes m2c compile runs, in order",
      [](mlir::OpPassManager &pm) { buildCompilePipeline(pm, PipelineOptions()); });
}

} // namespace m2c
