//===- FuseProjections.cpp - Projections of one input as one GEMM ---------===//
//
// q, k and v read the same normalised hidden state. Three GEMVs stream
// three weights and launch three kernels per decode layer; one GEMV over the
// concatenated rows streams the same bytes in one launch with full waves.
// The fused weight keeps its parts, so checkpoints and random streams bind
// per part exactly as before (plan::WeightPart).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "frontend/LinearForm.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

namespace m2c {
#define GEN_PASS_DEF_FUSEPROJECTIONS
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

/// FP8 block scales cover 128 x 128; a part boundary inside a block would
/// give the fused weight other scales than its parts.
constexpr int64_t kFp8BlockRows = 128;

struct Projection {
  linalg::MatmulOp matmul;
  ml_program::GlobalOp global;
  tensor::EmptyOp init;
};

/// y = x W^T into a zero-filled tensor.empty, W a rank-2 weight global: the
/// form the frontend builds and the plan lowers.
std::optional<Projection> matchProjection(linalg::MatmulOp matmul, SymbolTable &symbols) {
  linalg::FillOp fill = m2c::hasLinearMaps(matmul) ? m2c::zeroFillInit(matmul) : nullptr;
  if (!fill)
    return std::nullopt;
  auto init = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>();
  auto load = matmul.getDpsInputs()[1].getDefiningOp<ml_program::GlobalLoadConstOp>();
  if (!init || !load)
    return std::nullopt;
  auto global = symbols.lookup<ml_program::GlobalOp>(load.getGlobal().getLeafReference());
  auto type = global ? dyn_cast<RankedTensorType>(global.getType()) : RankedTensorType();
  if (!type || type.getRank() != 2 || !type.hasStaticShape())
    return std::nullopt;
  return Projection{matmul, global, init};
}

int64_t rowsOf(ml_program::GlobalOp global) {
  return cast<RankedTensorType>(global.getType()).getDimSize(0);
}

/// Why the group cannot share one weight, or "" when it can.
std::string incompatibility(MutableArrayRef<Projection> group) {
  auto first = cast<RankedTensorType>(group.front().global.getType());
  Attribute quantization = group.front().global->getAttr("m2c.quantization");
  Attribute format = group.front().global->getAttr("m2c.checkpoint_format");
  Type resultType = group.front().matmul.getResult(0).getType();
  for (Projection &p : group) {
    auto type = cast<RankedTensorType>(p.global.getType());
    if (type.getElementType() != first.getElementType() ||
        type.getDimSize(1) != first.getDimSize(1))
      return "weights differ in element type or input width";
    if (p.global->getAttr("m2c.quantization") != quantization ||
        p.global->getAttr("m2c.checkpoint_format") != format)
      return "weights differ in quantization or checkpoint format";
    auto result = cast<RankedTensorType>(p.matmul.getResult(0).getType());
    if (result.getElementType() != cast<RankedTensorType>(resultType).getElementType() ||
        result.getShape()[0] != cast<RankedTensorType>(resultType).getShape()[0])
      return "results differ in element type or rows";
  }
  auto fp8 = dyn_cast_or_null<StringAttr>(quantization);
  if (fp8 && fp8.getValue() == "fp8_block128")
    for (Projection &p : group.drop_back())
      if (rowsOf(p.global) % kFp8BlockRows)
        return "an FP8 block would straddle two parts";
  return "";
}

/// "model.layers.0.self_attn.{q,k,v}_proj.weight" ->
/// "model.layers.0.self_attn.qkv_proj.weight".
std::string fusedSymbol(MutableArrayRef<Projection> group) {
  std::string prefix;
  std::string stems;
  bool allProj = true;
  SmallVector<std::string> leaves;
  for (Projection &p : group) {
    StringRef symbol = p.global.getSymName();
    symbol.consume_back(".weight");
    auto [head, leaf] = symbol.rsplit('.');
    if (leaf.empty())
      std::swap(head, leaf);
    prefix = head.empty() ? "" : head.str() + ".";
    leaves.push_back(leaf.str());
    allProj &= leaf.ends_with("_proj");
    stems += leaf.drop_back(allProj ? 5 : 0).str();
  }
  if (allProj)
    return prefix + stems + "_proj.weight";
  return prefix + llvm::join(leaves, "_") + ".weight";
}

struct FuseProjectionsPass : public m2c::impl::FuseProjectionsBase<FuseProjectionsPass> {
  void runOnOperation() override;

  ml_program::GlobalOp fusedGlobal(MutableArrayRef<Projection> group, SymbolTable &symbols);
  void rewrite(MutableArrayRef<Projection> group, ml_program::GlobalOp fused);

