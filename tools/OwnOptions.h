//===- OwnOptions.h - A tool's flags without LLVM's and MLIR's ------------===//
//
// LLVM and MLIR libraries register global options (--stats, --debug-counter,
// target flags, ...) that a tool would otherwise accept and list in --help.
// m2c's tools unregister every top-level option outside their own
// categories before parsing.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_TOOLS_OWNOPTIONS_H
#define M2C_TOOLS_OWNOPTIONS_H

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CommandLine.h"

#include <vector>

namespace m2c::tools {

/// Unregisters the top-level options in none of `own` (help and version
/// stay). Options of subcommands are untouched.
inline void keepOnlyOwnOptions(llvm::ArrayRef<const llvm::cl::OptionCategory *> own) {
  std::vector<llvm::cl::Option *> foreign;
  for (auto &entry : llvm::cl::getRegisteredOptions(llvm::cl::SubCommand::getTopLevel())) {
    llvm::StringRef name = entry.first;
    if (name == "help" || name == "help-list" || name == "version")
      continue;
    llvm::cl::Option *option = entry.second;
    if (!llvm::any_of(option->Categories,
                      [&](llvm::cl::OptionCategory *c) { return llvm::is_contained(own, c); }))
      foreign.push_back(option);
  }
  for (llvm::cl::Option *option : foreign)
    option->removeArgument();
}

} // namespace m2c::tools

#endif // M2C_TOOLS_OWNOPTIONS_H
