//===- PlanBuilder.h - Model IR -> executable plan -------------*- C++ -*-===//
//
// Lowers every entry point of a model module to plan kernels, one per
// compute op, and runs the liveness memory planner. Ops it cannot lower are
// reported as errors on the op; nothing is silently dropped.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PLANBUILDER_H
#define M2C_CODEGEN_PLANBUILDER_H

#include "runtime/plan/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace m2c {

struct PlanOptions {
  std::string target = "cpu";
  /// Tokens per step the memory plan is sized for.
  int64_t maxTokens = 2048;
};

mlir::FailureOr<plan::Plan> buildPlan(mlir::ModuleOp module, const PlanOptions &options);

} // namespace m2c

#endif // M2C_CODEGEN_PLANBUILDER_H
