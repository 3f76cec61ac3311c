//===- ModelCompiler.cpp - MODEL -> IR -> plan, shared by compile and run --===//

#include "ModelCompiler.h"

#include "passes/InitAll.h"
#include "runtime/weights/Weights.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/Pass.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace m2c::tools {

bool hasCheckpoint(const std::string &dir) {
  struct stat info;
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    return false;
  DIR *handle = opendir(dir.c_str());
  if (!handle)
    return false;
  bool found = false;
  while (dirent *entry = readdir(handle)) {
    std::string name = entry->d_name;
    if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0)
      found = true;
  }
  closedir(handle);
  return found;
}

StatusOr<ModelIR> buildModelIR(const CompileRequest &request, mlir::TimingScope &timer) {
  ModelIR ir;
  std::string origin;
  {
    mlir::TimingScope configTimer = timer.nest("config");
    StatusOr<std::string> text = resolveModelConfigText(request.model, request.overrides, &origin);
    if (!text)
      return text.status();
    StatusOr<ModelConfig> config = parseModelConfig(*text, origin);
    if (!config)
      return config.status();
    ir.config = config.take();
    ir.configJson = text.take();
  }
  if (hasCheckpoint(request.model))
    ir.checkpointDir = request.model;

  mlir::DialectRegistry registry;
  registerAllDialects(registry);
  ir.context = std::make_unique<mlir::MLIRContext>(registry);
  // One module, built once: threads would only add start-up cost.
  ir.context->disableMultithreading();
  std::vector<std::string> notes;
  {
    mlir::TimingScope frontendTimer = timer.nest("frontend");
    ir.module = buildModelModule(*ir.context, ir.config, request.frontend, notes);
  }
  if (!ir.module)
    return Status::error("the frontend built IR that does not verify (a bug: please report it)");
  for (const std::string &note : notes)
    llvm::errs() << "m2c: note: " << note << "\n";
  return ir;
}

Status runPipeline(ModelIR &ir, const PassOptions &options, mlir::TimingScope &timer) {
  for (const std::string &name : options.pipeline.disabledPasses)
    if (name != "all" && std::find(compilePipelinePasses().begin(), compilePipelinePasses().end(),
                                   name) == compilePipelinePasses().end())
      return Status::error("--disable-pass: '" + name + "' is not a pass of the pipeline");
  for (const std::string &name : options.printAfter)
    if (std::find(compilePipelinePasses().begin(), compilePipelinePasses().end(), name) ==
        compilePipelinePasses().end())
      return Status::error("--print-ir-after: '" + name + "' is not a pass of the pipeline");
  if (options.pipeline.disabledPasses.count("all"))
    return Status::ok();
  mlir::PassManager pm(ir.context.get());
  pm.enableTiming(timer);
  if (options.printAfterAll || !options.printAfter.empty()) {
    std::vector<std::string> printAfter = options.printAfter;
    bool all = options.printAfterAll;
    pm.enableIRPrinting(
        /*shouldPrintBeforePass=*/[](mlir::Pass *, mlir::Operation *) { return false; },
        /*shouldPrintAfterPass=*/
        [printAfter, all](mlir::Pass *pass, mlir::Operation *) {
          return all || std::find(printAfter.begin(), printAfter.end(),
                                  pass->getArgument().str()) != printAfter.end();
        },
        /*printModuleScope=*/false, /*printAfterOnlyOnChange=*/false);
  }
  buildCompilePipeline(pm, options.pipeline);
  // Pass diagnostics are user-facing errors (a bad option, a bad tuning
  // file): report their text, one per line.
  DiagnosticText diagnostics(*ir.context);
  if (mlir::failed(pm.run(*ir.module)))
    return Status::error(diagnostics.text().empty() ? "the compile pipeline failed"
                                                    : diagnostics.text());
  return Status::ok();
}

