//===- MoeDialect.cpp - moe dialect registration and verifiers ------------===//

#include "dialects/moe/MoeOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace m2c::moe;

#include "dialects/moe/MoeDialect.cpp.inc"
#include "dialects/moe/MoeEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoeAttrs.cpp.inc"

void MoeDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/moe/MoeAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/moe/MoeOps.cpp.inc"
      >();
}

namespace {
bool conflicts(int64_t a, int64_t b) {
  return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
}

/// Prints a shape as [2, ?, 3] for diagnostics.
std::string shapeString(RankedTensorType type) {
  std::string text = "[";
  for (int64_t i = 0; i < type.getRank(); ++i) {
    if (i)
      text += ", ";
    int64_t size = type.getDimSize(i);
    text += ShapedType::isDynamic(size) ? std::string("?") : std::to_string(size);
  }
  return text + "]";
}

/// The checks moe.route and moe.norm_route share.
LogicalResult verifyRouting(Operation *op, RankedTensorType hidden, RankedTensorType gate,
                            Value bias, RankedTensorType ids, RankedTensorType weights,
                            int64_t topK, int64_t experts) {
  auto emitOpError = [&](const Twine &message) { return op->emitOpError(message); };
  if (experts <= 0)
    return emitOpError("expects a positive num_experts, got ") << experts;
  if (topK <= 0 || topK > experts)
    return emitOpError("expects top_k (") << topK << ") to be in [1, num_experts (" << experts
                                           << ")]";
  if (hidden.getRank() != 2)
    return emitOpError("expects hidden of rank 2 [tokens, hidden], got ") << hidden;
  if (gate.getRank() != 2 || conflicts(gate.getDimSize(0), experts) ||
      conflicts(gate.getDimSize(1), hidden.getDimSize(1)))
    return emitOpError("expects gate_weight of shape [")
           << experts << ", " << hidden.getDimSize(1) << "], got " << shapeString(gate);
  if (bias) {
    auto biasType = cast<RankedTensorType>(bias.getType());
    if (biasType.getRank() != 1 || conflicts(biasType.getDimSize(0), experts))
      return emitOpError("expects correction_bias of shape [")
             << experts << "], got " << shapeString(biasType);
  }
  for (RankedTensorType result : {ids, weights}) {
    if (result.getRank() != 2 || conflicts(result.getDimSize(0), hidden.getDimSize(0)) ||
        conflicts(result.getDimSize(1), topK))
      return emitOpError("expects results of shape [tokens, top_k] = [")
             << (hidden.isDynamicDim(0) ? std::string("?")
                                        : std::to_string(hidden.getDimSize(0)))
             << ", " << topK << "], got " << shapeString(result);
  }
  return success();
}
} // namespace

LogicalResult RouteOp::verify() {
  return verifyRouting(*this, getHidden().getType(), getGateWeight().getType(),
                       getCorrectionBias(), getExpertIds().getType(),
                       getExpertWeights().getType(), getTopK(), getNumExperts());
}

LogicalResult NormRouteOp::verify() {
  RankedTensorType input = getInput().getType();
  if (getResidual().getType() != input)
    return emitOpError("expects the residual type ")
           << getResidual().getType() << " to equal the input type " << input;
  if (getSum().getType() != input || getHidden().getType() != input)
    return emitOpError("expects the sum and hidden types to equal the input type ") << input;
  RankedTensorType norm = getNormWeight().getType();
  if (input.getRank() == 2 &&
      (norm.getRank() != 1 || conflicts(norm.getDimSize(0), input.getDimSize(1))))
    return emitOpError("expects norm_weight of shape [")
           << input.getDimSize(1) << "], got " << shapeString(norm);
  if (!(getEps().convertToDouble() > 0))
    return emitOpError("expects a positive eps, got ") << getEps().convertToDouble();
  return verifyRouting(*this, input, getGateWeight().getType(), getCorrectionBias(),
                       getExpertIds().getType(), getExpertWeights().getType(), getTopK(),
                       getNumExperts());
}

LogicalResult ExpertsOp::verify() {
  RankedTensorType hidden = getHidden().getType();
  RankedTensorType ids = getExpertIds().getType();
  RankedTensorType weights = getExpertWeights().getType();
  RankedTensorType gate = getGateProj().getType();
  RankedTensorType up = getUpProj().getType();
  RankedTensorType down = getDownProj().getType();
  if (hidden.getRank() != 2)
    return emitOpError("expects hidden of rank 2 [tokens, hidden], got ") << hidden;
  if (ids.getRank() != 2 || ids.getShape() != weights.getShape())
    return emitOpError("expects expert_ids and expert_weights of one shape [tokens, top_k], "
                       "got ")
           << shapeString(ids) << " and " << shapeString(weights);
  if (conflicts(ids.getDimSize(0), hidden.getDimSize(0)))
    return emitOpError("expects one row of expert_ids per token (")
           << hidden.getDimSize(0) << "), got " << ids.getDimSize(0);
  if (gate.getRank() != 3 || conflicts(gate.getDimSize(2), hidden.getDimSize(1)))
    return emitOpError("expects gate_proj of shape [experts, intermediate, ")
           << hidden.getDimSize(1) << "], got " << shapeString(gate);
  if (up.getShape() != gate.getShape())
    return emitOpError("expects up_proj to have the shape of gate_proj ")
           << shapeString(gate) << ", got " << shapeString(up);
  if (down.getRank() != 3 || conflicts(down.getDimSize(0), gate.getDimSize(0)) ||
      conflicts(down.getDimSize(1), gate.getDimSize(2)) ||
      conflicts(down.getDimSize(2), gate.getDimSize(1)))
    return emitOpError("expects down_proj of shape [")
           << gate.getDimSize(0) << ", " << gate.getDimSize(2) << ", " << gate.getDimSize(1)
           << "], got " << shapeString(down);
  if (getResult().getType() != hidden)
    return emitOpError("expects the result type ")
           << getResult().getType() << " to equal the hidden type " << hidden;
  if (Value residual = getResidual(); residual && residual.getType() != hidden)
    return emitOpError("expects the residual type ")
           << residual.getType() << " to equal the hidden type " << hidden;
  return success();
}

#define GET_OP_CLASSES
#include "dialects/moe/MoeOps.cpp.inc"
