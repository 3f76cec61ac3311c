//===- LinearForm.h - The one IR form of a linear layer ---------*- C++ -*-===//
//
// y[m, n] = sum_k x[m, k] * W[n, k]: a linalg.matmul that reads the
// checkpoint's [out, in] weight transposed, into a zero-filled init. The
// frontend builds every projection this way; passes and the plan lowering
// match exactly this form.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_FRONTEND_LINEARFORM_H
#define M2C_FRONTEND_LINEARFORM_H

#include "mlir/IR/AffineMap.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/SmallVector.h"

namespace m2c {

/// The indexing maps of a linear layer's linalg.matmul: (m, k), (n, k), (m, n).
inline llvm::SmallVector<mlir::AffineMap> linearIndexingMaps(mlir::MLIRContext *context) {
  mlir::AffineExpr m, n, k;
  mlir::bindDims(context, m, n, k);
  return {mlir::AffineMap::get(3, 0, {m, k}, context),
          mlir::AffineMap::get(3, 0, {n, k}, context),
          mlir::AffineMap::get(3, 0, {m, n}, context)};
}

} // namespace m2c

#endif // M2C_FRONTEND_LINEARFORM_H
