//===- Passes.h - m2c's cross-dialect passes --------------------*- C++ -*-===//

#ifndef M2C_PASSES_PASSES_H
#define M2C_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace m2c {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace m2c

#endif // M2C_PASSES_PASSES_H
