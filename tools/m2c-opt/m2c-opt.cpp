//===- m2c-opt.cpp - mlir-opt with every m2c dialect and pass -------------===//

#include "passes/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream &os) {
    os << "m2c-opt " M2C_VERSION " (MiniMax-M2 compiler driver for MLIR passes)\n";
  });
  mlir::DialectRegistry registry;
  m2c::registerAllDialects(registry);
  m2c::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "m2c optimizer driver\n", registry));
}
