//===- FuseAddRmsNorm.cpp - arith.addf + norm.rms -> norm.add_rms ---------===//

#include "passes/Passes.h"

#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace m2c {
#define GEN_PASS_DEF_FUSEADDRMSNORM
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

struct FuseAddIntoRms : public OpRewritePattern<m2c::norm::RmsOp> {
  FuseAddIntoRms(MLIRContext *context, llvm::Statistic &fused)
      : OpRewritePattern(context), fused_(fused) {}

  LogicalResult matchAndRewrite(m2c::norm::RmsOp rms, PatternRewriter &rewriter) const override {
    auto add = rms.getInput().getDefiningOp<arith::AddFOp>();
    if (!add)
      return rewriter.notifyMatchFailure(rms, "input is not an arith.addf");
    if (add.getType() != rms.getInput().getType() || add.getLhs().getType() != add.getType())
      return rewriter.notifyMatchFailure(rms, "add is not elementwise over the input type");
    // Several norms of one sum would duplicate the add: fuse the first only.
    for (Operation *user : add->getUsers())
      if (auto other = dyn_cast<m2c::norm::RmsOp>(user); other && other != rms &&
                                                          other->isBeforeInBlock(rms))
        return rewriter.notifyMatchFailure(rms, "an earlier norm already reads this sum");
    // The fused op replaces the norm, so the sum must not be needed earlier.
    for (Operation *user : add->getUsers())
      if (user != rms && (user->getBlock() != rms->getBlock() || user->isBeforeInBlock(rms)))
        return rewriter.notifyMatchFailure(rms, "the sum is used before the norm");
    rewriter.setInsertionPoint(rms);
    auto fused = m2c::norm::AddRmsOp::create(rewriter, rms.getLoc(), add.getType(),
                                             rms.getType(), add.getLhs(), add.getRhs(),
                                             rms.getWeight(), rms.getEpsAttr());
    rewriter.replaceOp(rms, fused.getResult());
    rewriter.replaceOp(add, fused.getSum());
    ++fused_;
    return success();
  }

  llvm::Statistic &fused_;
};

struct FuseAddRmsNormPass : public m2c::impl::FuseAddRmsNormBase<FuseAddRmsNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAddIntoRms>(&getContext(), numFused);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
