//===- PtxCodegen.cpp - Plan kernels -> gpu.module -> PTX -----------------===//
//
// Resolves each plan kernel to a KernelSpec (its signature), picks the
// kernel family and variant, builds the gpu.module, and lowers it with the
// pipeline of Pipeline.cpp. emitPlanPtx compiles each distinct signature
// once; all gpu.modules of a plan go through one pass-manager run so the
// nested conversions run in parallel.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/PtxCodegen.h"

#include "codegen/ptx/Families.h"
#include "codegen/ptx/KernelBuilder.h"
#include "codegen/ptx/KernelSpec.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;

namespace m2c::ptx {

namespace {

void loadDialects(MLIRContext &context) {
  DialectRegistry registry;
  registerPtxCodegenDialects(registry);
  context.appendDialectRegistry(registry);
  for (StringRef name : registry.getDialectNames())
    context.getOrLoadDialect(name);
}

Location kernelLoc(MLIRContext &context, const plan::Kernel &kernel) {
  return NameLoc::get(StringAttr::get(&context, kernel.name));
}

FailureOr<TensorInfo> resolveOperand(Location loc, const plan::Plan &plan,
                                     const plan::Entry &entry, const plan::Operand &op) {
  TensorInfo t;
  t.kind = op.kind;
  switch (op.kind) {
  case plan::Operand::Kind::Buffer: {
    if (op.index < 0 || op.index >= static_cast<int64_t>(entry.buffers.size()))
      return emitError(loc) << "buffer " << op.index << " out of range [0, "
                            << entry.buffers.size() << ")";
    const plan::Buffer &buffer = entry.buffers[op.index];
    t.type = buffer.type;
    t.tokenRows = buffer.staticRows == 0;
    t.shape = {t.tokenRows ? plan.maxTokens : buffer.staticRows, buffer.cols};
    return t;
  }
  case plan::Operand::Kind::Weight: {
    if (op.index < 0 || op.index >= static_cast<int64_t>(plan.weights.size()))
      return emitError(loc) << "weight " << op.index << " out of range [0, "
                            << plan.weights.size() << ")";
    const plan::Weight &weight = plan.weights[op.index];
    // Kernels read weights as the runtime stores them: in their storage
    // type, or packed (WeightOperand).
    t.quantization = weight.quantization;
    t.type = t.quantization == plan::Quantization::None ? weight.storage.type : weight.type;
    t.shape = weight.shape;
    return t;
  }
  case plan::Operand::Kind::Input: {
    if (op.index < 0 || op.index >= plan::kNumEntryInputs)
      return emitError(loc) << "entry input " << op.index << " out of range";
    t.type = plan::ElementType::I32;
    t.input = static_cast<plan::EntryInput>(op.index);
    t.tokenRows = t.input != plan::EntryInput::BlockTables;
    // Block tables are [sequences, max_blocks], both known only at run time.
    t.shape = {t.tokenRows ? plan.maxTokens : int64_t(1) << 40};
    return t;
  }
  }
  return emitError(loc) << "unknown operand kind";
}

FailureOr<KernelSpec> resolveSpec(MLIRContext &context, const plan::Plan &plan,
                                  const plan::Entry &entry, const plan::Kernel &kernel) {
  Location loc = kernelLoc(context, kernel);
  if (plan.maxTokens <= 0)
    return emitError(loc) << "plan has max_tokens " << plan.maxTokens;
  KernelSpec spec;
  spec.kind = kernel.kind;
  spec.maxTokens = plan.maxTokens;
  for (const plan::Operand &op : kernel.inputs) {
    FailureOr<TensorInfo> t = resolveOperand(loc, plan, entry, op);
    if (failed(t))
      return failure();
    spec.inputs.push_back(*t);
  }
  for (int64_t id : kernel.outputs) {
    FailureOr<TensorInfo> t = resolveOperand(loc, plan, entry, plan::Operand::buffer(id));
    if (failed(t))
      return failure();
    spec.outputs.push_back(*t);
  }
  for (const auto &[key, value] : kernel.attrs)
    if (key != "layer")
      spec.attrs[key] = value;

  // The arity, shapes and attributes each kind requires: the plan's own
  // verifier, so codegen never reads past what it checked.
  if (Status status = plan::verifyKernel(plan, entry, kernel); !status)
    return emitError(loc) << status.message();
  if (kernel.kind == plan::KernelKind::Attention)
    spec.kvCache = plan.kvCache;
  // Only the matrices of linear layers, the lm_head and experts are packed.
  if (kernel.kind != plan::KernelKind::Linear && kernel.kind != plan::KernelKind::MoeExperts &&
      kernel.kind != plan::KernelKind::LmHead)
    for (const TensorInfo &t : spec.inputs)
      if (t.quantization != plan::Quantization::None)
        return emitError(loc) << "'" << plan::kernelKindName(kernel.kind)
                              << "' kernel reads a quantized weight ("
                              << plan::quantizationName(t.quantization)
                              << "); only linear, lm_head and moe_experts kernels read packed "
                                 "weights";

  spec.decode = entry.name == "decode";
  if (kernel.kind == plan::KernelKind::MoeExperts)
    spec.moeGrouped = !spec.decode && moeGroupedSupports(spec);
  if (kernel.kind == plan::KernelKind::Linear) {
    // Decode steps are bandwidth-bound (GEMV); prefill chunks are
    // compute-bound (tensor cores). A one-row prefill linear (the lm_head
    // after take_last_row) is a GEMV too.
    bool decode = entry.name == "decode" || !spec.inputs[0].tokenRows;
    spec.linear = decode ? LinearVariant::Gemv : LinearVariant::Mma;
    // The tiling pass asks for wgmma on sm_90a where the weight allows it.
    if (spec.linear == LinearVariant::Mma && spec.wgmmaTile()) {
      if (!wgmmaGemmSupports(spec))
        return emitError(loc) << "kernel '" << kernel.name
                              << "': tile parameter wgmma = 1 needs f32 activations, an "
                                 "unpacked bf16 weight and K a multiple of 64";
      spec.linear = LinearVariant::Wgmma;
    }
    if (spec.linear == LinearVariant::Mma && !mmaGemmSupports(spec))
      spec.linear = LinearVariant::Gemv;
  }
  return spec;
}

LogicalResult buildFamily(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &binary) {
  switch (spec.kind) {
#define M2C_KERNEL_KIND(Enum, ...)                                                               \
  case plan::KernelKind::Enum:                                                                   \
    return build##Enum(kb, spec, binary);
#include "runtime/plan/KernelKinds.def"
  }
  return unsupported(kb, "unknown kernel kind");
}

/// Appends `suffix` to the binary's name and to every entry of its module.
void renameKernel(gpu::GPUModuleOp gpuModule, KernelBinary &binary, const std::string &suffix) {
  for (plan::GpuLaunch &launch : binary.launches) {
    auto func = gpuModule.lookupSymbol<gpu::GPUFuncOp>(launch.entry);
    launch.entry += suffix;
    SymbolTable::setSymbolName(func, launch.entry);
  }
  binary.name += suffix;
  gpuModule.setSymName(binary.name);
}

/// Appends the gpu.module of `spec` to `module`.
LogicalResult appendKernelModule(ModuleOp module, Location loc, const KernelSpec &spec,
                                 const PtxOptions &options, KernelBinary &binary) {
  if (spec.wgmmaTile() && options.target != PtxTarget::SM90a)
    return emitError(loc) << "the wgmma kernel of '" << spec.key() << "' needs --target sm_90a, not "
                          << ptxTargetName(options.target);
  ImplicitLocOpBuilder b(loc, module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  auto gpuModule = gpu::GPUModuleOp::create(b, "m2c_kernel");
  KernelBuilder kb(b, gpuModule, usesGridDependencyControl(options.target));
  binary.key = spec.key();
  binary.target = options.target;
  KernelSpec targeted = spec;
  targeted.target = *tiling::lookupTarget(ptxTargetName(options.target));
  if (failed(buildFamily(kb, targeted, binary))) {
    gpuModule.erase();
    return failure();
  }
  gpuModule.setSymName(binary.name);
  // A kernel over a fixed number of rows (the prefill's last row) says so.
  const TensorInfo &first = spec.inputs.front();
  if (first.kind == plan::Operand::Kind::Buffer && !first.tokenRows)
    renameKernel(gpuModule, binary, "_m" + std::to_string(first.shape[0]));
  return success();
}

OwningOpRef<ModuleOp> newContainerModule(MLIRContext &context) {
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  (*module)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), UnitAttr::get(&context));
  return module;
}

} // namespace

