//===- CompileDriver.h - MODEL -> IR -> plan -> artifact, for every front door -===//

#ifndef M2C_DRIVER_COMPILEDRIVER_H
#define M2C_DRIVER_COMPILEDRIVER_H

#include "codegen/PlanBuilder.h"
#include "driver/CompileOptions.h"
#include "frontend/ModelBuilder.h"
#include "passes/Pipeline.h"
#include "runtime/model/ModelConfig.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/plan/Plan.h"
#include "runtime/serve/BackendFactory.h"
#include "runtime/support/Progress.h"
#include "runtime/weights/Weights.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/Timing.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace m2c::driver {

struct CompileRequest {
  std::string model; // preset, directory or config.json
  std::vector<std::string> overrides;
  FrontendOptions frontend;
  PlanOptions plan;
  /// Print the frontend's notes to stderr (m2c tune builds the IR once per
  /// candidate and prints them once).
  bool printNotes = true;
};

/// Compiles every unique kernel of `plan` to PTX and records the result,
/// with launch geometry and parameter ABI, as the plan's GPU program.
Status attachGpuProgram(plan::Plan &plan, const std::string &target, mlir::MLIRContext &context);

/// The result of the frontend, kept with its context.
struct ModelIR {
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ModelConfig config;
  std::string configJson;
  /// The model directory when MODEL is a checkpoint directory, else "".
  std::string checkpointDir;
};

/// Builds the model IR; prints notes to stderr. Errors are user-facing.
StatusOr<ModelIR> buildModelIR(const CompileRequest &request, mlir::TimingScope &timer);

struct PassOptions {
  PipelineOptions pipeline;
  /// "all" in pipeline.disabledPasses skips the whole pipeline.
  std::vector<std::string> printAfter;
  bool printAfterAll = false;
  /// Print the passes' remarks (e.g. a fusion left out, and why) to stderr
  /// as notes, each distinct message once.
  bool printRemarks = true;
};

/// The driver's inputs, from resolved options.
struct CompileSetup {
  CompileRequest request;
  PassOptions passes;
  bool gpu = false;
};

/// Checks `options` (CompileOptions.h) and turns them into the driver's
/// inputs; the error names the offending flag and its valid values.
StatusOr<CompileSetup> resolveCompileOptions(const CompileOptions &options);

/// Runs the compile pipeline over the model IR in place.
Status runPipeline(ModelIR &ir, const PassOptions &options, mlir::TimingScope &timer);

/// Lowers the IR to a plan and records the model's config and weight
/// source (external when MODEL is a checkpoint directory).
StatusOr<plan::Plan> lowerToPlan(ModelIR &ir, const PlanOptions &options,
                                 mlir::TimingScope &timer);

/// While alive, collects the context's diagnostics as user-facing text:
/// messages joined by newlines, or "<location>: <message>" lines.
class DiagnosticText {
public:
  explicit DiagnosticText(mlir::MLIRContext &context, bool withLocations = false);
  const std::string &text() const { return text_; }
  /// Remarks are not errors: kept apart, each distinct message once.
  const std::vector<std::string> &remarks() const { return remarks_; }

private:
  std::string text_;
  std::vector<std::string> remarks_;
  mlir::ScopedDiagnosticHandler handler_;
};

/// --quant-calibration's precondition: the plan quantizes some weight.
Status checkCalibrationApplies(const plan::Plan &plan);

/// Writes `plan` (weightsMode "embed", laid out by layoutEmbeddedWeights) as
/// an artifact holding its weights from `source`, packed in their formats:
/// with GPTQ fitted to the prompts of `calibrationFile` when it is given,
/// else rounded to nearest. Shows progress; errors are user-facing.
Status writeEmbeddedArtifact(const plan::Plan &plan, const WeightSourceOptions &source,
                             const std::string &calibrationFile, const std::string &path);

/// What `m2c run` and `m2c chat` take: an artifact, or a model compiled in
/// memory through the same pipeline as `m2c compile`.
struct RunModelRequest {
  std::string model; // artifact path, preset, directory or config.json
  /// How a model that is not an artifact is compiled; its target follows
  /// backend.device (sm_90 for cuda, else cpu) and its model is `model`.
  CompileOptions compile;
  /// GPTQ calibration prompts for a model compiled in memory (see
  /// --quant-calibration); its weights then go through a temporary
  /// embedded artifact.
  std::string quantCalibration;
  /// Where the model runs: the backend and its weights.
  BackendRequest backend;
};

/// A plan ready to execute: its backend holds the weights. The plan lives
/// on the heap because the backend keeps a reference to it.
struct RunnableModel {
  std::optional<Artifact> artifact;
  std::unique_ptr<plan::Plan> planStorage;
  std::unique_ptr<Backend> backend;
  const plan::Plan &plan() const { return *planStorage; }
};

/// True when `path` starts with the artifact magic.
bool isArtifactFile(const std::string &path);

/// Loads an artifact or compiles MODEL in memory (for the CPU with an f32 KV
/// cache; for --device cuda to sm_90 PTX with a bf16 KV cache), then loads
/// its weights onto the device with a progress line. The CPU backend's KV
/// size must be set in request.backend. Errors are user-facing.
StatusOr<RunnableModel> loadRunnableModel(const RunModelRequest &request);

/// True when `dir` holds safetensors weights.
bool hasCheckpoint(const std::string &dir);

using m2c::ProgressLine;

} // namespace m2c::driver

#endif // M2C_DRIVER_COMPILEDRIVER_H
