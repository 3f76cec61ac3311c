//===- PlanBuilder.cpp - Model IR -> executable plan ----------------------===//

#include "codegen/PlanBuilder.h"

#include "frontend/LinearForm.h"

#include "dialects/attn/AttnOps.h"
#include "dialects/moe/MoeOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace m2c {
namespace {

template <class A> plan::AttrMap attrMap(const A &attrs) {
  plan::AttrMap map;
  plan::writeAttrs(attrs, map);
  return map;
}

/// The attributes both router ops share.
template <class RouteOp> plan::MoeRouteAttrs routeAttrs(RouteOp route) {
  plan::MoeRouteAttrs attrs;
  attrs.topK = route.getTopK();
  attrs.numExperts = route.getNumExperts();
  attrs.softmax = route.getScoring() == moe::ScoringFunc::softmax;
  attrs.renormalize = route.getRenormalize();
  return attrs;
}

FailureOr<plan::ElementType> elementTypeOf(Operation *op, Type type) {
  if (type.isF32())
    return plan::ElementType::F32;
  if (type.isBF16())
    return plan::ElementType::BF16;
  if (type.isF16())
    return plan::ElementType::F16;
  if (type.isInteger(32))
    return plan::ElementType::I32;
  return op->emitError("cannot lower element type ") << type << " to the plan";
}

/// Lowers one entry point.
class EntryLowering {
public:
  EntryLowering(const llvm::StringMap<int64_t> &weightIds, func::FuncOp func)
      : weightIds_(weightIds), func_(func) {}

  FailureOr<plan::Entry> lower();

private:
  LogicalResult lowerOp(Operation *op);
  FailureOr<int64_t> newBuffer(Operation *op, Value result);
  FailureOr<plan::Operand> operand(Operation *user, Value value);
  std::string kernelName(Operation *op, plan::KernelKind kind, Value weight = {});
  LogicalResult addKernel(Operation *op, plan::KernelKind kind, ArrayRef<Value> inputs,
                          ArrayRef<Value> results, plan::AttrMap attrs = {},
                          Value namingWeight = {});
  LogicalResult lowerMatmul(linalg::MatmulOp matmul);
  /// The column slices that exactly tile a matmul result, by offset.
  FailureOr<SmallVector<Value>> columnSlices(Value result);

