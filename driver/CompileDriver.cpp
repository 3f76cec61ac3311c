//===- CompileDriver.cpp - MODEL -> IR -> plan -> artifact -------------------===//

#include "driver/CompileDriver.h"

#include "codegen/ptx/PtxCodegen.h"
#include "passes/InitAll.h"
#include "runtime/calibration/Calibration.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/CheckpointBinding.h"
#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"
#include "runtime/weights/Weights.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/Pass.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace m2c::driver {

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
  if (request.printNotes)
    for (const std::string &note : notes)
      llvm::errs() << "m2c: note: " << note << "\n";
  return ir;
}

Status runPipeline(ModelIR &ir, const PassOptions &options, mlir::TimingScope &timer) {
  const std::vector<std::string> &passes = compilePipelinePasses();
  auto notAPass = [&](const char *flag, const std::string &name, const char *extra) {
    std::string list;
    for (const std::string &pass : passes)
      list += (list.empty() ? "" : ", ") + pass;
    return Status::error(std::string(flag) + ": '" + name + "' is not a pass of the pipeline (" +
                         list + extra + ")");
  };
  for (const std::string &name : options.pipeline.disabledPasses)
    if (name != "all" && std::find(passes.begin(), passes.end(), name) == passes.end())
      return notAPass("--disable-pass", name, "; or all");
  for (const std::string &name : options.printAfter)
    if (std::find(passes.begin(), passes.end(), name) == passes.end())
      return notAPass("--print-ir-after", name, "");
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
  if (options.printRemarks)
    for (const std::string &remark : diagnostics.remarks())
      llvm::errs() << "m2c: note: " << remark << "\n";
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
        if (diag.getSeverity() == mlir::DiagnosticSeverity::Remark) {
          std::string message = diag.str();
          if (std::find(remarks_.begin(), remarks_.end(), message) == remarks_.end())
            remarks_.push_back(std::move(message));
          return mlir::success();
        }
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

namespace {

/// GPTQ's bytes for the plan's quantized weights, from their full-precision
/// values in `full`, calibrated on the prompts of `calibrationFile`.
StatusOr<GptqPacking> calibrateAndPack(const plan::Plan &plan, const WeightSet &full,
                                       const std::string &calibrationFile) {
  StatusOr<std::vector<std::vector<int32_t>>> prompts =
      readCalibrationPrompts(calibrationFile, plan.vocabSize);
  if (!prompts)
    return Status::error("--quant-calibration: " + prompts.status().message());
  ProgressLine calibrating("calibrating (CPU)");
  CalibrationOptions options;
  options.progress = [&](size_t done, size_t total, int64_t) {
    calibrating.update(done, total, 0);
  };
  StatusOr<WeightHessians> hessians = collectHessians(plan, full, *prompts, options);
  if (!hessians)
    return Status::error("--quant-calibration: " + hessians.status().message());
  ProgressLine packing("GPTQ (matrices)");
  GptqOptions gptqOptions;
  gptqOptions.progress = [&](size_t done, size_t total) { packing.update(done, total, 0); };
  GptqPacking packed = packWithGptq(plan, full, *hessians, gptqOptions);
  llvm::errs() << "m2c: note: GPTQ packed " << packed.stats.gptqMatrices
               << " weight matrices from " << hessians->tokens << " calibration tokens";
  if (packed.stats.roundedMatrices)
    llvm::errs() << "; " << packed.stats.roundedMatrices
                 << " that saw fewer calibration rows than columns were rounded to nearest";
  llvm::errs() << "\n";
  return packed;
}

} // namespace

Status checkCalibrationApplies(const plan::Plan &plan) {
  if (std::none_of(plan.weights.begin(), plan.weights.end(), [](const plan::Weight &w) {
        return w.quantization != plan::Quantization::None;
      }))
    return Status::error("--quant-calibration: no weight is quantized (give --quant, e.g. "
                         "--quant experts=int4)");
  return Status::ok();
}

Status writeEmbeddedArtifact(const plan::Plan &plan, const WeightSourceOptions &source,
                             const std::string &calibrationFile, const std::string &path) {
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, nullptr, source);
  if (!reader)
    return reader.status();
  if (const Checkpoint *checkpoint = (*reader)->checkpoint()) {
    ValidationReport report;
    M2C_RETURN_IF_ERROR(validateCheckpoint(*checkpoint, *(*reader)->config(), &report));
  }
  // Without calibration the weights come one at a time, so peak memory is
  // one weight, not the model. GPTQ needs them all at once, and the writer
  // then takes every weight from that set instead of reading it again.
  std::optional<WeightSet> full;
  std::optional<GptqPacking> gptq;
  if (!calibrationFile.empty()) {
    full.emplace();
    full->tensors.resize(plan.weights.size());
    ProgressLine loading("loading weights for calibration");
    uint64_t bytesLoaded = 0;
    for (size_t i = 0; i < plan.weights.size(); ++i) {
      std::vector<float> &values = full->tensors[i];
      values.resize(static_cast<size_t>(plan.weights[i].numElements()));
      M2C_RETURN_IF_ERROR((*reader)->read(plan.weights[i], values.data()));
      bytesLoaded += values.size() * sizeof(float);
      loading.update(i + 1, plan.weights.size(), bytesLoaded);
    }
    StatusOr<GptqPacking> packed = calibrateAndPack(plan, *full, calibrationFile);
    if (!packed)
      return packed.status();
    gptq = packed.take();
  }
  ProgressLine progress("packing weights");
  uint64_t bytesDone = 0;
  std::vector<float> buffer;
  std::vector<uint8_t> packed;
  return writeArtifact(path, plan, [&](size_t i, const WeightSink &sink) -> Status {
    const plan::Weight &w = plan.weights[i];
    if (gptq && !gptq->packed[i].empty()) {
      bytesDone += gptq->packed[i].size();
      progress.update(i + 1, plan.weights.size(), bytesDone);
      return sink(gptq->packed[i].data(), gptq->packed[i].size());
    }
    const float *values;
    size_t count = static_cast<size_t>(w.numElements());
    if (full) {
      values = full->tensors[i].data();
    } else {
      buffer.resize(count);
      M2C_RETURN_IF_ERROR((*reader)->read(w, buffer.data()));
      values = buffer.data();
    }
    packed.resize(w.storage.bytes);
    if (w.quantization != plan::Quantization::None) {
      packQuantized(w, values, packed.data());
    } else if (w.storage.type == plan::ElementType::BF16) {
      for (size_t j = 0; j < count; ++j) {
        uint16_t bits = f32ToBf16(values[j]);
        std::memcpy(packed.data() + 2 * j, &bits, 2);
      }
    } else if (w.storage.type == plan::ElementType::F32) {
      std::memcpy(packed.data(), values, count * sizeof(float));
    } else {
      return Status::error("weight '" + w.symbol + "': cannot pack storage type " +
                           plan::elementTypeName(w.storage.type));
    }
    bytesDone += packed.size();
    progress.update(i + 1, plan.weights.size(), bytesDone);
    return sink(packed.data(), packed.size());
  });
}

