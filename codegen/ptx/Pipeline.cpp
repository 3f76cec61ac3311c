//===- Pipeline.cpp - gpu.module -> PTX text, in process ------------------===//
//
// The lowering pipeline, in one place:
//   nvvm-attach-target{chip, features, O}      every gpu.module gets its target
//   gpu.module(
//     canonicalize, cse                        fold the builders' index arithmetic
//     convert-nvgpu-to-nvvm                    ldmatrix etc. -> nvvm
//     convert-scf-to-cf                        structured -> CFG
//     convert-gpu-to-nvvm{bare pointers}       gpu/arith/math/memref/vector/cf -> llvm+nvvm;
//                                              memref params become bare pointers
//     reconcile-unrealized-casts)              post: the module is llvm + nvvm only
//   gpu-module-to-binary{format=isa, toolkit}  LLVM IR, libdevice linked, NVPTX -> PTX text
// Post-condition: every gpu.module is replaced by a gpu.binary whose single
// object holds the PTX.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/PtxCodegen.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"

using namespace mlir;

namespace m2c::ptx {

const char *ptxTargetName(PtxTarget target) {
  switch (target) {
  case PtxTarget::SM80:
    return "sm_80";
  case PtxTarget::SM90:
    return "sm_90";
  case PtxTarget::SM90a:
    return "sm_90a";
  }
  return "sm_90";
}

std::optional<PtxTarget> parsePtxTarget(llvm::StringRef name) {
  if (name == "sm_80")
    return PtxTarget::SM80;
  if (name == "sm_90")
    return PtxTarget::SM90;
  if (name == "sm_90a")
    return PtxTarget::SM90a;
  return std::nullopt;
}

void registerPtxCodegenDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, cf::ControlFlowDialect, func::FuncDialect,
                  gpu::GPUDialect, LLVM::LLVMDialect, math::MathDialect, memref::MemRefDialect,
                  NVVM::NVVMDialect, nvgpu::NVGPUDialect, scf::SCFDialect, ub::UBDialect,
                  vector::VectorDialect>();
  // convert-gpu-to-nvvm lowers every loaded dialect through its
  // ConvertToLLVMPatternInterface.
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  NVVM::registerConvertGpuToNVVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  // gpu-module-to-binary: the NVVM target and LLVM IR translation.
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
}

namespace {

/// PTX ISA version per target. LLVM 22 defaults to 7.8 for sm_90 and 8.0
/// for sm_90a; ptxas 13 accepts 7.8-9.0 for both. 8.0 everywhere keeps one
/// ISA level across targets (and is what sm_90a needs).
const char *ptxFeatures(PtxTarget target) {
  (void)target;
  return "+ptx80";
}

} // namespace

LogicalResult simplifyKernelModule(ModuleOp module) {
  PassManager pm(module.getContext());
  OpPassManager &gpuPm = pm.nest<gpu::GPUModuleOp>();
  gpuPm.addPass(createCanonicalizerPass());
  gpuPm.addPass(createCSEPass());
  return pm.run(module);
}

FailureOr<std::vector<std::pair<std::string, std::string>>>
lowerToPtx(ModuleOp module, const PtxOptions &options) {
  MLIRContext *context = module.getContext();
  PassManager pm(context);

  GpuNVVMAttachTargetOptions attach;
  attach.chip = ptxTargetName(options.target);
  attach.features = ptxFeatures(options.target);
  attach.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(attach));

  OpPassManager &gpuPm = pm.nest<gpu::GPUModuleOp>();
  gpuPm.addPass(createCanonicalizerPass());
  gpuPm.addPass(createCSEPass());
  gpuPm.addPass(createConvertNVGPUToNVVMPass());
  gpuPm.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions toNvvm;
  // Kernel parameters are plain device pointers (all memrefs are static).
  toNvvm.useBarePtrCallConv = true;
  gpuPm.addPass(createConvertGpuOpsToNVVMOps(toNvvm));
  // NVVM ops without an LLVM intrinsic (mbarrier.try_wait.parity's loop,
  // wgmma.mma_async) become inline PTX.
  gpuPm.addPass(createConvertNVVMToLLVMPass());
  gpuPm.addPass(createReconcileUnrealizedCastsPass());

  GpuModuleToBinaryPassOptions toBinary;
  toBinary.compilationTarget = "isa";
  toBinary.toolkitPath = options.toolkitPath;
  pm.addPass(createGpuModuleToBinaryPass(toBinary));

  if (failed(pm.run(module)))
    return failure();

  std::vector<std::pair<std::string, std::string>> result;
  for (auto binary : module.getOps<gpu::BinaryOp>()) {
    auto objects = binary.getObjects();
    if (objects.size() != 1)
      return binary.emitError("expected one PTX object, got ") << objects.size();
    auto object = cast<gpu::ObjectAttr>(objects[0]);
    std::string ptx = object.getObject().getValue().str();
    // The serializer keeps the C string's terminator.
    while (!ptx.empty() && ptx.back() == '\0')
      ptx.pop_back();
    result.emplace_back(binary.getSymName().str(), std::move(ptx));
  }
  return result;
}

} // namespace m2c::ptx