  const llvm::StringMap<int64_t> &weightIds_;
  func::FuncOp func_;
  plan::Entry entry_;
  llvm::DenseMap<Value, plan::Operand> values_;
  /// Values that need no storage: shapes, constants, zero-filled inits.
  llvm::DenseSet<Value> metadata_;
};

FailureOr<int64_t> EntryLowering::newBuffer(Operation *op, Value result) {
  auto type = dyn_cast<RankedTensorType>(result.getType());
  if (!type || type.getRank() != 2 || type.isDynamicDim(1))
    return op->emitError("plan buffers must be rank-2 tensors with a static width, got ")
           << result.getType();
  FailureOr<plan::ElementType> element = elementTypeOf(op, type.getElementType());
  if (failed(element))
    return failure();
  plan::Buffer buffer;
  buffer.name = "%" + std::to_string(entry_.buffers.size());
  buffer.type = *element;
  buffer.cols = type.getDimSize(1);
  buffer.staticRows = type.isDynamicDim(0) ? 0 : type.getDimSize(0);
  entry_.buffers.push_back(buffer);
  int64_t id = static_cast<int64_t>(entry_.buffers.size()) - 1;
  values_[result] = plan::Operand::buffer(id);
  return id;
}

FailureOr<plan::Operand> EntryLowering::operand(Operation *user, Value value) {
  auto it = values_.find(value);
  if (it == values_.end())
    return user->emitError("operand has no plan storage (produced by an op the plan does not "
                           "lower)");
  return it->second;
}

std::string EntryLowering::kernelName(Operation *op, plan::KernelKind kind, Value weight) {
  std::string prefix = "model";
  if (auto name = dyn_cast<NameLoc>(op->getLoc()))
    prefix = name.getName().str();
  std::string name = prefix + "." + plan::kernelKindName(kind);
  if (weight) {
    if (auto load = weight.getDefiningOp<ml_program::GlobalLoadConstOp>()) {
      // "model.layers.3.self_attn.q_proj.weight" -> "q_proj"
      StringRef symbol = load.getGlobal().getLeafReference().getValue();
      symbol.consume_back(".weight");
      auto [head, leaf] = symbol.rsplit('.');
      name += "." + (leaf.empty() ? head : leaf).str();
    }
  }
  return name;
}

LogicalResult EntryLowering::addKernel(Operation *op, plan::KernelKind kind,
                                       ArrayRef<Value> inputs, ArrayRef<Value> results,
                                       plan::AttrMap attrs,
                                       Value namingWeight) {
  plan::Kernel kernel;
  kernel.kind = kind;
  kernel.name = kernelName(op, kind, namingWeight);
  kernel.attrs = std::move(attrs);
  // Tile decisions of m2c-tile-kernels travel as "tile.<name>" attributes.
  if (auto tile = op->getAttrOfType<DictionaryAttr>("m2c.tile"))
    for (NamedAttribute param : tile)
      if (auto value = dyn_cast<IntegerAttr>(param.getValue()))
        kernel.attrs["tile." + param.getName().str()] = static_cast<double>(value.getInt());
  if (auto key = op->getAttrOfType<StringAttr>("m2c.tile_key"))
    kernel.tileKey = key.str();
  for (Value input : inputs) {
    FailureOr<plan::Operand> lowered = operand(op, input);
    if (failed(lowered))
      return failure();
    kernel.inputs.push_back(*lowered);
  }
  for (Value result : results) {
    FailureOr<int64_t> id = newBuffer(op, result);
    if (failed(id))
      return failure();
    kernel.outputs.push_back(*id);
  }
  entry_.kernels.push_back(std::move(kernel));
  return success();
}

LogicalResult EntryLowering::lowerMatmul(linalg::MatmulOp matmul) {
  // Only y = x W^T over a zero-filled init: the checkpoint's [out, in]
  // weights read in place.
  if (!hasLinearMaps(matmul))
    return matmul.emitError("the plan lowers only matmuls reading the weight transposed "
                            "(x [M, K] times W [N, K]^T)");
  if (!zeroFillInit(matmul))
    return matmul.emitError("the plan lowers only matmuls into a zero-filled init");
  Value x = matmul.getDpsInputs()[0], w = matmul.getDpsInputs()[1];
  // A fused projection (m2c-fuse-projections): when only column slices that
  // tile the result read it, each slice gets its own buffer and the kernel
  // writes it directly.
  SmallVector<Value> outputs = {matmul.getResult(0)};
  if (FailureOr<SmallVector<Value>> slices = columnSlices(matmul.getResult(0));
      succeeded(slices))
    outputs = *slices;
  return addKernel(matmul, plan::KernelKind::Linear, {x, w}, outputs, {}, w);
}

FailureOr<SmallVector<Value>> EntryLowering::columnSlices(Value result) {
  auto type = cast<RankedTensorType>(result.getType());
  // Every slice must take all rows: statically, or the token count the
  // matmul's own init was sized with.
  auto matmul = result.getDefiningOp<linalg::MatmulOp>();
  auto init = matmul ? matmul.getDpsInits()[0].getDefiningOp<linalg::FillOp>() : nullptr;
  auto empty = init ? init.getOutputs()[0].getDefiningOp<tensor::EmptyOp>() : nullptr;
  SmallVector<std::pair<int64_t, Value>> slices;
  for (Operation *user : result.getUsers()) {
    auto slice = dyn_cast<tensor::ExtractSliceOp>(user);
    if (!slice || !slice.hasUnitStride() || slice.getStaticOffsets()[0] != 0 ||
        ShapedType::isDynamic(slice.getStaticOffsets()[1]) ||
        slice.getResultType().getRank() != 2 ||
        slice.getResultType().getShape()[0] != type.getShape()[0] ||
        slice.getResultType().isDynamicDim(1))
      return failure();
    if (type.isDynamicDim(0)) {
      Value rows = dyn_cast<Value>(slice.getMixedSizes()[0]);
      if (!empty || empty.getDynamicSizes().size() != 1 || rows != empty.getDynamicSizes()[0])
        return failure();
    }
    slices.push_back({slice.getStaticOffsets()[1], slice.getResult()});
  }
  llvm::sort(slices, [](const auto &a, const auto &b) { return a.first < b.first; });
  int64_t column = 0;
  SmallVector<Value> values;
  for (auto &[offset, value] : slices) {
    if (offset != column)
      return failure();
    column += cast<RankedTensorType>(value.getType()).getDimSize(1);
    values.push_back(value);
  }
  if (values.empty() || column != type.getDimSize(1))
    return failure();
  return values;
}

LogicalResult EntryLowering::lowerOp(Operation *op) {
  using plan::KernelKind;
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ml_program::GlobalLoadConstOp load) -> LogicalResult {
        auto it = weightIds_.find(load.getGlobal().getLeafReference().getValue());
        if (it == weightIds_.end())
          return load.emitError("loads an unknown weight");
        values_[load.getResult()] = plan::Operand::weight(it->second);
        return success();
      })
      .Case<arith::ConstantOp, tensor::DimOp, tensor::EmptyOp, arith::SubIOp>([&](Operation *) -> LogicalResult {
        for (Value result : op->getResults())
          metadata_.insert(result);
        return success();
      })
      .Case([&](linalg::FillOp fill) -> LogicalResult {
        // Consumed by the matmul lowering, which checks the value is zero.
        metadata_.insert(fill.getResult(0));
        return success();
      })
      .Case([&](tensor::ExpandShapeOp expand) -> LogicalResult {
        // [T] ids viewed as [T, 1] for the gather: same storage.
        FailureOr<plan::Operand> source = operand(expand, expand.getSrc());
        if (failed(source))
          return failure();
        values_[expand.getResult()] = *source;
        return success();
      })
      .Case([&](tensor::GatherOp gather) -> LogicalResult {
        FailureOr<plan::Operand> ids = operand(gather, gather.getIndices());
        if (failed(ids))
          return failure();
        if (ids->kind != plan::Operand::Kind::Input ||
            ids->index != static_cast<int64_t>(plan::EntryInput::TokenIds))
          return gather.emitError("the plan lowers only the embedding gather of token_ids");
        // The embedding kernel writes f32 rows: widen the result type.
        auto type = cast<RankedTensorType>(gather.getResult().getType());
        plan::Kernel kernel;
        kernel.kind = KernelKind::Embedding;
        kernel.name = kernelName(gather, KernelKind::Embedding);
        kernel.inputs = {*ids};
        FailureOr<plan::Operand> table = operand(gather, gather.getSource());
        if (failed(table))
          return failure();
        kernel.inputs.push_back(*table);
        plan::Buffer buffer;
        buffer.name = "%" + std::to_string(entry_.buffers.size());
        buffer.cols = type.getDimSize(1);
        entry_.buffers.push_back(buffer);
        int64_t id = static_cast<int64_t>(entry_.buffers.size()) - 1;
        kernel.outputs = {id};
        values_[gather.getResult()] = plan::Operand::buffer(id);
        entry_.kernels.push_back(std::move(kernel));
        return success();
      })
      .Case([&](arith::ExtFOp ext) -> LogicalResult {
        // Only the embedding's widening, which its kernel already did.
        if (!ext.getIn().getDefiningOp<tensor::GatherOp>())
          return ext.emitError("the plan lowers arith.extf only after the embedding gather");
        values_[ext.getResult()] = values_.lookup(ext.getIn());
        return success();
      })
      .Case([&](norm::RmsOp rms) -> LogicalResult {
        return addKernel(rms, KernelKind::RmsNorm, {rms.getInput(), rms.getWeight()},
                         {rms.getResult()}, attrMap(plan::NormAttrs{rms.getEps().convertToDouble()}),
                         rms.getWeight());
      })
      .Case([&](norm::AddRmsOp rms) -> LogicalResult {
        return addKernel(rms, KernelKind::AddRmsNorm,
                         {rms.getInput(), rms.getResidual(), rms.getWeight()},
                         {rms.getSum(), rms.getResult()},
                         attrMap(plan::NormAttrs{rms.getEps().convertToDouble()}), rms.getWeight());
      })
      .Case([&](norm::RmsLogitsOp head) -> LogicalResult {
        SmallVector<Value> inputs = {head.getInput(), head.getNormWeight(), head.getLmHead()};
        if (Value residual = head.getResidual())
          inputs.push_back(residual);
        SmallVector<Value> outputs = {head.getLogits(), head.getGreedyIds()};
        llvm::append_range(outputs, head.getCandidates());
        return addKernel(head, KernelKind::LmHead, inputs, outputs,
                         attrMap(plan::NormAttrs{head.getEps().convertToDouble()}));
      })
      .Case([&](linalg::MatmulOp matmul) -> LogicalResult { return lowerMatmul(matmul); })
      .Case([&](attn::GqaOp gqa) -> LogicalResult {
        plan::AttentionAttrs attrs;
        attrs.layer = gqa.getLayer();
        attrs.numHeads = gqa.getNumHeads();
        attrs.numKvHeads = gqa.getNumKvHeads();
        attrs.headDim = gqa.getHeadDim();
        attrs.rotaryDim = gqa.getRotaryDim();
        attrs.ropeTheta = gqa.getRopeTheta().convertToDouble();
        attrs.causal = gqa.getCausal();
        SmallVector<Value> inputs = {gqa.getQueries(),   gqa.getKeys(),
                                     gqa.getValues(),    gqa.getPositions(),
                                     gqa.getTokenSeqs(), gqa.getBlockTables()};
        if (gqa.getQNorm()) {
          inputs.push_back(gqa.getQNorm());
          inputs.push_back(gqa.getKNorm());
          attrs.qkNormEps = gqa.getQkNormEps()->convertToDouble();
        }
        return addKernel(gqa, KernelKind::Attention, inputs, {gqa.getResult()}, attrMap(attrs));
      })
      .Case([&](arith::AddFOp add) -> LogicalResult {
        return addKernel(add, KernelKind::Add, {add.getLhs(), add.getRhs()}, {add.getResult()});
      })
      .Case([&](moe::RouteOp route) -> LogicalResult {
        SmallVector<Value> inputs = {route.getHidden(), route.getGateWeight()};
        if (Value bias = route.getCorrectionBias())
          inputs.push_back(bias);
        return addKernel(route, KernelKind::MoeRoute, inputs,
                         {route.getExpertIds(), route.getExpertWeights()},
                         attrMap(routeAttrs(route)));
      })
      .Case([&](moe::NormRouteOp route) -> LogicalResult {
        SmallVector<Value> inputs = {route.getInput(), route.getResidual(),
                                     route.getNormWeight(), route.getGateWeight()};
        if (Value bias = route.getCorrectionBias())
          inputs.push_back(bias);
        plan::MoeRouteAttrs attrs = routeAttrs(route);
        attrs.addRmsNorm = true;
        attrs.eps = route.getEps().convertToDouble();
        return addKernel(route, KernelKind::MoeRoute, inputs,
                         {route.getSum(), route.getHidden(), route.getExpertIds(),
                          route.getExpertWeights()},
                         attrMap(attrs), route.getNormWeight());
      })
      .Case([&](moe::ExpertsOp experts) -> LogicalResult {
        SmallVector<Value> inputs = {experts.getHidden(),      experts.getExpertIds(),
                                     experts.getExpertWeights(), experts.getGateProj(),
                                     experts.getUpProj(),      experts.getDownProj()};
        if (Value residual = experts.getResidual())
          inputs.push_back(residual);
        return addKernel(experts, KernelKind::MoeExperts, inputs, {experts.getResult()});
      })
      .Case([&](tensor::ExtractSliceOp slice) -> LogicalResult {
        // A fused projection's column slice: its matmul wrote it already.
        if (values_.count(slice.getResult()))
          return success();
        auto type = slice.getResultType();
        if (type.getRank() != 2 || type.getDimSize(0) != 1 || !slice.hasUnitStride())
          return slice.emitError("the plan lowers only the extraction of the last token's row");
        return addKernel(slice, KernelKind::TakeLastRow, {slice.getSource()},
                         {slice.getResult()});
      })
      .Case([&](func::ReturnOp ret) -> LogicalResult {
        // The logits, and with m2c-fuse-decode-tail each row's greedy id
        // and perhaps its sampling candidates.
        if (ret.getNumOperands() != 1 && ret.getNumOperands() != 2 && ret.getNumOperands() != 4)
          return ret.emitError("entry points must return the logits, optionally the greedy "
                               "ids, and then optionally the candidate ids and logits");
        SmallVector<int64_t, 4> buffers;
        for (Value result : ret.getOperands()) {
          FailureOr<plan::Operand> lowered = operand(ret, result);
          if (failed(lowered))
            return failure();
          if (lowered->kind != plan::Operand::Kind::Buffer)
            return ret.emitError("entry points must return computed buffers");
          buffers.push_back(lowered->index);
        }
        entry_.output = buffers[0];
        if (buffers.size() >= 2)
          entry_.greedyIds = buffers[1];
        if (buffers.size() == 4) {
          entry_.candidateIds = buffers[2];
          entry_.candidateLogits = buffers[3];
        }
        return success();
      })
      .Default([&](Operation *) -> LogicalResult {
        return op->emitError("cannot lower '") << op->getName() << "' to the plan";
      });
}

