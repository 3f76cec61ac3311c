//===- CompileCommand.cpp - m2c compile -----------------------------------===//

#include "Commands.h"

#include "frontend/ModelBuilder.h"
#include "passes/InitAll.h"
#include "passes/Passes.h"
#include "runtime/model/ModelConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace llvm;

namespace m2c::tools {

cl::SubCommand compileCommand("compile", "Compile a model variant");

namespace {

cl::OptionCategory compileCategory("m2c compile options");

cl::opt<std::string> modelArg(cl::Positional, cl::desc("MODEL"), cl::Required,
                              cl::sub(compileCommand), cl::cat(compileCategory));

// A string rather than a cl::values enum: llvm::cl reports bad enum values
// itself, outside the "m2c: error:" format.
cl::opt<std::string> emitKind("emit", cl::desc("What to write: summary (default) or mlir"),
                              cl::value_desc("summary|mlir"), cl::init("summary"),
                              cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("FILE"), cl::init("-"), cl::sub(compileCommand),
                                cl::cat(compileCategory));

cl::list<std::string> setOverrides(
    "set", cl::desc("Override a config.json key (key=value; nested keys with '.')"),
    cl::value_desc("key=value"), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per KV-cache block"),
                             cl::init(16), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> kvCacheDtype("kv-cache-dtype",
                                  cl::desc("KV-cache element type: bf16, f16 or f32"),
                                  cl::init("bf16"), cl::sub(compileCommand),
                                  cl::cat(compileCategory));

cl::opt<bool> timing("time", cl::desc("Print wall time of each compile stage"), cl::init(false),
                     cl::sub(compileCommand), cl::cat(compileCategory));

} // namespace

int runCompile() {
  if (emitKind != "summary" && emitKind != "mlir")
    return reportError("--emit: expected summary or mlir, got '" + emitKind + "'");
  if (kvBlockSize <= 0 || kvBlockSize > 4096)
    return reportError("--kv-block-size: expected 1..4096, got " + Twine(kvBlockSize));
  if (kvCacheDtype != "bf16" && kvCacheDtype != "f16" && kvCacheDtype != "f32")
    return reportError("--kv-cache-dtype: expected bf16, f16 or f32, got '" + kvCacheDtype +
                       "'");

  mlir::DefaultTimingManager timingManager;
  timingManager.setEnabled(timing);
  mlir::TimingScope rootTimer = timingManager.getRootScope();

  StatusOr<ModelConfig> config = [&] {
    mlir::TimingScope timer = rootTimer.nest("config");
    return resolveModelConfig(modelArg, std::vector<std::string>(setOverrides.begin(),
                                                                 setOverrides.end()));
  }();
  if (!config)
    return reportError(config.status().message());

  mlir::DialectRegistry registry;
  registerAllDialects(registry);
  mlir::MLIRContext context(registry);
  // Multithreading buys nothing for building one module and costs thread
  // start-up on every invocation.
  context.disableMultithreading();
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  FrontendOptions options;
  options.kvBlockSize = kvBlockSize;
  options.kvCacheDtype = kvCacheDtype;
  std::vector<std::string> notes;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  {
    mlir::TimingScope timer = rootTimer.nest("frontend");
    module = buildModelModule(context, *config, options, notes);
  }
  if (!module)
    return reportError("the frontend built IR that does not verify (a bug: please report it)");
  for (const std::string &note : notes)
    llvm::errs() << "m2c: note: " << note << "\n";

  std::string errorMessage;
  std::unique_ptr<ToolOutputFile> output = mlir::openOutputFile(outputFile, &errorMessage);
  if (!output)
    return reportError(outputFile + ": " + errorMessage);

  if (emitKind == "mlir") {
    mlir::TimingScope timer = rootTimer.nest("print");
    module->print(output->os());
  } else {
    mlir::PassManager pm(&context);
    pm.enableTiming(rootTimer);
    pm.addPass(createPrintModelSummary());
    outs().flush();
    if (failed(pm.run(*module)))
      return reportError("printing the model summary failed");
  }
  output->keep();
  return 0;
}

} // namespace m2c::tools
