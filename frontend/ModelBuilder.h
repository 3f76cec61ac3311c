//===- ModelBuilder.h - config.json -> model IR ----------------*- C++ -*-===//
//
// The frontend only builds IR: every later decision (fusion, quantization,
// tiling) is a pass over what this produces.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_FRONTEND_MODELBUILDER_H
#define M2C_FRONTEND_MODELBUILDER_H

#include "runtime/model/ModelConfig.h"
#include "runtime/plan/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <vector>

namespace m2c {

struct FrontendOptions {
  /// Tokens per KV-cache block; the runtime checks it when loading.
  int64_t kvBlockSize = 16;
  /// Element type of the KV cache: f32, bf16 or f16 (plan::parseKvCacheType).
  plan::ElementType kvCacheType = plan::ElementType::BF16;
};

/// Builds the verified model module: weight globals bound to checkpoint
/// names, and the @prefill and @decode entry points. Informational
/// messages (e.g. MTP modules dropped) are appended to `notes`.
mlir::OwningOpRef<mlir::ModuleOp> buildModelModule(mlir::MLIRContext &context,
                                                   const ModelConfig &config,
                                                   const FrontendOptions &options,
                                                   std::vector<std::string> &notes);

/// Loads the dialects the model IR uses into `context`.
void loadFrontendDialects(mlir::MLIRContext &context);

} // namespace m2c

#endif // M2C_FRONTEND_MODELBUILDER_H