  /// Entry points share weights: one fused global per group of parts.
  llvm::StringMap<ml_program::GlobalOp> fusedByParts_;
  llvm::SetVector<ml_program::GlobalOp> partGlobals_;
};

ml_program::GlobalOp FuseProjectionsPass::fusedGlobal(MutableArrayRef<Projection> group,
                                                      SymbolTable &symbols) {
  std::string key;
  for (Projection &p : group)
    key += p.global.getSymName().str() + ";";
  if (ml_program::GlobalOp existing = fusedByParts_.lookup(key))
    return existing;
  ml_program::GlobalOp first = group.front().global;
  auto firstType = cast<RankedTensorType>(first.getType());
  int64_t rows = 0;
  SmallVector<Attribute> bindings;
  SmallVector<int64_t> partRows;
  for (Projection &p : group) {
    partGlobals_.insert(p.global);
    rows += rowsOf(p.global);
    partRows.push_back(rowsOf(p.global));
    auto binding = p.global->getAttrOfType<StringAttr>("m2c.checkpoint");
    bindings.push_back(binding ? binding : p.global.getSymNameAttr());
  }
  auto type = RankedTensorType::get({rows, firstType.getDimSize(1)}, firstType.getElementType());
  OpBuilder builder(first);
  auto fused = ml_program::GlobalOp::create(
      builder, first.getLoc(), fusedSymbol(group), type, /*is_mutable=*/false,
      ml_program::ExternAttr::get(&getContext(), type), builder.getStringAttr("private"));
  symbols.insert(fused);
  fused->setAttr("m2c.checkpoint_parts", builder.getArrayAttr(bindings));
  fused->setAttr("m2c.part_rows", builder.getDenseI64ArrayAttr(partRows));
  for (StringRef name : {"m2c.quantization", "m2c.checkpoint_format"})
    if (Attribute attr = first->getAttr(name))
      fused->setAttr(name, attr);
  fusedByParts_[key] = fused;
  return fused;
}

void FuseProjectionsPass::rewrite(MutableArrayRef<Projection> group, ml_program::GlobalOp fused) {
  linalg::MatmulOp first = group.front().matmul;
  OpBuilder b(first);
  Location loc = first.getLoc();
  auto fusedType = cast<RankedTensorType>(fused.getType());
  auto firstResult = cast<RankedTensorType>(first.getResult(0).getType());
  auto resultType = RankedTensorType::get({firstResult.getDimSize(0), fusedType.getDimSize(0)},
                                          firstResult.getElementType());
  SmallVector<Value> dynamicRows(group.front().init.getDynamicSizes());
  Value weight = ml_program::GlobalLoadConstOp::create(
      b, loc, fusedType, FlatSymbolRefAttr::get(fused.getSymNameAttr()));
  Value init = tensor::EmptyOp::create(b, loc, resultType, dynamicRows);
  // The first part's zero (matchProjection checked it), which dominates.
  Value zero = first.getDpsInits()[0].getDefiningOp<linalg::FillOp>().getInputs()[0];
  Value filled = linalg::FillOp::create(b, loc, zero, init).getResult(0);
  auto matmul = linalg::MatmulOp::create(b, loc, TypeRange{resultType},
                                         ValueRange{first.getDpsInputs()[0], weight},
                                         ValueRange{filled});
  matmul.setIndexingMapsAttr(first.getIndexingMapsAttr());
  int64_t column = 0;
  for (Projection &p : group) {
    auto partType = cast<RankedTensorType>(p.matmul.getResult(0).getType());
    SmallVector<OpFoldResult> offsets = {b.getIndexAttr(0), b.getIndexAttr(column)};
    SmallVector<OpFoldResult> sizes = {
        partType.isDynamicDim(0) ? OpFoldResult(dynamicRows.front())
                                 : OpFoldResult(b.getIndexAttr(partType.getDimSize(0))),
        b.getIndexAttr(partType.getDimSize(1))};
    SmallVector<OpFoldResult> strides = {b.getIndexAttr(1), b.getIndexAttr(1)};
    Value slice = tensor::ExtractSliceOp::create(b, loc, partType, matmul.getResult(0), offsets,
                                                 sizes, strides);
    p.matmul.getResult(0).replaceAllUsesWith(slice);
    column += partType.getDimSize(1);
  }
  // The parts' matmuls and their now-dead operands.
  for (Projection &p : group) {
    SmallVector<Operation *> dead = {p.matmul, p.matmul.getDpsInits()[0].getDefiningOp(),
                                     p.matmul.getDpsInputs()[1].getDefiningOp()};
    for (Operation *op : dead)
      if (op && op->use_empty())
        op->erase();
    if (p.init->use_empty())
      p.init->erase();
  }
  numFused += group.size();
}

void FuseProjectionsPass::runOnOperation() {
  // A pass instance may run on several modules (--split-input-file).
  fusedByParts_.clear();
  partGlobals_.clear();
  ModuleOp module = getOperation();
  SymbolTable symbols(module);
  for (auto func : module.getOps<func::FuncOp>()) {
    // Projections grouped by the value they read, in program order.
    llvm::MapVector<Value, SmallVector<Projection>> byInput;
    func.walk([&](linalg::MatmulOp matmul) {
      if (std::optional<Projection> p = matchProjection(matmul, symbols))
        byInput[matmul.getDpsInputs()[0]].push_back(*p);
    });
    for (auto &entry : byInput) {
      SmallVector<Projection> &group = entry.second;
      if (group.size() < 2)
        continue;
      if (std::string why = incompatibility(group); !why.empty()) {
        group.front().matmul.emitRemark("m2c-fuse-projections: projections not fused: ")
            << why;
        ++numSkipped;
        continue;
      }
      // The fused matmul goes where the first part was: the input and the
      // row count dominate it there, and the slices dominate every user.
      if (!llvm::all_of(group, [&](Projection &p) {
            return p.matmul->getBlock() == group.front().matmul->getBlock();
          }))
        continue;
      rewrite(group, fusedGlobal(group, symbols));
    }
  }
  // The parts' globals, once no entry point loads them.
  for (ml_program::GlobalOp global : partGlobals_)
    if (SymbolTable::symbolKnownUseEmpty(global, module))
      global.erase();
}

} // namespace
