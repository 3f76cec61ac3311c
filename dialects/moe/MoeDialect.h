//===- MoeDialect.h - The moe dialect and its attributes --------*- C++ -*-===//

#ifndef M2C_DIALECTS_MOE_MOEDIALECT_H
#define M2C_DIALECTS_MOE_MOEDIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"

#include "dialects/moe/MoeDialect.h.inc"
#include "dialects/moe/MoeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoeAttrs.h.inc"

#endif // M2C_DIALECTS_MOE_MOEDIALECT_H
