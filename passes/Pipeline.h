//===- Pipeline.h - The one m2c compile pipeline ---------------*- C++ -*-===//

#ifndef M2C_PASSES_PIPELINE_H
#define M2C_PASSES_PIPELINE_H

#include "mlir/Pass/PassManager.h"

#include <set>
#include <vector>
#include <string>

namespace m2c {

struct PipelineOptions {
  /// Pass arguments (e.g. "m2c-fuse-add-rmsnorm") left out of the pipeline.
  std::set<std::string> disabledPasses;
  /// Per module class: none, int8, int4 or fp8 (m2c-quantize-weights).
  std::string quantAttn = "none", quantExperts = "none", quantLmHead = "none";
  /// GPU target for m2c-tile-kernels; empty (CPU) skips tiling.
  std::string target;
  /// Tuning JSON overriding the cost model.
  std::string tuningFile;
  /// Each logits row's best logits returned for sampling
  /// (m2c-fuse-decode-tail{candidates}); 0 = none.
  int64_t samplingCandidates = 64;
};

/// Parses "experts=int4,attn=fp8,lm_head=none" into `options`.
mlir::LogicalResult parseQuantSpec(llvm::StringRef spec, PipelineOptions &options,
                                   std::string &error);

/// Adds m2c's passes, in order, to `pm` (anchored on the module).
void buildCompilePipeline(mlir::OpPassManager &pm, const PipelineOptions &options);

/// The pass arguments buildCompilePipeline may add, in pipeline order.
const std::vector<std::string> &compilePipelinePasses();

/// Registers the pipeline as `m2c-compile-pipeline` for m2c-opt.
void registerCompilePipeline();

} // namespace m2c

#endif // M2C_PASSES_PIPELINE_H
