//===- InitAll.h - Every dialect and pass an m2c tool knows -----*- C++ -*-===//
//
// m2c and m2c-opt register exactly the same things, so a pass run in
// m2c-opt on a .mlir file does what it does inside m2c.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_PASSES_INITALL_H
#define M2C_PASSES_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace m2c {

/// m2c's dialects plus the upstream dialects the model IR uses.
void registerAllDialects(mlir::DialectRegistry &registry);
/// m2c's passes plus the upstream generic transforms (canonicalize, cse, ...).
void registerAllPasses();

} // namespace m2c

#endif // M2C_PASSES_INITALL_H
