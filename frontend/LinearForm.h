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

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Matchers.h"
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

/// Whether `matmul` reads the weight transposed: x [M, K] times W [N, K]^T.
inline bool hasLinearMaps(mlir::linalg::MatmulOp matmul) {
  return matmul.getIndexingMapsArray() ==
         llvm::ArrayRef<mlir::AffineMap>(linearIndexingMaps(matmul.getContext()));
}

/// The zero fill `matmul` accumulates into, or null for any other init.
inline mlir::linalg::FillOp zeroFillInit(mlir::linalg::MatmulOp matmul) {
  auto fill = matmul.getDpsInits()[0].getDefiningOp<mlir::linalg::FillOp>();
  if (!fill || !mlir::matchPattern(fill.getInputs()[0], mlir::m_AnyZeroFloat()))
    return nullptr;
  return fill;
}

} // namespace m2c

#endif // M2C_FRONTEND_LINEARFORM_H
