//===- PtxCodegen.h - Plan kernels -> PTX, in process ----------*- C++ -*-===//
//
// Lowers the kernels of a plan to PTX for one NVIDIA target. Each kernel is
// built as a `gpu.module` of `gpu.func`s (gpu, vector, memref, arith, math,
// scf, nvgpu, nvvm), then lowered in process through NVVM to PTX text; no
// CUDA is needed at compile time except libdevice (toolkitPath).
//
// A KernelBinary is everything a runtime needs to launch one plan kernel:
// the PTX module, and per launch its entry name, launch geometry (as a
// function of the step's token count) and parameter ABI. Plan kernels with
// the same signature (kind, operand types and shapes, attributes except the
// layer, entry-point flavour) share one KernelBinary: emitPlanPtx compiles
// each signature once.
//
// See docs/ptx-codegen.md for every kernel's design and the ABI.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_PTXCODEGEN_H
#define M2C_CODEGEN_PTX_PTXCODEGEN_H

#include "runtime/plan/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace m2c::ptx {

/// The NVIDIA targets m2c emits PTX for. sm_90a enables Hopper-only
/// instructions (wgmma, TMA, setmaxnreg); PTX for it runs only on sm_90.
enum class PtxTarget : uint8_t { SM80, SM90, SM90a };
/// "sm_80", "sm_90", "sm_90a".
const char *ptxTargetName(PtxTarget target);
/// Whether kernels for `target` begin with griddepcontrol (sm_90+), so the
/// runtime may launch them with programmatic dependent launch: each waits
/// for the grids before it, then lets the next one be scheduled.
inline bool usesGridDependencyControl(PtxTarget target) { return target != PtxTarget::SM80; }
std::optional<PtxTarget> parsePtxTarget(llvm::StringRef name);

struct PtxOptions {
  PtxTarget target = PtxTarget::SM90;
  /// CUDA toolkit root: libdevice (nvvm/libdevice/libdevice.10.bc) is
  /// linked from it for math functions.
  std::string toolkitPath = "/usr/local/cuda";
  /// LLVM optimisation level of the NVPTX back end.
  int optLevel = 3;
};

/// The compiled form of one plan-kernel signature: the plan::GpuKernel an
/// artifact carries (PTX, launches with their geometry and parameter ABI,
/// workspace and state), plus what codegen keeps to itself.
struct KernelBinary : plan::GpuKernel {
  /// The full signature every plan kernel using this binary shares.
  std::string key;
  PtxTarget target = PtxTarget::SM90;
};

/// A random-weight fill kernel (plan::GpuRandomFill) for one type pair.
struct RandomFillBinary {
  plan::ElementType logical = plan::ElementType::BF16;
  plan::ElementType storage = plan::ElementType::BF16;
  int64_t block = 256;
  KernelBinary binary;
};

/// A quantized-packing kernel (plan::GpuPackKernel) for one format.
struct PackKernelBinary {
  plan::Quantization quantization = plan::Quantization::None;
  int64_t block = 0;
  KernelBinary binary;
};

/// The PTX of a whole plan: each unique signature compiled once.
struct PlanPtx {
  PtxTarget target = PtxTarget::SM90;
  std::vector<KernelBinary> kernels;
  /// One per (logical, storage) type pair of the plan's unquantized f32 and
  /// bf16 weights.
  std::vector<RandomFillBinary> randomFills;
  /// One per quantization format of the plan's weights; their random fills
  /// write f32 (logical, F32) to scratch first.
  std::vector<PackKernelBinary> packKernels;
  /// kernelOf[e][k]: index into `kernels` of plan.entries[e].kernels[k].
  std::vector<std::vector<int64_t>> kernelOf;
  /// Seconds spent building IR and lowering it to PTX.
  double seconds = 0;
};

/// Registers the dialects, LLVM-lowering interfaces, NVVM target model and
/// LLVM IR translations the PTX pipeline needs.
void registerPtxCodegenDialects(mlir::DialectRegistry &registry);

/// The signature of `kernel` (of `entry`): equal keys mean one binary
/// serves both kernels. Fails (with a diagnostic) on kernels the PTX path
/// does not lower.
mlir::FailureOr<std::string> kernelSignature(mlir::MLIRContext &context, const plan::Plan &plan,
                                             const plan::Entry &entry,
                                             const plan::Kernel &kernel);

/// Builds the GPU-dialect module of one plan kernel (before lowering): what
/// `m2c-ptx --emit=mlir` prints. `launches` receives the launch geometry.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildKernelModule(mlir::MLIRContext &context, const plan::Plan &plan, const plan::Entry &entry,
                  const plan::Kernel &kernel, const PtxOptions &options,
                  KernelBinary &binary);

/// Compiles one plan kernel of `entry` to PTX.
mlir::FailureOr<KernelBinary> emitKernelPtx(mlir::MLIRContext &context, const plan::Plan &plan,
                                            const plan::Entry &entry,
                                            const plan::Kernel &kernel,
                                            const PtxOptions &options);

/// Compiles every unique kernel signature of `plan` once. Kernel names are
/// made unique within the result (a "_2", "_3" suffix on collisions).
mlir::FailureOr<PlanPtx> emitPlanPtx(mlir::MLIRContext &context, const plan::Plan &plan,
                                     const PtxOptions &options);

/// The launch ABI of every kernel of `result` (names, signatures, PTX file
/// names "<name>.ptx", workspace, launches: grid extents, block, params) and
/// which binary each plan kernel of each entry uses, as written by
/// `m2c-ptx --emit=manifest`. Everything but the PTX text an artifact needs.
llvm::json::Value planPtxManifest(const plan::Plan &plan, const PlanPtx &result);

/// Canonicalizes and CSEs every gpu.module of `module` (the first stage of
/// the lowering pipeline): the readable form `m2c-ptx --emit=mlir` prints.
mlir::LogicalResult simplifyKernelModule(mlir::ModuleOp module);

/// Runs the lowering pipeline on a module of `gpu.module`s and returns each
/// module's PTX by symbol name, in module order.
mlir::FailureOr<std::vector<std::pair<std::string, std::string>>>
lowerToPtx(mlir::ModuleOp module, const PtxOptions &options);

} // namespace m2c::ptx

#endif // M2C_CODEGEN_PTX_PTXCODEGEN_H
