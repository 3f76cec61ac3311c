//===- m2c-ptx.cpp - Emits the PTX of every unique kernel of a plan -------===//
//
// A test and inspection driver for codegen/ptx: reads a plan (JSON, as
// written by `m2c compile --emit=plan`) and writes, for one target, the PTX,
// the GPU-dialect IR or a summary of each unique kernel signature.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/PtxCodegen.h"
#include "tools/OwnOptions.h"

#include "runtime/plan/Plan.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace m2c;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory ptxCategory("m2c-ptx options");
cl::opt<std::string> planFile(cl::Positional, cl::desc("<plan.json>"), cl::Required,
                              cl::cat(ptxCategory));
cl::opt<std::string> targetName("target", cl::desc("PTX target: sm_80, sm_90 or sm_90a"),
                                cl::init("sm_90"), cl::cat(ptxCategory));
enum class Emit { Ptx, Mlir, Summary, Manifest };
cl::opt<Emit> emit("emit", cl::desc("What to write"), cl::init(Emit::Ptx),
                   cl::values(clEnumValN(Emit::Ptx, "ptx", "PTX of each unique kernel"),
                              clEnumValN(Emit::Mlir, "mlir",
                                         "GPU-dialect IR of each unique kernel (before lowering)"),
                              clEnumValN(Emit::Summary, "summary",
                                         "names, signatures, launch geometry and ABI"),
                              clEnumValN(Emit::Manifest, "manifest",
                                         "the summary as JSON (with --output-dir: also "
                                         "written there as manifest.json)")),
                   cl::cat(ptxCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"), cl::init("-"),
                                cl::cat(ptxCategory));
cl::opt<std::string> outputDir("output-dir",
                               cl::desc("Write one <kernel>.ptx per unique kernel here"),
                               cl::init(""), cl::cat(ptxCategory));
cl::opt<std::string> kernelFilter("kernel",
                                  cl::desc("Only kernels whose name contains this string"),
                                  cl::init(""), cl::cat(ptxCategory));
cl::opt<std::string> toolkit("cuda-toolkit", cl::desc("CUDA toolkit root (for libdevice)"),
                             cl::init("/usr/local/cuda"), cl::cat(ptxCategory));
cl::opt<bool> timing("time", cl::desc("Print the time spent emitting PTX"), cl::init(false),
                     cl::cat(ptxCategory));

int fail(const llvm::Twine &message) {
  llvm::errs() << "m2c-ptx: error: " << message << "\n";
  return 1;
}

void printSummary(llvm::raw_ostream &os, const ptx::KernelBinary &binary, int64_t uses) {
  os << "kernel " << binary.name << " (used by " << uses << " plan kernels)\n";
  os << "  signature: " << binary.key << "\n";
  if (binary.workspaceBytes)
    os << "  workspace: " << binary.workspaceBytes << " bytes\n";
  if (binary.stateBytes)
    os << "  state: " << binary.stateBytes << " bytes\n";
  for (const plan::GpuLaunch &launch : binary.launches) {
    os << "  launch " << launch.entry << " grid(" << launch.grid[0].str() << ", "
       << launch.grid[1].str() << ", " << launch.grid[2].str() << ") block(" << launch.block[0]
       << ", " << launch.block[1] << ", " << launch.block[2] << ")";
    if (launch.sharedBytes)
      os << " dynamic_shared=" << launch.sharedBytes;
    os << "\n    params:";
    for (const plan::GpuParam &param : launch.params) {
      os << " " << plan::GpuParam::kindName(param.kind);
      if (param.kind == plan::GpuParam::Kind::Input ||
          param.kind == plan::GpuParam::Kind::Output ||
          param.kind == plan::GpuParam::Kind::Workspace ||
          param.kind == plan::GpuParam::Kind::State)
        os << "[" << param.index << "]";
      if (param.kind == plan::GpuParam::Kind::TensorMap)
        os << "[" << param.index << ", box " << param.box[0] << "x" << param.box[1] << "]";
    }
    os << "\n";
  }
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  m2c::tools::keepOnlyOwnOptions({&ptxCategory});
  cl::ParseCommandLineOptions(argc, argv, "m2c-ptx: PTX of each unique kernel of a plan\n");

  std::optional<ptx::PtxTarget> target = ptx::parsePtxTarget(targetName);
  if (!target)
    return fail("unknown --target '" + targetName + "' (expected sm_80, sm_90 or sm_90a)");
  auto file = llvm::MemoryBuffer::getFileOrSTDIN(planFile);
  if (!file)
    return fail(planFile + ": " + file.getError().message());
  StatusOr<plan::Plan> parsed = plan::planFromJson((*file)->getBuffer().str());
  if (!parsed)
    return fail(planFile + ": " + parsed.status().message());
  if (Status status = plan::verifyPlan(*parsed); !status)
    return fail(planFile + ": " + status.message());
  const plan::Plan &plan = *parsed;

  mlir::MLIRContext context;
  ptx::PtxOptions options;
  options.target = *target;
  options.toolkitPath = toolkit;

  std::string error;
  auto output = mlir::openOutputFile(outputFile, &error);
  if (!output)
    return fail(error);
  llvm::raw_ostream &os = output->os();

  if (emit == Emit::Mlir) {
    // One module per unique signature, in plan order.
    llvm::StringSet<> seen;
    for (const plan::Entry &entry : plan.entries)
      for (const plan::Kernel &kernel : entry.kernels) {
        auto key = ptx::kernelSignature(context, plan, entry, kernel);
        if (mlir::failed(key))
          return 1;
        if (!seen.insert(*key).second)
          continue;
        ptx::KernelBinary binary;
        auto module = ptx::buildKernelModule(context, plan, entry, kernel, options, binary);
        if (mlir::failed(module))
          return 1;
        if (!kernelFilter.empty() && binary.name.find(kernelFilter) == std::string::npos)
          continue;
        if (mlir::failed(ptx::simplifyKernelModule(**module)))
          return 1;
        os << "// kernel " << binary.name << ": " << binary.key << "\n";
        (*module)->print(os);
        os << "\n";
      }
    output->keep();
    return 0;
  }

  auto start = std::chrono::steady_clock::now();
  mlir::FailureOr<ptx::PlanPtx> result = ptx::emitPlanPtx(context, plan, options);
  if (mlir::failed(result))
    return 1;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<int64_t> uses(result->kernels.size(), 0);
  for (const auto &entry : result->kernelOf)
    for (int64_t id : entry)
      ++uses[id];

  if (!outputDir.empty()) {
    if (std::error_code ec = llvm::sys::fs::create_directories(outputDir))
      return fail(outputDir + ": " + ec.message());
    llvm::SmallString<256> path(outputDir);
    llvm::sys::path::append(path, "manifest.json");
    auto file = mlir::openOutputFile(path, &error);
    if (!file)
      return fail(error);
    file->os() << llvm::formatv("{0:2}", ptx::planPtxManifest(plan, *result)) << "\n";
    file->keep();
  }
  if (emit == Emit::Manifest) {
    os << llvm::formatv("{0:2}", ptx::planPtxManifest(plan, *result)) << "\n";
    output->keep();
    return 0;
  }
  for (size_t i = 0; i < result->kernels.size(); ++i) {
    const ptx::KernelBinary &binary = result->kernels[i];
    if (!kernelFilter.empty() && binary.name.find(kernelFilter) == std::string::npos)
      continue;
    if (emit == Emit::Summary) {
      printSummary(os, binary, uses[i]);
      continue;
    }
    if (!outputDir.empty()) {
      llvm::SmallString<256> path(outputDir);
      llvm::sys::path::append(path, binary.name + ".ptx");
      auto file = mlir::openOutputFile(path, &error);
      if (!file)
        return fail(error);
      file->os() << binary.ptx;
      file->keep();
      continue;
    }
    os << "// ===== kernel " << binary.name << " (" << ptx::ptxTargetName(binary.target)
       << ")\n// signature: " << binary.key << "\n" << binary.ptx << "\n";
  }
  if (timing)
    llvm::errs() << "m2c-ptx: emitted " << result->kernels.size() << " unique kernels for "
                 << ptx::ptxTargetName(*target) << " in " << llvm::format("%.2f", seconds)
                 << " s\n";
  output->keep();
  return 0;
}