namespace {

/// The in-memory plan's weights packed with GPTQ into a temporary embedded
/// artifact, loaded back (the file is unlinked once mapped).
StatusOr<Artifact> packThroughArtifact(plan::Plan plan, const ModelIR &ir,
                                       const RunModelRequest &request) {
  M2C_RETURN_IF_ERROR(checkCalibrationApplies(plan));
  WeightSourceOptions source = request.backend.weights;
  if (source.checkpointPath.empty())
    source.checkpointPath = ir.checkpointDir;
  plan.weightsMode = "embed";
  plan.checkpointPath.clear();
  plan.checkpointFingerprint.clear();
  layoutEmbeddedWeights(plan);
  llvm::SmallString<128> path;
  if (std::error_code error = llvm::sys::fs::createTemporaryFile("m2c-gptq", "m2a", path))
    return Status::error("--quant-calibration: cannot create a temporary artifact: " +
                         error.message());
  Status written = writeEmbeddedArtifact(plan, source, request.quantCalibration, path.str().str());
  StatusOr<Artifact> loaded = written ? Artifact::load(path.str().str())
                                      : StatusOr<Artifact>(written);
  llvm::sys::fs::remove(path);
  return loaded;
}

} // namespace

bool isArtifactFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  return in && in.read(magic, 8) && std::string(magic, 7) == "M2CARTF";
}

