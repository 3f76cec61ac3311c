//===- AttnOps.h - attn dialect operations ----------------------*- C++ -*-===//

#ifndef M2C_DIALECTS_ATTN_ATTNOPS_H
#define M2C_DIALECTS_ATTN_ATTNOPS_H

#include "dialects/attn/AttnDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialects/attn/AttnOps.h.inc"

#endif // M2C_DIALECTS_ATTN_ATTNOPS_H
