//===- m2c.cpp - The m2c driver: compile (and later run) model variants ---===//

#include "Commands.h"
#include "tools/OwnOptions.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace m2c::tools;

int m2c::tools::reportError(const llvm::Twine &message) {
  llvm::errs() << "m2c: error: " << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  // Out of host memory is a user-facing error, not LLVM's crash report.
  llvm::install_bad_alloc_error_handler([](void *, const char *, bool) {
    llvm::errs() << "m2c: error: out of host memory; use a smaller variant "
                    "(--set num_hidden_layers=N), --weights none, or --device cuda\n";
    std::_Exit(1);
  });
  // m2c's own options all belong to its subcommands.
  keepOnlyOwnOptions({});
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "m2c " M2C_VERSION " (MiniMax-M2 MoE compiler, MLIR " LLVM_VERSION_STRING ")\n";
  });
  std::string parseErrors;
  llvm::raw_string_ostream errorStream(parseErrors);
  if (!llvm::cl::ParseCommandLineOptions(
          argc, argv,
          "m2c: compiles MiniMax-M2-family MoE models to deployable artifacts\n\n"
          "  m2c compile MODEL [options]   MODEL is a preset (minimax-m2, minimax-m2-card,\n"
          "                                tiny), a directory with config.json, or a\n"
          "                                config.json path\n"
          "  m2c run MODEL_OR_ARTIFACT --prompt-ids 1,2,3 [options]\n"
          "  m2c run MODEL_OR_ARTIFACT --prompt TEXT [options]\n"
          "  m2c chat MODEL_OR_ARTIFACT [options]\n"
          "  m2c tune MODEL --target sm_90 --out-dir DIR [options]\n"
          "  m2c tokenize --tokenizer tokenizer.json [--decode] [TEXT]\n"
          "  m2c inspect ARTIFACT\n",
          &errorStream)) {
    // llvm::cl prefixes each message with the program name; print each in
    // the m2c error format instead.
    llvm::SmallVector<llvm::StringRef> lines;
    llvm::StringRef(parseErrors).trim().split(lines, '\n', -1, /*KeepEmpty=*/false);
    for (llvm::StringRef line : lines) {
      line = line.trim();
      if (line.starts_with("m2c: "))
        line = line.drop_front(5);
      reportError(line);
    }
    llvm::errs() << "(see 'm2c --help')\n";
    return 1;
  }
  if (compileCommand)
    return runCompile();
  if (runCommand)
    return runRun();
  if (tokenizeCommand)
    return runTokenize();
  if (chatCommand)
    return runChat();
  if (tuneCommand)
    return runTune();
  if (inspectCommand)
    return runInspect();
  return reportError("no command given (see 'm2c --help')");
}