StatusOr<plan::Plan> lowerToPlan(ModelIR &ir, const PlanOptions &options,
                                 mlir::TimingScope &timer) {
  mlir::TimingScope planTimer = timer.nest("plan");
  DiagnosticText diagnostics(*ir.context, /*withLocations=*/true);
  mlir::FailureOr<plan::Plan> lowered = buildPlan(*ir.module, options);
  if (mlir::failed(lowered))
    return Status::error("lowering to the plan failed:\n" + diagnostics.text());
  plan::Plan plan = std::move(*lowered);
  plan.configJson = ir.configJson;
  if (!ir.checkpointDir.empty()) {
    char resolved[PATH_MAX];
    plan.checkpointPath = realpath(ir.checkpointDir.c_str(), resolved) ? resolved : ir.checkpointDir;
    StatusOr<std::string> fingerprint = checkpointFingerprint(plan.checkpointPath);
    if (!fingerprint)
      return fingerprint.status();
    plan.checkpointFingerprint = *fingerprint;
    plan.weightsMode = "external";
  }
  return plan;
}

DiagnosticText::DiagnosticText(mlir::MLIRContext &context, bool withLocations)
    : handler_(&context, [this, withLocations](mlir::Diagnostic &diag) {
        if (withLocations) {
          llvm::raw_string_ostream os(text_);
          os << diag.getLocation() << ": " << diag.str() << "\n";
        } else {
          if (!text_.empty())
            text_ += "\n";
          text_ += diag.str();
        }
        return mlir::success();
      }) {}

bool isArtifactFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  return in && in.read(magic, 8) && std::string(magic, 7) == "M2CARTF";
}

StatusOr<RunnableModel> loadRunnableModel(const RunModelRequest &request) {
  mlir::DefaultTimingManager timingManager;
  mlir::TimingScope rootTimer = timingManager.getRootScope();
  RunnableModel model;
  if (isArtifactFile(request.model)) {
    StatusOr<Artifact> loaded = Artifact::load(request.model, "cpu");
    if (!loaded)
      return loaded.status();
    model.artifact.emplace(loaded.take());
    model.plan = model.artifact->plan();
  } else {
    // A model directory, config or preset: compile in memory first.
    CompileRequest compile;
    compile.model = request.model;
    compile.overrides = request.overrides;
    compile.frontend.kvCacheDtype = "f32";
    compile.plan.maxTokens = request.maxTokens;
    StatusOr<ModelIR> ir = buildModelIR(compile, rootTimer);
    if (!ir)
      return ir.status();
    M2C_RETURN_IF_ERROR(runPipeline(*ir, request.passes, rootTimer));
    StatusOr<plan::Plan> lowered = lowerToPlan(*ir, compile.plan, rootTimer);
    if (!lowered)
      return lowered.status();
    model.plan = lowered.take();
    if (model.plan.weightsMode == "none" && !request.randomWeights &&
        request.checkpointPath.empty())
      return Status::error("'" + request.model +
                           "' has no checkpoint: pass --random-weights or a model directory");
  }
  WeightSourceOptions source;
  source.random = request.randomWeights;
  source.seed = request.weightSeed;
  source.checkpointPath = request.checkpointPath;
  ProgressLine progress("loading weights");
  source.progress = [&](size_t done, size_t total, uint64_t bytes) {
    progress.update(done, total, bytes);
  };
  StatusOr<WeightSet> weights =
      loadWeights(model.plan, model.artifact ? &*model.artifact : nullptr, source);
  if (!weights)
    return weights.status();
  model.weights = weights.take();
  return model;
}

namespace {
double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
} // namespace

void ProgressLine::update(size_t done, size_t total, uint64_t bytes) {
  double now = nowSeconds();
  if (start_ < 0)
    start_ = now;
  double elapsed = now - start_;
  // Quiet for quick work; a line every call once it has taken a second.
  if (elapsed < 1.0 && !printed_)
    return;
  double eta = done ? elapsed * (static_cast<double>(total) - done) / done : 0;
  llvm::errs() << "\r" << what_ << ": " << done << "/" << total << ", "
               << llvm::format("%.1f", bytes / 1e6) << " MB, "
               << llvm::format("%.0f", elapsed) << " s elapsed, ETA "
               << llvm::format("%.0f", eta) << " s   ";
  printed_ = true;
}

ProgressLine::~ProgressLine() {
  if (printed_)
    llvm::errs() << "\n";
}

} // namespace m2c::tools
