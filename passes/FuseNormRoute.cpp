//===- FuseNormRoute.cpp - The post-attention norm as the router's prologue ===//

#include "passes/Passes.h"

#include "dialects/moe/MoeOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace m2c {
#define GEN_PASS_DEF_FUSENORMROUTE
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

struct FoldNormIntoRoute : public OpRewritePattern<m2c::moe::RouteOp> {
  FoldNormIntoRoute(MLIRContext *context, llvm::Statistic &fused)
      : OpRewritePattern(context), fused_(fused) {}

  LogicalResult matchAndRewrite(m2c::moe::RouteOp route,
                                PatternRewriter &rewriter) const override {
    auto norm = route.getHidden().getDefiningOp<m2c::norm::AddRmsOp>();
    if (!norm || route.getHidden() != norm.getResult())
      return rewriter.notifyMatchFailure(route, "hidden is not a norm.add_rms result");
    // The fused op replaces the norm where the router is: every other user
    // of the norm's results must come after the router.
    for (Operation *user : norm->getUsers())
      if (user != route && (user->getBlock() != route->getBlock() || user->isBeforeInBlock(route)))
        return rewriter.notifyMatchFailure(route, "a user of the norm precedes the router");
    auto fused = m2c::moe::NormRouteOp::create(
        rewriter, route.getLoc(),
        TypeRange{norm.getSum().getType(), norm.getResult().getType(),
                  route.getExpertIds().getType(), route.getExpertWeights().getType()},
        norm.getInput(), norm.getResidual(), norm.getWeight(), route.getGateWeight(),
        route.getCorrectionBias(), norm.getEpsAttr(), route.getScoringAttr(),
        route.getTopKAttr(), route.getNumExpertsAttr(), route.getRenormalizeAttr());
    rewriter.replaceOp(route, {fused.getExpertIds(), fused.getExpertWeights()});
    rewriter.replaceOp(norm, {fused.getSum(), fused.getHidden()});
    ++fused_;
    return success();
  }

  llvm::Statistic &fused_;
};

struct FuseNormRoutePass : public m2c::impl::FuseNormRouteBase<FuseNormRoutePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldNormIntoRoute>(&getContext(), numFused);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