StatusOr<RunnableModel> loadRunnableModel(const RunModelRequest &request) {
  mlir::DefaultTimingManager timingManager;
  mlir::TimingScope rootTimer = timingManager.getRootScope();
  RunnableModel model;
  if (isArtifactFile(request.model) && !request.quantCalibration.empty())
    return Status::error("--quant-calibration: '" + request.model +
                         "' is an artifact, whose weights are packed already; give a model "
                         "directory, config or preset");
  if (isArtifactFile(request.model)) {
    StatusOr<Artifact> loaded = Artifact::load(request.model);
    if (!loaded)
      return loaded.status();
    model.artifact.emplace(loaded.take());
    model.planStorage = std::make_unique<plan::Plan>(model.artifact->plan());
  } else {
    // A model directory, config or preset: compile in memory first.
    // The GPU runs what `m2c compile --target sm_90` would produce.
    CompileOptions options = request.compile;
    options.model = request.model;
    options.target = request.backend.device == "cuda" ? "sm_90" : "cpu";
    StatusOr<CompileSetup> setup = resolveCompileOptions(options);
    if (!setup)
      return setup.status();
    const std::string &target = options.target;
    const bool gpu = setup->gpu;
    StatusOr<ModelIR> ir = buildModelIR(setup->request, rootTimer);
    if (!ir)
      return ir.status();
    M2C_RETURN_IF_ERROR(runPipeline(*ir, setup->passes, rootTimer));
    StatusOr<plan::Plan> lowered = lowerToPlan(*ir, setup->request.plan, rootTimer);
    if (!lowered)
      return lowered.status();
    model.planStorage = std::make_unique<plan::Plan>(lowered.take());
    if (gpu)
      M2C_RETURN_IF_ERROR(attachGpuProgram(*model.planStorage, target, *ir->context));
    if (model.planStorage->weightsMode == "none" && !request.backend.weights.random &&
        request.backend.weights.checkpointPath.empty())
      return Status::error("'" + request.model +
                           "' has no checkpoint: pass --random-weights or a model directory");
    if (!request.quantCalibration.empty()) {
      // GPTQ's bytes are made by the compile-time packer, so the weights go
      // through an embedded artifact, as `m2c compile --quant-calibration`
      // would write it; the backend then loads that.
      StatusOr<Artifact> packed = packThroughArtifact(*model.planStorage, *ir, request);
      if (!packed)
        return packed.status();
      model.artifact.emplace(packed.take());
      model.planStorage = std::make_unique<plan::Plan>(model.artifact->plan());
    }
  }
  BackendRequest backendRequest = request.backend;
  if (!request.quantCalibration.empty())
    backendRequest.weights.random = false; // they are in the artifact now
  StatusOr<std::unique_ptr<Backend>> backend = createBackend(
      *model.planStorage, model.artifact ? &*model.artifact : nullptr, backendRequest);
  if (!backend)
    return backend.status();
  model.backend = backend.take();
  return model;
}

Status attachGpuProgram(plan::Plan &plan, const std::string &target,
                        mlir::MLIRContext &context) {
  ptx::PtxOptions options;
  options.target = *ptx::parsePtxTarget(target);
  DiagnosticText diagnostics(context);
  mlir::FailureOr<ptx::PlanPtx> compiled = ptx::emitPlanPtx(context, plan, options);
  if (mlir::failed(compiled))
    return Status::error("PTX codegen failed: " + diagnostics.text());
  plan::GpuProgram &program = plan.gpu;
  program = plan::GpuProgram();
  program.target = target;
  program.gridDependencyControl = ptx::usesGridDependencyControl(options.target);
  program.kernelOf = compiled->kernelOf;
  // Each binary is the artifact's kernel; its signature key stays here.
  for (const ptx::KernelBinary &binary : compiled->kernels)
    program.kernels.push_back(static_cast<const plan::GpuKernel &>(binary));
  for (const ptx::RandomFillBinary &fill : compiled->randomFills)
    program.randomFills.push_back(
        {fill.logical, fill.storage, fill.binary.name, fill.binary.ptx, fill.block});
  for (const ptx::PackKernelBinary &pack : compiled->packKernels)
    program.packKernels.push_back(
        {pack.quantization, pack.binary.name, pack.binary.ptx, pack.block});
  return Status::ok();
}


} // namespace m2c::driver
