//===- NormDialect.cpp - norm dialect registration and verifiers ----------===//

#include "dialects/norm/NormOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace m2c::norm;

#include "dialects/norm/NormDialect.cpp.inc"

void NormDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/norm/NormOps.cpp.inc"
      >();
}

/// Shared by norm.rms and norm.add_rms: the normalised dimension is the
/// last one and the weight spans it.
static LogicalResult verifyRmsShapes(Operation *op, RankedTensorType inputType,
                                     RankedTensorType weightType, RankedTensorType resultType,
                                     double eps) {
  if (inputType.getRank() < 1)
    return op->emitOpError("expects the input to have rank >= 1, got a rank-0 tensor");
  if (weightType.getRank() != 1)
    return op->emitOpError("expects a rank-1 weight, got rank ") << weightType.getRank();
  int64_t normalized = inputType.getDimSize(inputType.getRank() - 1);
  int64_t weightSize = weightType.getDimSize(0);
  if (!ShapedType::isDynamic(normalized) && !ShapedType::isDynamic(weightSize) &&
      normalized != weightSize)
    return op->emitOpError("expects the weight size (")
           << weightSize << ") to equal the normalised dimension (" << normalized << ")";
  if (resultType != inputType)
    return op->emitOpError("expects the result type ")
           << resultType << " to equal the input type " << inputType;
  if (!(eps > 0.0))
    return op->emitOpError("expects a positive eps, got ") << eps;
  return success();
}

LogicalResult RmsOp::verify() {
  return verifyRmsShapes(*this, getInput().getType(), getWeight().getType(),
                         getResult().getType(), getEps().convertToDouble());
}

LogicalResult AddRmsOp::verify() {
  if (getResidual().getType() != getInput().getType())
    return emitOpError("expects the residual type ")
           << getResidual().getType() << " to equal the input type " << getInput().getType();
  if (getSum().getType() != getInput().getType())
    return emitOpError("expects the sum type ")
           << getSum().getType() << " to equal the input type " << getInput().getType();
  return verifyRmsShapes(*this, getInput().getType(), getWeight().getType(),
                         getResult().getType(), getEps().convertToDouble());
}

LogicalResult RmsLogitsOp::verify() {
  RankedTensorType input = getInput().getType(), head = getLmHead().getType();
  if (input.getRank() != 2)
    return emitOpError("expects a rank-2 input [tokens, hidden], got rank ") << input.getRank();
  if (head.getRank() != 2)
    return emitOpError("expects a rank-2 lm_head [vocab, hidden], got rank ") << head.getRank();
  if (getResidual() && getResidual().getType() != input)
    return emitOpError("expects the residual type ")
           << getResidual().getType() << " to equal the input type " << input;
  if (head.getDimSize(1) != input.getDimSize(1))
    return emitOpError("expects the lm_head width (")
           << head.getDimSize(1) << ") to equal the hidden size (" << input.getDimSize(1) << ")";
  auto logits = RankedTensorType::get({input.getDimSize(0), head.getDimSize(0)},
                                      input.getElementType());
  if (getLogits().getType() != logits)
    return emitOpError("expects logits of type ") << logits << ", got " << getLogits().getType();
  auto ids = RankedTensorType::get({input.getDimSize(0), 1},
                                   IntegerType::get(getContext(), 32));
  if (getGreedyIds().getType() != ids)
    return emitOpError("expects greedy ids of type ") << ids << ", got "
                                                      << getGreedyIds().getType();
  ValueRange candidates = getCandidates();
  if (!candidates.empty()) {
    auto topIds = dyn_cast<RankedTensorType>(candidates[0].getType());
    int64_t count = topIds && topIds.getRank() == 2 ? topIds.getDimSize(1) : 0;
    int64_t vocab = head.getDimSize(0);
    if (candidates.size() != 2 || count < 1 || ShapedType::isDynamic(count) ||
        (!ShapedType::isDynamic(vocab) && count > vocab))
      return emitOpError("expects no candidates, or candidate ids tensor<?xKxi32> and "
                         "values tensor<?xKxf32> with 1 <= K <= vocab");
    auto ofType = [&](Type element) {
      return RankedTensorType::get({input.getDimSize(0), count}, element);
    };
    if (candidates[0].getType() != ofType(IntegerType::get(getContext(), 32)) ||
        candidates[1].getType() != ofType(Float32Type::get(getContext())))
      return emitOpError("expects candidate ids of type ")
             << ofType(IntegerType::get(getContext(), 32)) << " and values of type "
             << ofType(Float32Type::get(getContext())) << ", got " << candidates[0].getType()
             << " and " << candidates[1].getType();
  }
  return verifyRmsShapes(*this, input, getNormWeight().getType(), input,
                         getEps().convertToDouble());
}

#define GET_OP_CLASSES
#include "dialects/norm/NormOps.cpp.inc"
