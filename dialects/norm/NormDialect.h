//===- NormDialect.h - The norm dialect -------------------------*- C++ -*-===//

#ifndef M2C_DIALECTS_NORM_NORMDIALECT_H
#define M2C_DIALECTS_NORM_NORMDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/norm/NormDialect.h.inc"

#endif // M2C_DIALECTS_NORM_NORMDIALECT_H
