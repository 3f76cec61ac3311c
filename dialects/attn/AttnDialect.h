//===- AttnDialect.h - The attn dialect and its types -----------*- C++ -*-===//

#ifndef M2C_DIALECTS_ATTN_ATTNDIALECT_H
#define M2C_DIALECTS_ATTN_ATTNDIALECT_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"

#include "dialects/attn/AttnDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/attn/AttnTypes.h.inc"

#endif // M2C_DIALECTS_ATTN_ATTNDIALECT_H
