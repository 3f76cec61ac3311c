//===- TuneCommand.cpp - m2c tune: the tiling search space, compiled ------===//
//
// The search half that needs MLIR: for one variant and GPU target, every
// tiled op's candidate parameters (codegen/tiling/TileSpace.h), compiled into
// artifacts without weights. Candidate i gives each tiling key its i-th
// alternative (or the cost model's choice when the key has fewer), so the
// number of artifacts is the largest space, not the product. `m2c-tune`
// times them on the GPU and writes the --tuning file (docs/m2c-tune.md).
//
//===----------------------------------------------------------------------===//

#include "Commands.h"
#include "driver/CompileDriver.h"

#include "codegen/tiling/TileSpace.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/support/Progress.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <fstream>

using namespace llvm;
using json = nlohmann::ordered_json;

namespace m2c::tools {

using namespace m2c::driver;

cl::SubCommand tuneCommand("tune", "Compile the tiling search space of a variant for m2c-tune");

namespace {

cl::OptionCategory tuneCategory("m2c tune options");

cl::opt<std::string> modelArg(cl::Positional, cl::desc("MODEL"), cl::sub(tuneCommand),
                              cl::cat(tuneCategory));
cl::opt<std::string> outDir("out-dir", cl::desc("Directory for space.json and the candidates"),
                            cl::value_desc("DIR"), cl::init(""), cl::sub(tuneCommand),
                            cl::cat(tuneCategory));
cl::opt<std::string> target("target", cl::desc("GPU target: sm_80, sm_90 or sm_90a"),
                            cl::init("sm_90"), cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::list<std::string> setOverrides(
    "set", cl::desc("Override a config.json key (key=value; nested keys with '.')"),
    cl::value_desc("key=value"), cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::opt<std::string> quantSpec("quant", cl::desc("Weight formats per module class, as for compile"),
                               cl::value_desc("class=format,..."), cl::init(""),
                               cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::opt<int64_t> maxTokens("max-tokens", cl::desc("Tokens per step the plan is sized for"),
                           cl::init(1024), cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::opt<int64_t> kvBlockSize("kv-block-size", cl::desc("Tokens per KV-cache block"),
                             cl::init(16), cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::opt<std::string> kvCacheDtype("kv-cache-dtype", cl::desc("KV-cache element type"),
                                  cl::init("bf16"), cl::sub(tuneCommand), cl::cat(tuneCategory));
cl::opt<int> maxCandidates("max-candidates",
                           cl::desc("Compile at most this many candidates (default: all)"),
                           cl::init(0), cl::sub(tuneCommand), cl::cat(tuneCategory));

/// The variant's tiled ops: tiling key -> the cost model's parameters.
std::map<std::string, tiling::TileParams> collectTiles(mlir::ModuleOp module) {
  std::map<std::string, tiling::TileParams> tiles;
  module.walk([&](mlir::Operation *op) {
    auto key = op->getAttrOfType<mlir::StringAttr>("m2c.tile_key");
    auto tile = op->getAttrOfType<mlir::DictionaryAttr>("m2c.tile");
    if (!key || !tile || tiles.count(key.str()))
      return;
    tiling::TileParams params;
    for (mlir::NamedAttribute param : tile)
      if (auto value = dyn_cast<mlir::IntegerAttr>(param.getValue()))
        params[param.getName().str()] = value.getInt();
    tiles[key.str()] = params;
  });
  return tiles;
}

json paramsToJson(const tiling::TileParams &params) {
  json out = json::object();
  for (const auto &[name, value] : params)
    out[name] = value;
  return out;
}

Status writeText(const std::string &path, const std::string &text) {
  std::ofstream out(path);
  out << text;
  if (!out)
    return Status::error(path + ": cannot write");
  return Status::ok();
}

/// Frontend + pipeline (with `tuningFile`) for the tune request.
StatusOr<ModelIR> tiledModel(const CompileSetup &setup, const std::string &tuningFile,
                             mlir::TimingScope &timer) {
  StatusOr<ModelIR> ir = buildModelIR(setup.request, timer);
  if (!ir)
    return ir.status();
  PassOptions passes = setup.passes;
  passes.pipeline.tuningFile = tuningFile;
  passes.printRemarks = setup.request.printNotes;
  M2C_RETURN_IF_ERROR(runPipeline(*ir, passes, timer));
  return ir;
}

} // namespace

int runTune() {
  if (modelArg.empty())
    return reportError("tune: give a MODEL (see 'm2c tune --help')");
  if (outDir.empty())
    return reportError("tune: give --out-dir DIR");
  CompileOptions options;
  options.model = modelArg;
  options.overrides.assign(setOverrides.begin(), setOverrides.end());
  options.target = target;
  options.gpuOnly = true;
  options.maxTokens = maxTokens;
  options.kvBlockSize = kvBlockSize;
  options.kvCacheType = kvCacheDtype;
  options.quant = quantSpec;
  StatusOr<CompileSetup> setup = resolveCompileOptions(options);
  if (!setup)
    return reportError(setup.status().message());
  if (maxCandidates < 0)
    return reportError("--max-candidates: expected a count >= 0");
  if (std::error_code ec = sys::fs::create_directories(outDir))
    return reportError(outDir + ": " + ec.message());

  CompileRequest &request = setup->request;
  mlir::DefaultTimingManager timingManager;
  mlir::TimingScope timer = timingManager.getRootScope();

  StatusOr<ModelIR> base = tiledModel(*setup, "", timer);
  if (!base)
    return reportError(base.status().message());
  std::map<std::string, std::vector<tiling::TileParams>> space;
  size_t count = 1;
  for (const auto &[key, params] : collectTiles(*base->module)) {
    space[key] = tiling::tuningCandidates(params);
    count = std::max(count, space[key].size());
  }
  if (maxCandidates > 0)
    count = std::min<size_t>(count, static_cast<size_t>(maxCandidates));

  json candidates = json::array();
  ProgressLine progress("compiling tuning candidates");
  uint64_t bytesWritten = 0;
  for (size_t i = 0; i < count; ++i) {
    json kernels = json::object();
    for (const auto &[key, options] : space)
      if (!options.front().empty())
        kernels[key] = paramsToJson(options[i < options.size() ? i : 0]);
    std::string stem = "candidate-" + std::to_string(i);
    std::string tuningPath = (Twine(outDir) + "/" + stem + ".tuning.json").str();
    json tuning = {{"version", 1}, {"target", std::string(target)}, {"kernels", kernels}};
    if (Status status = writeText(tuningPath, tuning.dump(2) + "\n"); !status)
      return reportError(status.message());

    request.printNotes = false;
    StatusOr<ModelIR> ir = tiledModel(*setup, tuningPath, timer);
    if (!ir)
      return reportError(stem + ": " + ir.status().message());
    StatusOr<plan::Plan> plan = lowerToPlan(*ir, request.plan, timer);
    if (!plan)
      return reportError(stem + ": " + plan.status().message());
    plan->weightsMode = "none";
    plan->checkpointPath.clear();
    plan->checkpointFingerprint.clear();
    if (Status status = attachGpuProgram(*plan, target, *ir->context); !status)
      return reportError(stem + ": " + status.message());
    std::string artifactPath = (Twine(outDir) + "/" + stem + ".m2a").str();
    if (Status status = writeArtifact(artifactPath, *plan,
                                      [](size_t, const WeightSink &) { return Status::ok(); });
        !status)
      return reportError(status.message());
    candidates.push_back({{"artifact", stem + ".m2a"}, {"kernels", kernels}});
    uint64_t size = 0;
    if (!sys::fs::file_size(artifactPath, size))
      bytesWritten += size;
    progress.update(i + 1, count, bytesWritten);
  }

  json spaceJson = {{"version", 1},
                    {"model", std::string(modelArg)},
                    {"target", std::string(target)},
                    {"candidates", candidates}};
  std::string spacePath = (Twine(outDir) + "/space.json").str();
  if (Status status = writeText(spacePath, spaceJson.dump(2) + "\n"); !status)
    return reportError(status.message());
  size_t tunable = 0;
  for (const auto &[key, options] : space)
    tunable += options.front().empty() ? 0 : 1;
  outs() << "m2c tune: " << count << " candidates for " << tunable << " tunable of "
         << space.size() << " tiled kernels in " << outDir << "\n"
         << "next, on the GPU: m2c-tune " << outDir << " --random-weights --output tuning.json\n";
  return 0;
}

} // namespace m2c::tools