FailureOr<plan::Entry> EntryLowering::lower() {
  auto entryName = func_->getAttrOfType<StringAttr>("m2c.entry");
  entry_.name = entryName.getValue().str();
  if (func_.getNumArguments() != plan::kNumEntryInputs + 1)
    return func_.emitError("entry points take token_ids, positions, token_seqs, block_tables "
                           "and the KV cache");
  for (int i = 0; i < plan::kNumEntryInputs; ++i)
    values_[func_.getArgument(i)] = plan::Operand::input(static_cast<plan::EntryInput>(i));
  for (Operation &op : func_.getBody().front())
    if (failed(lowerOp(&op)))
      return failure();
  auto resultType = cast<RankedTensorType>(func_.getFunctionType().getResult(0));
  entry_.lastTokenLogits = !resultType.isDynamicDim(0) && resultType.getDimSize(0) == 1;
  return entry_;
}

} // namespace

FailureOr<plan::Plan> buildPlan(ModuleOp module, const PlanOptions &options) {
  plan::Plan plan;
  plan.target = options.target;
  plan.maxTokens = options.maxTokens;
  if (auto vocab = module->getAttrOfType<IntegerAttr>("m2c.vocab_size"))
    plan.vocabSize = vocab.getInt();

  llvm::StringMap<int64_t> weightIds;
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    auto type = dyn_cast<RankedTensorType>(global.getType());
    if (!type || !type.hasStaticShape())
      return global.emitError("weights must be statically shaped tensors");
    FailureOr<plan::ElementType> element = elementTypeOf(global, type.getElementType());
    if (failed(element))
      return failure();
    plan::Weight weight;
    weight.symbol = global.getSymName().str();
    auto binding = global->getAttrOfType<StringAttr>("m2c.checkpoint");
    weight.binding = binding ? binding.getValue().str() : weight.symbol;
    // A fused projection's weight (m2c-fuse-projections) names its parts.
    auto parts = global->getAttrOfType<ArrayAttr>("m2c.checkpoint_parts");
    auto partRows = global->getAttrOfType<DenseI64ArrayAttr>("m2c.part_rows");
    if (parts || partRows) {
      if (!parts || !partRows || parts.size() != static_cast<size_t>(partRows.size()))
        return global.emitError("m2c.checkpoint_parts and m2c.part_rows must list the same parts");
      for (auto [name, rows] : llvm::zip(parts, partRows.asArrayRef())) {
        auto text = dyn_cast<StringAttr>(name);
        if (!text)
          return global.emitError("m2c.checkpoint_parts must hold strings");
        weight.parts.push_back({text.str(), rows});
      }
      weight.binding = weight.symbol;
    }
    weight.shape.assign(type.getShape().begin(), type.getShape().end());
    weight.type = *element;
    // Dequantized FP8 values are not bf16-representable: keep them exact.
    bool dequantized = global->hasAttr("m2c.checkpoint_format");
    weight.storage.type = dequantized ? plan::ElementType::F32 : *element;
    if (auto quantization = global->getAttrOfType<StringAttr>("m2c.quantization")) {
      StatusOr<plan::Quantization> parsed = plan::parseQuantization(quantization.str());
      if (!parsed)
        return global.emitError(parsed.status().message());
      if (type.getRank() < 2)
        return global.emitError("only matrices can be quantized");
      weight.quantization = *parsed;
    }
    weightIds[weight.symbol] = static_cast<int64_t>(plan.weights.size());
    plan.weights.push_back(std::move(weight));
  }

  for (auto func : module.getOps<func::FuncOp>()) {
    if (!func->hasAttr("m2c.entry"))
      continue;
    if (auto cache = dyn_cast<attn::KvCacheType>(func.getArgumentTypes().back())) {
      plan.kvCache.layers = cache.getLayers();
      plan.kvCache.kvHeads = cache.getKvHeads();
      plan.kvCache.headDim = cache.getHeadDim();
      plan.kvCache.blockSize = cache.getBlockSize();
      FailureOr<plan::ElementType> element = elementTypeOf(func, cache.getDtype());
      if (failed(element))
        return failure();
      plan.kvCache.type = *element;
    }
    EntryLowering lowering(weightIds, func);
    FailureOr<plan::Entry> entry = lowering.lower();
    if (failed(entry))
      return failure();
    plan::planMemory(*entry, plan.maxTokens);
    plan.entries.push_back(std::move(*entry));
  }
  for (const plan::Entry &entry : plan.entries)
    for (const plan::Kernel &kernel : entry.kernels)
      if (kernel.kind == plan::KernelKind::Embedding)
        plan.hiddenSize = entry.buffers[kernel.outputs[0]].cols;
  if (Status status = plan::verifyPlan(plan); !status)
    return module.emitError("the lowered plan is invalid (a compiler bug): ")
           << status.message();
  return plan;
}

} // namespace m2c
