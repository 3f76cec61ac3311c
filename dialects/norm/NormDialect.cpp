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

LogicalResult RmsOp::verify() {
  RankedTensorType inputType = getInput().getType();
  RankedTensorType weightType = getWeight().getType();
  if (inputType.getRank() < 1)
    return emitOpError("expects the input to have rank >= 1, got a rank-0 tensor");
  if (weightType.getRank() != 1)
    return emitOpError("expects a rank-1 weight, got rank ") << weightType.getRank();
  int64_t normalized = inputType.getDimSize(inputType.getRank() - 1);
  int64_t weightSize = weightType.getDimSize(0);
  if (!ShapedType::isDynamic(normalized) && !ShapedType::isDynamic(weightSize) &&
      normalized != weightSize)
    return emitOpError("expects the weight size (")
           << weightSize << ") to equal the normalised dimension (" << normalized << ")";
  if (getResult().getType() != inputType)
    return emitOpError("expects the result type ")
           << getResult().getType() << " to equal the input type " << inputType;
  if (!(getEps().convertToDouble() > 0.0))
    return emitOpError("expects a positive eps, got ") << getEps().convertToDouble();
  return success();
}

#define GET_OP_CLASSES
#include "dialects/norm/NormOps.cpp.inc"
