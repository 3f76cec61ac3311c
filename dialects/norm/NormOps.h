//===- NormOps.h - norm dialect operations ----------------------*- C++ -*-===//

#ifndef M2C_DIALECTS_NORM_NORMOPS_H
#define M2C_DIALECTS_NORM_NORMOPS_H

#include "dialects/norm/NormDialect.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialects/norm/NormOps.h.inc"

#endif // M2C_DIALECTS_NORM_NORMOPS_H