FailureOr<std::string> kernelSignature(MLIRContext &context, const plan::Plan &plan,
                                       const plan::Entry &entry, const plan::Kernel &kernel) {
  FailureOr<KernelSpec> spec = resolveSpec(context, plan, entry, kernel);
  if (failed(spec))
    return failure();
  return spec->key();
}

FailureOr<OwningOpRef<ModuleOp>> buildKernelModule(MLIRContext &context, const plan::Plan &plan,
                                                   const plan::Entry &entry,
                                                   const plan::Kernel &kernel,
                                                   const PtxOptions &options,
                                                   KernelBinary &binary) {
  loadDialects(context);
  FailureOr<KernelSpec> spec = resolveSpec(context, plan, entry, kernel);
  if (failed(spec))
    return failure();
  OwningOpRef<ModuleOp> module = newContainerModule(context);
  if (failed(appendKernelModule(*module, kernelLoc(context, kernel), *spec, options, binary)))
    return failure();
  return module;
}

FailureOr<KernelBinary> emitKernelPtx(MLIRContext &context, const plan::Plan &plan,
                                      const plan::Entry &entry, const plan::Kernel &kernel,
                                      const PtxOptions &options) {
  KernelBinary binary;
  FailureOr<OwningOpRef<ModuleOp>> module =
      buildKernelModule(context, plan, entry, kernel, options, binary);
  if (failed(module))
    return failure();
  auto ptx = lowerToPtx(**module, options);
  if (failed(ptx))
    return failure();
  binary.ptx = std::move(ptx->front().second);
  return binary;
}

