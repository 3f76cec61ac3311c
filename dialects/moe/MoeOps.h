//===- MoeOps.h - moe dialect operations ------------------------*- C++ -*-===//

#ifndef M2C_DIALECTS_MOE_MOEOPS_H
#define M2C_DIALECTS_MOE_MOEOPS_H

#include "dialects/moe/MoeDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialects/moe/MoeOps.h.inc"

#endif // M2C_DIALECTS_MOE_MOEOPS_H
