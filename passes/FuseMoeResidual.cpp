//===- FuseMoeResidual.cpp - residual add folded into moe.experts ---------===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace m2c {
#define GEN_PASS_DEF_FUSEMOERESIDUAL
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

struct FoldResidualIntoExperts : public OpRewritePattern<arith::AddFOp> {
  FoldResidualIntoExperts(MLIRContext *context, llvm::Statistic &fused)
      : OpRewritePattern(context), fused_(fused) {}

  LogicalResult matchAndRewrite(arith::AddFOp add, PatternRewriter &rewriter) const override {
    Value residual = add.getLhs();
    auto experts = add.getRhs().getDefiningOp<m2c::moe::ExpertsOp>();
    if (!experts) {
      residual = add.getRhs();
      experts = add.getLhs().getDefiningOp<m2c::moe::ExpertsOp>();
    }
    if (!experts)
      return rewriter.notifyMatchFailure(add, "no operand is a moe.experts result");
    if (experts.getResidual())
      return rewriter.notifyMatchFailure(add, "the experts already add a residual");
    if (!experts->hasOneUse())
      return rewriter.notifyMatchFailure(add, "the experts result has other users");
    if (residual.getType() != experts.getType() || add.getType() != experts.getType())
      return rewriter.notifyMatchFailure(add, "types differ from the experts result");
    // The residual must be available where the experts op runs.
    if (Operation *def = residual.getDefiningOp();
        def && def->getBlock() == experts->getBlock() && !def->isBeforeInBlock(experts))
      return rewriter.notifyMatchFailure(add, "the residual is computed after the experts");
    rewriter.modifyOpInPlace(experts, [&] { experts.getResidualMutable().assign(residual); });
    rewriter.replaceOp(add, experts.getResult());
    ++fused_;
    return success();
  }

  llvm::Statistic &fused_;
};

struct FuseMoeResidualPass : public m2c::impl::FuseMoeResidualBase<FuseMoeResidualPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldResidualIntoExperts>(&getContext(), numFused);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
