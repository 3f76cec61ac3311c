//===- Commands.h - The m2c subcommands -------------------------*- C++ -*-===//

#ifndef M2C_TOOLS_M2C_COMMANDS_H
#define M2C_TOOLS_M2C_COMMANDS_H

#include "llvm/Support/CommandLine.h"

#include <string>

namespace m2c::tools {

extern llvm::cl::SubCommand compileCommand;
extern llvm::cl::SubCommand runCommand;
extern llvm::cl::SubCommand tokenizeCommand;
extern llvm::cl::SubCommand chatCommand;
extern llvm::cl::SubCommand tuneCommand;
extern llvm::cl::SubCommand inspectCommand;

/// Runs `m2c compile`; returns the process exit code.
int runCompile();
/// Runs `m2c run`; returns the process exit code.
int runRun();
/// Runs `m2c tokenize`; returns the process exit code.
int runTokenize();
/// Runs `m2c chat`; returns the process exit code.
int runChat();
/// Runs `m2c tune`; returns the process exit code.
int runTune();
/// Runs `m2c inspect`; returns the process exit code.
int runInspect();

/// The tokenizer.json that goes with MODEL: in the model directory, beside
/// its config.json, or in the checkpoint directory; "" when there is none.
std::string findTokenizer(const std::string &model, const std::string &checkpointDir);

/// Prints "m2c: error: <message>" to stderr and returns 1.
int reportError(const llvm::Twine &message);

} // namespace m2c::tools

#endif // M2C_TOOLS_M2C_COMMANDS_H
