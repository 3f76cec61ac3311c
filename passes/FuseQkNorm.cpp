//===- FuseQkNorm.cpp - Per-layer QK-norm folded into attn.gqa ------------===//

#include "passes/Passes.h"

#include "dialects/attn/AttnOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace m2c {
#define GEN_PASS_DEF_FUSEQKNORM
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

struct FoldQkNorm : public OpRewritePattern<m2c::attn::GqaOp> {
  FoldQkNorm(MLIRContext *context, llvm::Statistic &fused)
      : OpRewritePattern(context), fused_(fused) {}

  LogicalResult matchAndRewrite(m2c::attn::GqaOp gqa, PatternRewriter &rewriter) const override {
    if (gqa.getQNorm())
      return rewriter.notifyMatchFailure(gqa, "already has a QK-norm");
    auto qNorm = gqa.getQueries().getDefiningOp<m2c::norm::RmsOp>();
    auto kNorm = gqa.getKeys().getDefiningOp<m2c::norm::RmsOp>();
    if (!qNorm || !kNorm)
      return rewriter.notifyMatchFailure(gqa, "queries and keys are not both norm.rms results");
    if (!qNorm->hasOneUse() || !kNorm->hasOneUse())
      return rewriter.notifyMatchFailure(gqa, "a norm result has other users");
    if (qNorm.getEps() != kNorm.getEps())
      return rewriter.notifyMatchFailure(gqa, "the two norms use different eps");
    if (qNorm.getInput().getType() != gqa.getQueries().getType() ||
        kNorm.getInput().getType() != gqa.getKeys().getType())
      return rewriter.notifyMatchFailure(gqa, "the norms change the tensor types");
    rewriter.modifyOpInPlace(gqa, [&] {
      gqa.getQueriesMutable().assign(qNorm.getInput());
      gqa.getKeysMutable().assign(kNorm.getInput());
      gqa.getQNormMutable().assign(qNorm.getWeight());
      gqa.getKNormMutable().assign(kNorm.getWeight());
      gqa.setQkNormEpsAttr(qNorm.getEpsAttr());
    });
    rewriter.eraseOp(qNorm);
    rewriter.eraseOp(kNorm);
    ++fused_;
    return success();
  }

  llvm::Statistic &fused_;
};

struct FuseQkNormPass : public m2c::impl::FuseQkNormBase<FuseQkNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldQkNorm>(&getContext(), numFused);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
