//===- Commands.h - The m2c subcommands -------------------------*- C++ -*-===//

#ifndef M2C_TOOLS_M2C_COMMANDS_H
#define M2C_TOOLS_M2C_COMMANDS_H

#include "llvm/Support/CommandLine.h"

namespace m2c::tools {

extern llvm::cl::SubCommand compileCommand;
extern llvm::cl::SubCommand runCommand;

/// Runs `m2c compile`; returns the process exit code.
int runCompile();
/// Runs `m2c run`; returns the process exit code.
int runRun();

/// Prints "m2c: error: <message>" to stderr and returns 1.
int reportError(const llvm::Twine &message);

} // namespace m2c::tools

#endif // M2C_TOOLS_M2C_COMMANDS_H
