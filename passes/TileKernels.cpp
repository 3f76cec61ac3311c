//===- TileKernels.cpp - Tile and launch parameters from a cost model -----===//

#include "passes/Passes.h"
#include "codegen/tiling/TileSpace.h"

#include "dialects/attn/AttnOps.h"
#include "dialects/moe/MoeOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace m2c {
#define GEN_PASS_DEF_TILEKERNELS
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

namespace tiling = m2c::tiling;
using Params = tiling::TileParams;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Bytes per element a kernel loads from a weight: 1 for packed formats,
/// 4 for dequantized FP8 checkpoints (kept in f32), else the element size.
int64_t weightLoadBytes(Value weight) {
  if (auto load = weight.getDefiningOp<ml_program::GlobalLoadConstOp>()) {
    auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
        load, load.getGlobalAttr());
    if (global && global->hasAttr("m2c.quantization"))
      return 1;
    if (global && global->hasAttr("m2c.checkpoint_format"))
      return 4;
  }
  Type element = cast<RankedTensorType>(weight.getType()).getElementType();
  return ceilDiv(element.getIntOrFloatBitWidth(), 8);
}

/// A weight the wgmma GEMM reads through a tensor map: bf16, not packed,
/// not a dequantized FP8 checkpoint.
bool wgmmaWeight(Value weight) {
  return weightLoadBytes(weight) == 2 &&
         cast<RankedTensorType>(weight.getType()).getElementType().isBF16();
}

// The choices themselves (and each family's parameters) are in
// codegen/tiling/Tiles.h, where the PTX kernels read them too.

class TileKernelsPass : public m2c::impl::TileKernelsBase<TileKernelsPass> {
public:
  using TileKernelsBase::TileKernelsBase;

  void runOnOperation() override {
    std::optional<tiling::TargetInfo> info = tiling::lookupTarget(target);
    if (!info) {
      getOperation().emitError("m2c-tile-kernels: unknown target '")
          << target << "' (expected sm_80, sm_90 or sm_90a)";
      return signalPassFailure();
    }
    // A pass instance may run on several modules.
    tuned_.clear();
    used_.clear();
    if (failed(loadTuning()))
      return signalPassFailure();
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      auto entry = func->getAttrOfType<StringAttr>("m2c.entry");
      if (!entry)
        continue;
      bool decode = entry.getValue() == "decode";
      WalkResult result = func.walk([&](Operation *op) {
        std::optional<std::pair<std::string, Params>> chosen = choose(*info, op, decode);
        if (!chosen)
          return WalkResult::advance();
        std::string key = entry.getValue().str() + "/" + chosen->first;
        if (failed(applyTuning(op, key, chosen->second)))
          return WalkResult::interrupt();
        SmallVector<NamedAttribute> attrs;
        Builder builder(&getContext());
        for (const auto &[name, value] : chosen->second)
          attrs.push_back(builder.getNamedAttr(name, builder.getI64IntegerAttr(value)));
        op->setAttr("m2c.tile", builder.getDictionaryAttr(attrs));
        op->setAttr("m2c.tile_key", builder.getStringAttr(key));
        ++numTiled;
        return WalkResult::advance();
      });
      if (result.wasInterrupted())
        return signalPassFailure();
    }
    // A stale or mistyped key would otherwise be ignored without a word.
    for (const auto &[key, params] : tuned_)
      if (!used_.count(key))
        getOperation().emitRemark("m2c-tile-kernels: tuning entry ")
            << key << " matches no kernel of this model; it is ignored";
  }

