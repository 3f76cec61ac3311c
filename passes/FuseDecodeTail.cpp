//===- FuseDecodeTail.cpp - Final norm, lm_head and argmax as one op -------===//
//
// An entry point ends in norm.rms -> lm_head matmul -> return. A step then
// runs a norm kernel and a GEMV, and the host scans a whole row of logits
// per token for the greedy choice (200k floats copied and read per token
// for MiniMax-M2). norm.rms_logits does all three in one kernel and the
// entry also returns the argmax, so a greedy step copies one id per token.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialects/norm/NormOps.h"
#include "frontend/LinearForm.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <algorithm>

namespace m2c {
#define GEN_PASS_DEF_FUSEDECODETAIL
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

/// The lm_head matmul of `logits` and the norm it reads, when the
/// function's tail is exactly norm -> linear -> return. The norm is a
/// norm.rms, or a norm.add_rms whose sum nothing reads (the last layer's
/// residual add, which m2c-fuse-add-rmsnorm gave to the final norm).
struct Tail {
  linalg::MatmulOp matmul;
  Operation *norm;
  Value input, residual, weight;
  FloatAttr eps;
};

FailureOr<Tail> matchTail(Value logits) {
  auto matmul = logits.getDefiningOp<linalg::MatmulOp>();
  if (!matmul || !logits.hasOneUse() || !m2c::hasLinearMaps(matmul) ||
      !m2c::zeroFillInit(matmul))
    return failure();
  Value x = matmul.getDpsInputs()[0];
  if (!x.hasOneUse() || !cast<RankedTensorType>(logits.getType()).getElementType().isF32())
    return failure();
  Tail tail{matmul, x.getDefiningOp(), {}, {}, {}, {}};
  if (auto rms = x.getDefiningOp<m2c::norm::RmsOp>()) {
    tail.input = rms.getInput();
    tail.weight = rms.getWeight();
    tail.eps = rms.getEpsAttr();
  } else if (auto addRms = x.getDefiningOp<m2c::norm::AddRmsOp>()) {
    if (!addRms.getSum().use_empty())
      return failure();
    tail.input = addRms.getInput();
    tail.residual = addRms.getResidual();
    tail.weight = addRms.getWeight();
    tail.eps = addRms.getEpsAttr();
  } else {
    return failure();
  }
  if (!cast<RankedTensorType>(tail.input.getType()).getElementType().isF32())
    return failure();
  return tail;
}

struct FuseDecodeTailPass : public m2c::impl::FuseDecodeTailBase<FuseDecodeTailPass> {
  using FuseDecodeTailBase::FuseDecodeTailBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (candidates < 0) {
      func.emitError("m2c-fuse-decode-tail: candidates must be >= 0, got ")
          << static_cast<int64_t>(candidates);
      return signalPassFailure();
    }
    if (func.isExternal() || func.getNumResults() != 1 || !func.getBody().hasOneBlock())
      return;
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    FailureOr<Tail> tail = matchTail(ret.getOperand(0));
    if (failed(tail))
      return;
    OpBuilder builder(tail->matmul);
    auto logitsType = cast<RankedTensorType>(tail->matmul.getResult(0).getType());
    const int64_t rows = logitsType.getDimSize(0), vocab = logitsType.getDimSize(1);
    SmallVector<Type> types = {logitsType, RankedTensorType::get({rows, 1}, builder.getI32Type())};
    if (candidates > 0 && !ShapedType::isDynamic(vocab)) {
      const int64_t count = std::min<int64_t>(candidates, vocab);
      types.push_back(RankedTensorType::get({rows, count}, builder.getI32Type()));
      types.push_back(RankedTensorType::get({rows, count}, builder.getF32Type()));
    }
    auto fused = m2c::norm::RmsLogitsOp::create(builder, tail->matmul.getLoc(), types,
                                                tail->input, tail->weight,
                                                tail->matmul.getDpsInputs()[1], tail->residual,
                                                tail->eps);
    ret->setOperands(fused->getResults());
    // The init's fill and empty die with the matmul; canonicalization is not
    // run on entry points, so erase what only the matmul read.
    Operation *init = tail->matmul.getDpsInits()[0].getDefiningOp();
    tail->matmul.erase();
    tail->norm->erase();
    if (init && init->use_empty()) {
      Operation *empty = init->getOperand(1).getDefiningOp();
      init->erase();
      if (empty && empty->use_empty())
        empty->erase();
    }
    func.setType(FunctionType::get(&getContext(), func.getArgumentTypes(), types));
    ++numFused;
  }
};

} // namespace
