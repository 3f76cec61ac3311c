//===- InitAll.cpp - Every dialect and pass an m2c tool knows -------------===//

#include "passes/InitAll.h"
#include "passes/Passes.h"
#include "passes/Pipeline.h"

#include "dialects/attn/AttnDialect.h"
#include "dialects/moe/MoeDialect.h"
#include "dialects/norm/NormDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void m2c::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::arith::ArithDialect, mlir::func::FuncDialect,
                  mlir::linalg::LinalgDialect, mlir::ml_program::MLProgramDialect,
                  mlir::tensor::TensorDialect, attn::AttnDialect, moe::MoeDialect,
                  norm::NormDialect>();
}

void m2c::registerAllPasses() {
  mlir::registerTransformsPasses();
  registerM2CPasses();
  registerCompilePipeline();
}