private:
  /// The cost model: a family/shape key and its parameters, per op.
  std::optional<std::pair<std::string, Params>> choose(const tiling::TargetInfo &t, Operation *op,
                                                       bool decode) {
    auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
    if (auto matmul = dyn_cast<linalg::MatmulOp>(op)) {
      Value x = matmul.getDpsInputs()[0], w = matmul.getDpsInputs()[1];
      ArrayRef<int64_t> ws = shapeOf(w);
      std::string key = "linear/" + std::to_string(ws[0]) + "x" + std::to_string(ws[1]);
      // Rows that scale with the step run the GEMV in decode and the GEMM
      // in prefill; a static row count (the prefill's last-token lm_head)
      // is one GEMV token.
      bool tokenRows = ShapedType::isDynamic(shapeOf(x)[0]);
      if (decode || !tokenRows)
        return std::make_pair(key, tiling::toParams(tiling::gemvTile(t, ws[0], tokenRows)));
      if (t.hasWgmma && wgmmaWeight(w) && ws[1] % 64 == 0)
        return std::make_pair(key, tiling::toParams(tiling::wgmmaGemmTile(ws[0])));
      return std::make_pair(key, tiling::toParams(tiling::gemmTile(ws[1], weightLoadBytes(w))));
    }
    if (auto head = dyn_cast<m2c::norm::RmsLogitsOp>(op)) {
      // The lm_head GEMV (after its norm launch) with an argmax epilogue:
      // the GEMV's tiles.
      ArrayRef<int64_t> ws = shapeOf(head.getLmHead());
      bool tokenRows = ShapedType::isDynamic(shapeOf(head.getInput())[0]);
      return std::make_pair("lm_head/" + std::to_string(ws[0]) + "x" + std::to_string(ws[1]),
                            tiling::toParams(tiling::gemvTile(t, ws[0], tokenRows)));
    }
    if (auto experts = dyn_cast<m2c::moe::ExpertsOp>(op)) {
      ArrayRef<int64_t> w1 = shapeOf(experts.getGateProj());
      std::string key = "experts/" + std::to_string(w1[0]) + "x" + std::to_string(w1[1]) + "x" +
                        std::to_string(w1[2]);
      if (decode) {
        // Grouped GEMVs over the selected experts: up to `pairs_per_group`
        // token-expert pairs of one expert share each weight read. A packed
        // chunk dequantizes to 16-32 f32 per row, leaving registers for one
        // pair and more rows.
        bool packed = weightLoadBytes(experts.getGateProj()) == 1 ||
                      weightLoadBytes(experts.getDownProj()) == 1;
        return std::make_pair(key, tiling::toParams(tiling::expertsGemvTile(packed)));
      }
      // Prefill on sm_90a with bf16 weights: wgmma tiles of 64 pairs x 256
      // columns, 2 warpgroups of 128 columns (docs/ptx-codegen.md).
      if (t.hasWgmma && wgmmaWeight(experts.getGateProj()) &&
          wgmmaWeight(experts.getUpProj()) && wgmmaWeight(experts.getDownProj()) &&
          w1[1] % 64 == 0 && w1[2] % 64 == 0)
        return std::make_pair(key, tiling::toParams(tiling::expertsWgmmaTile()));
      // Prefill: pairs sorted by expert, mma.sync tiles of 64 pairs.
      return std::make_pair(key, tiling::toParams(tiling::expertsMmaTile()));
    }
    if (isa<m2c::moe::RouteOp, m2c::moe::NormRouteOp>(op)) {
      ArrayRef<int64_t> gate = shapeOf(op->getOperand(isa<m2c::moe::RouteOp>(op) ? 1 : 3));
      // Blocks of 8 warps, one group of 4 experts per warp; beyond 32
      // experts the gate GEMV spreads over several blocks per token.
      return std::make_pair("route/" + std::to_string(gate[0]) + "x" + std::to_string(gate[1]),
                            tiling::toParams(tiling::routeTile()));
    }
    if (auto gqa = dyn_cast<m2c::attn::GqaOp>(op)) {
      int64_t headDim = gqa.getHeadDim(), kvHeads = gqa.getNumKvHeads();
      std::string key = "attention/" + std::to_string(gqa.getNumHeads()) + "h" +
                        std::to_string(kvHeads) + "kv" + std::to_string(headDim) + "d";
      // Decode is flash-decoding: blocks per (token, KV head, split), then a
      // combine launch; a context of n positions uses ceil(n / min_split) of
      // the `splits` blocks, so short contexts keep their work per block and
      // long ones spread over more SMs.
      if (decode)
        return std::make_pair(key, tiling::toParams(tiling::attentionDecodeTile()));
      return std::make_pair(key, tiling::toParams(tiling::attentionPrefillTile()));
    }
    if (isa<m2c::norm::RmsOp, m2c::norm::AddRmsOp>(op)) {
      int64_t cols = cast<RankedTensorType>(op->getOperand(0).getType()).getShape().back();
      // One block per row, one 16-byte load (four f32) per thread, at most
      // 512 threads (then several loads each).
      return std::make_pair((isa<m2c::norm::RmsOp>(op) ? "rms_norm/" : "add_rms_norm/") +
                                std::to_string(cols),
                            tiling::toParams(tiling::normTile(cols)));
    }
    return std::nullopt;
  }

  LogicalResult loadTuning() {
    if (tuning.empty())
      return success();
    std::ifstream in(tuning);
    if (!in)
      return getOperation().emitError("m2c-tile-kernels: cannot read tuning file '")
             << tuning << "'";
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json root = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    auto fail = [&](const std::string &why) {
      return getOperation().emitError("m2c-tile-kernels: ") << tuning << ": " << why;
    };
    if (root.is_discarded() || !root.is_object())
      return fail("not a JSON object");
    if (!root.contains("target") || !root["target"].is_string())
      return fail("missing \"target\"");
    if (root["target"].get<std::string>() != target)
      return fail("tuned for " + root["target"].get<std::string>() + ", not " + target.getValue());
    if (!root.contains("kernels") || !root["kernels"].is_object())
      return fail("missing \"kernels\" object");
    for (auto it = root["kernels"].begin(); it != root["kernels"].end(); ++it) {
      if (!it.value().is_object())
        return fail("kernels." + it.key() + ": expected an object");
      for (auto param = it.value().begin(); param != it.value().end(); ++param) {
        if (!param.value().is_number_integer() || param.value().get<int64_t>() <= 0)
          return fail("kernels." + it.key() + "." + param.key() + ": expected a positive integer");
        tuned_[it.key()][param.key()] = param.value().get<int64_t>();
      }
    }
    return success();
  }

  LogicalResult applyTuning(Operation *op, const std::string &key, Params &params) {
    auto it = tuned_.find(key);
    if (it == tuned_.end())
      return success();
    used_.insert(key);
    for (const auto &[name, value] : it->second) {
      if (!params.count(name))
        return op->emitError("m2c-tile-kernels: tuning entry ")
               << key << " sets unknown parameter '" << name << "'";
      if (!tiling::isTunable(params, name))
        return op->emitError("m2c-tile-kernels: tuning entry ")
               << key << " sets '" << name << "', which the kernel fixes at " << params[name];
      params[name] = value;
      ++numTuned;
    }
    return success();
  }

  std::map<std::string, Params> tuned_;
  std::set<std::string> used_;
};

} // namespace
