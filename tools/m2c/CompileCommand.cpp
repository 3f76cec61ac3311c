//===- CompileCommand.cpp - m2c compile -----------------------------------===//

#include "Commands.h"
#include "driver/CompileDriver.h"

#include "codegen/PlanReport.h"
#include "codegen/ptx/PtxCodegen.h"
#include "passes/Passes.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/calibration/Calibration.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/CheckpointBinding.h"
#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"
#include "runtime/weights/Weights.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <optional>

using namespace llvm;

namespace m2c::tools {

using namespace m2c::driver;

cl::SubCommand compileCommand("compile", "Compile a model variant");

namespace {

cl::OptionCategory compileCategory("m2c compile options");

cl::opt<std::string> modelArg(cl::Positional, cl::desc("MODEL"),
                              cl::sub(compileCommand), cl::cat(compileCategory));

// Strings rather than cl::values enums: llvm::cl reports bad enum values
// itself, outside the "m2c: error:" format.
cl::opt<std::string> emitKind("emit",
                              cl::desc("What to write: summary, mlir, plan (JSON), ptx (GPU targets) "
                                       "or artifact (default: artifact with -o, else summary)"),
                              cl::value_desc("summary|mlir|plan|ptx|artifact"), cl::init(""),
                              cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("FILE"), cl::init("-"), cl::sub(compileCommand),
                                cl::cat(compileCategory));

cl::list<std::string> setOverrides(
    "set", cl::desc("Override a config.json key (key=value; nested keys with '.')"),
    cl::value_desc("key=value"), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> target("target",
                            cl::desc("Target: cpu, sm_80, sm_90 or sm_90a (GPU targets tile "
                                     "the kernels; their artifacts need PTX codegen)"),
                            cl::init("cpu"),
                            cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> weightsMode(
    "weights",
    cl::desc("Weights in the artifact: embed, external (checkpoint path + fingerprint) or "
             "none (default: external for a checkpoint directory, embed with "
             "--random-weights, else none)"),
    cl::value_desc("embed|external|none"), cl::init(""), cl::sub(compileCommand),
    cl::cat(compileCategory));

cl::opt<bool> randomWeights("random-weights",
                            cl::desc("Use seeded random weights instead of a checkpoint"),
                            cl::init(false), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<uint64_t> weightSeed("weight-seed", cl::desc("Seed for --random-weights"), cl::init(0),
                             cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<int64_t> maxTokens("max-tokens",
                           cl::desc("Tokens per step the memory plan is sized for"),
                           cl::init(1024), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per KV-cache block"),
                             cl::init(16), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> kvCacheDtype(
    "kv-cache-dtype",
    cl::desc("KV-cache element type: bf16, f16 or f32 (default: f32 for --target cpu, "
             "so the reference matches transformers' fp32 run)"),
    cl::init(""), cl::sub(compileCommand), cl::cat(compileCategory));

cl::list<std::string> disablePasses(
    "disable-pass", cl::desc("Leave a pass out of the pipeline ('all' skips every pass)"),
    cl::value_desc("PASS"), cl::sub(compileCommand), cl::cat(compileCategory));

cl::list<std::string> printIrAfter("print-ir-after",
                                   cl::desc("Print the IR after this pass (stderr)"),
                                   cl::value_desc("PASS"), cl::sub(compileCommand),
                                   cl::cat(compileCategory));

cl::opt<bool> printIrAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass (stderr)"),
                              cl::init(false), cl::sub(compileCommand),
                              cl::cat(compileCategory));

cl::opt<bool> fusionReport(
    "fusion-report",
    cl::desc("Print a table of the plan's kernels: fused ops, bytes, FLOPs, roofline time"),
    cl::init(false), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> reportEntry("report-entry", cl::desc("Entry point the report and --dot show"),
                                 cl::init("decode"), cl::sub(compileCommand),
                                 cl::cat(compileCategory));

cl::opt<std::string> reportDevice("report-device",
                                  cl::desc("Roofline of the report: h100 or h200"),
                                  cl::init("h100"), cl::sub(compileCommand),
                                  cl::cat(compileCategory));

cl::opt<int64_t> reportTokens("report-tokens", cl::desc("Tokens per step in the report"),
                              cl::init(1), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<int64_t> reportContext("report-context",
                               cl::desc("KV positions each token attends to in the report"),
                               cl::init(1024), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> dotFile("dot", cl::desc("Write the plan as a Graphviz graph"),
                             cl::value_desc("FILE"), cl::init(""), cl::sub(compileCommand),
                             cl::cat(compileCategory));

cl::opt<std::string> quantSpec(
    "quant", cl::desc("Weight formats per module class, e.g. experts=int4,attn=fp8,lm_head=none "
                      "(formats: none, int8, int4, fp8)"),
    cl::value_desc("class=format,..."), cl::init(""), cl::sub(compileCommand),
    cl::cat(compileCategory));

cl::opt<std::string> quantCalibration(
    "quant-calibration",
    cl::desc("Pack the quantized weights with GPTQ, fitted to the inputs these prompts produce "
             "(one line of token ids per prompt, as m2c tokenize prints; needs --weights embed)"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<std::string> tuningFile("tuning",
                                cl::desc("Tuning JSON overriding the tiling cost model"),
                                cl::value_desc("FILE.json"), cl::init(""),
                                cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<int64_t> samplingCandidates(
    "sampling-candidates",
    cl::desc("Best logits per row the decode tail returns for top-k sampling (0 = none; "
             "at most 512 on GPU targets)"),
    cl::value_desc("K"), cl::init(64), cl::sub(compileCommand), cl::cat(compileCategory));

cl::opt<bool> timing("time", cl::desc("Print wall time of each compile stage"), cl::init(false),
                     cl::sub(compileCommand), cl::cat(compileCategory));

} // namespace

int runCompile() {
  // Checked here: llvm::cl reports a missing cl::Required outside the
  // "m2c: error:" format.
  if (modelArg.empty())
    return reportError("compile: give a MODEL (see 'm2c compile --help')");
  std::string emit = emitKind;
  if (emit.empty())
    emit = outputFile == "-" ? "summary" : "artifact";
  if (emit != "summary" && emit != "mlir" && emit != "plan" && emit != "ptx" &&
      emit != "artifact")
    return reportError("--emit: expected summary, mlir, plan, ptx or artifact, got '" + emit +
                       "'");
  CompileOptions options;
  options.model = modelArg;
  options.overrides.assign(setOverrides.begin(), setOverrides.end());
  options.target = target;
  options.maxTokens = maxTokens;
  options.kvBlockSize = kvBlockSize;
  options.kvCacheType = kvCacheDtype;
  options.quant = quantSpec;
  options.disabledPasses.assign(disablePasses.begin(), disablePasses.end());
  options.printIrAfter.assign(printIrAfter.begin(), printIrAfter.end());
  options.printIrAfterAll = printIrAfterAll;
  options.samplingCandidates = samplingCandidates;
  options.tuningFile = tuningFile;
  StatusOr<CompileSetup> setup = resolveCompileOptions(options);
  if (!setup)
    return reportError(setup.status().message());
  const bool gpuTarget = setup->gpu;
  if (!weightsMode.empty() && weightsMode != "embed" && weightsMode != "external" &&
      weightsMode != "none")
    return reportError("--weights: expected embed, external or none, got '" + weightsMode + "'");
  if (emit == "artifact" && outputFile == "-")
    return reportError("--emit=artifact needs -o FILE");
  if (emit == "ptx" && !gpuTarget)
    return reportError("--emit=ptx needs a GPU --target (sm_80, sm_90 or sm_90a)");

  mlir::DefaultTimingManager timingManager;
  timingManager.setEnabled(timing);
  mlir::TimingScope rootTimer = timingManager.getRootScope();

  const CompileRequest &request = setup->request;
  RooflineDevice device;
  if (!lookupRooflineDevice(reportDevice, device))
    return reportError("--report-device: expected h100 or h200, got '" + reportDevice + "'");
  if (reportTokens <= 0 || reportContext <= 0)
    return reportError("--report-tokens and --report-context must be positive");
  StatusOr<ModelIR> ir = buildModelIR(request, rootTimer);
  if (!ir)
    return reportError(ir.status().message());
  if (Status status = runPipeline(*ir, setup->passes, rootTimer); !status)
    return reportError(status.message());

  if (fusionReport || !dotFile.empty()) {
    StatusOr<plan::Plan> reportPlan = lowerToPlan(*ir, request.plan, rootTimer);
    if (!reportPlan)
      return reportError(reportPlan.status().message());
    const plan::Entry *entry = reportPlan->findEntry(reportEntry);
    if (!entry)
      return reportError("--report-entry: no entry point '" + reportEntry +
                         "' (expected prefill or decode)");
    if (fusionReport) {
      StepShape shape;
      shape.tokens = reportTokens;
      shape.context = reportContext;
      std::ostringstream report;
      printFusionReport(report, *reportPlan, *entry, shape, device);
      outs() << report.str();
    }
    if (!dotFile.empty()) {
      std::ofstream dot(dotFile);
      printPlanDot(dot, *reportPlan, *entry);
      if (!dot)
        return reportError(dotFile + ": cannot write");
    }
    if (emitKind.empty() && outputFile == "-")
      return 0;
  }

  if (emit == "summary" || emit == "mlir") {
    std::string errorMessage;
    std::unique_ptr<ToolOutputFile> output = mlir::openOutputFile(outputFile, &errorMessage);
    if (!output)
      return reportError(outputFile + ": " + errorMessage);
    if (emit == "mlir") {
      mlir::TimingScope timer = rootTimer.nest("print");
      ir->module->print(output->os());
    } else {
      mlir::PassManager pm(ir->context.get());
      pm.enableTiming(rootTimer);
      pm.addPass(createPrintModelSummary());
      if (failed(pm.run(*ir->module)))
        return reportError("printing the model summary failed");
    }
    output->keep();
    return 0;
  }

  std::string mode = weightsMode;
  if (mode.empty())
    mode = randomWeights ? "embed" : ir->checkpointDir.empty() ? "none" : "external";
  if ((mode == "embed" || mode == "external") && !randomWeights && ir->checkpointDir.empty())
    return reportError("--weights=" + mode + ": '" + modelArg +
                       "' has no checkpoint; pass a model directory with safetensors, "
                       "--random-weights, or --weights=none");
  if (mode == "external" && randomWeights)
    return reportError("--weights=external needs a checkpoint, not --random-weights");
  if (!quantCalibration.empty() && mode != "embed")
    return reportError("--quant-calibration needs --weights embed: GPTQ's bytes are made at "
                       "compile time, and --weights " + mode + " keeps no weight bytes in the artifact");

  StatusOr<plan::Plan> plan = lowerToPlan(*ir, request.plan, rootTimer);
  if (!plan)
    return reportError(plan.status().message());
  plan->weightsMode = mode;
  if (!quantCalibration.empty())
    if (Status status = checkCalibrationApplies(*plan); !status)
      return reportError(status.message());
  if (mode != "external") {
    plan->checkpointPath.clear();
    plan->checkpointFingerprint.clear();
  }
  if (mode == "embed")
    layoutEmbeddedWeights(*plan);
  if (gpuTarget) {
    mlir::TimingScope ptxTimer = rootTimer.nest("ptx");
    Status status = attachGpuProgram(*plan, target, *ir->context);
    if (!status)
      return reportError(status.message());
  }
  if (emit == "ptx") {
    std::string errorMessage;
    std::unique_ptr<ToolOutputFile> output = mlir::openOutputFile(outputFile, &errorMessage);
    if (!output)
      return reportError(outputFile + ": " + errorMessage);
    // One module per unique kernel, each a complete PTX file between
    // the marker lines.
    for (const plan::GpuKernel &kernel : plan->gpu.kernels)
      output->os() << "// ===== m2c kernel " << kernel.name << " (" << target << ") =====\n"
                   << kernel.ptx << "\n";
    for (const plan::GpuRandomFill &fill : plan->gpu.randomFills)
      output->os() << "// ===== m2c kernel " << fill.name << " (" << target << ") =====\n"
                   << fill.ptx << "\n";
    for (const plan::GpuPackKernel &pack : plan->gpu.packKernels)
      output->os() << "// ===== m2c kernel " << pack.name << " (" << target << ") =====\n"
                   << pack.ptx << "\n";
    output->keep();
    return 0;
  }
  if (emit == "plan") {
    std::string errorMessage;
    std::unique_ptr<ToolOutputFile> output = mlir::openOutputFile(outputFile, &errorMessage);
    if (!output)
      return reportError(outputFile + ": " + errorMessage);
    output->os() << plan::planToJson(*plan) << "\n";
    output->keep();
    return 0;
  }
  mlir::TimingScope writeTimer = rootTimer.nest("write artifact");
  Status status;
  if (mode == "embed") {
    WeightSourceOptions source;
    source.random = randomWeights;
    source.seed = weightSeed;
    source.checkpointPath = ir->checkpointDir;
    status = writeEmbeddedArtifact(*plan, source, quantCalibration, outputFile);
  } else {
    status = writeArtifact(outputFile, *plan,
                           [](size_t, const WeightSink &) { return Status::ok(); });
  }
  if (!status)
    return reportError(status.message());
  return 0;
}

} // namespace m2c::tools