FailureOr<PlanPtx> emitPlanPtx(MLIRContext &context, const plan::Plan &plan,
                               const PtxOptions &options) {
  auto start = std::chrono::steady_clock::now();
  loadDialects(context);
  PlanPtx result;
  result.target = options.target;
  OwningOpRef<ModuleOp> module = newContainerModule(context);
  llvm::StringMap<int64_t> byKey;
  llvm::StringMap<int64_t> nameUses;
  bool ok = true;
  for (const plan::Entry &entry : plan.entries) {
    result.kernelOf.emplace_back();
    for (const plan::Kernel &kernel : entry.kernels) {
      FailureOr<KernelSpec> spec = resolveSpec(context, plan, entry, kernel);
      if (failed(spec)) {
        ok = false;
        result.kernelOf.back().push_back(-1);
        continue;
      }
      std::string key = spec->key();
      auto it = byKey.find(key);
      if (it != byKey.end()) {
        result.kernelOf.back().push_back(it->second);
        continue;
      }
      KernelBinary binary;
      if (failed(appendKernelModule(*module, kernelLoc(context, kernel), *spec, options,
                                    binary))) {
        // Reported once per signature.
        ok = false;
        byKey[key] = -1;
        result.kernelOf.back().push_back(-1);
        continue;
      }
      // Names stay readable; a second signature with the same readable
      // name (e.g. another eps) gets a numeric suffix, entries included.
      int64_t uses = ++nameUses[binary.name];
      if (uses > 1) {
        renameKernel(cast<gpu::GPUModuleOp>(module->getBody()->back()), binary,
                     "_" + std::to_string(uses));
      }
      int64_t id = static_cast<int64_t>(result.kernels.size());
      byKey[key] = id;
      result.kernels.push_back(std::move(binary));
      result.kernelOf.back().push_back(id);
    }
  }
  if (!ok)
    return failure();
  // The random-weight fills, one per type pair the plan's weights use; a
  // quantized weight is filled as f32 into scratch and packed from there.
  auto newModule = [&](llvm::function_ref<LogicalResult(KernelBuilder &)> build) {
    ImplicitLocOpBuilder b(UnknownLoc::get(&context), &context);
    b.setInsertionPointToEnd(module->getBody());
    auto gpuModule = gpu::GPUModuleOp::create(b, "m2c_kernel");
    KernelBuilder kb(b, gpuModule, usesGridDependencyControl(options.target));
    return build(kb);
  };
  for (const plan::Weight &w : plan.weights) {
    const bool quantized = w.quantization != plan::Quantization::None;
    const plan::ElementType storage = quantized ? plan::ElementType::F32 : w.storage.type;
    bool supported = (w.type == plan::ElementType::F32 || w.type == plan::ElementType::BF16) &&
                     (storage == plan::ElementType::F32 || storage == plan::ElementType::BF16);
    bool seen = llvm::any_of(result.randomFills, [&](const RandomFillBinary &f) {
      return f.logical == w.type && f.storage == storage;
    });
    if (supported && !seen) {
      RandomFillBinary fill;
      fill.logical = w.type;
      fill.storage = storage;
      if (failed(newModule([&](KernelBuilder &kb) {
            if (failed(buildRandomFill(kb, fill.logical, fill.storage, fill.block, fill.binary)))
              return failure();
            kb.module().setSymName(fill.binary.name);
            return success();
          })))
        return failure();
      result.randomFills.push_back(std::move(fill));
    }
    bool packSeen = llvm::any_of(result.packKernels, [&](const PackKernelBinary &p) {
      return p.quantization == w.quantization;
    });
    if (quantized && !packSeen) {
      PackKernelBinary pack;
      pack.quantization = w.quantization;
      pack.block = packKernelBlock(w.quantization);
      if (failed(newModule([&](KernelBuilder &kb) {
            if (failed(buildPackKernel(kb, pack.quantization, pack.binary)))
              return failure();
            kb.module().setSymName(pack.binary.name);
            return success();
          })))
        return failure();
      result.packKernels.push_back(std::move(pack));
    }
  }
  auto ptx = lowerToPtx(*module, options);
  if (failed(ptx))
    return failure();
  llvm::StringMap<std::string *> byName;
  for (KernelBinary &binary : result.kernels)
    byName[binary.name] = &binary.ptx;
  for (RandomFillBinary &fill : result.randomFills)
    byName[fill.binary.name] = &fill.binary.ptx;
  for (PackKernelBinary &pack : result.packKernels)
    byName[pack.binary.name] = &pack.binary.ptx;
  for (auto &[name, text] : *ptx)
    *byName[name] = std::move(text);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

} // namespace m2c::ptx
