//===- TileKernels.cpp - Tile and launch parameters from a cost model -----===//

#include "passes/Passes.h"
#include "passes/TargetInfo.h"

#include "dialects/attn/AttnOps.h"
#include "dialects/moe/MoeOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

namespace m2c {
#define GEN_PASS_DEF_TILEKERNELS
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

using Params = std::map<std::string, int64_t>;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t nextPowerOfTwo(int64_t x) {
  int64_t p = 1;
  while (p < x)
    p <<= 1;
  return p;
}

int64_t clampTo(int64_t x, int64_t low, int64_t high) { return std::max(low, std::min(high, x)); }

/// Decode GEMV over [n, k] weights: one warp per `rows_per_warp` output rows,
/// 16-byte loads across K. Enough blocks to cover every SM several times
/// (latency hiding needs bytes in flight), but no more rows per warp than
/// keep a warp's loads in registers.
Params gemvParams(const m2c::TargetInfo &target, int64_t n) {
  int64_t warps = 4;
  int64_t rowsPerWarp = clampTo(nextPowerOfTwo(ceilDiv(n, warps * 8 * target.smCount)), 1, 4);
  return {{"threads", warps * 32}, {"rows_per_warp", rowsPerWarp}, {"vector_bytes", 16},
          {"blocks", ceilDiv(n, warps * rowsPerWarp)}};
}

/// Prefill GEMM tiles: mma.sync m16n8k16 (sm_80+) or wgmma (sm_90a), with
/// as many pipeline stages as shared memory holds, up to 4.
Params gemmParams(const m2c::TargetInfo &target, int64_t n) {
  int64_t tileM = 128, tileN = target.hasWgmma ? 256 : 128, tileK = target.hasWgmma ? 64 : 32;
  tileN = std::min(tileN, std::max<int64_t>(64, nextPowerOfTwo(n)));
  int64_t stageBytes = (tileM + tileN) * tileK * 2; // bf16 A and B tiles
  int64_t stages = clampTo(target.sharedMemoryPerBlock / stageBytes, 2, 4);
  return {{"tile_m", tileM},         {"tile_n", tileN},
          {"tile_k", tileK},         {"stages", stages},
          {"threads", 256},          {"wgmma", target.hasWgmma ? 1 : 0},
          {"shared_bytes", stages * stageBytes}};
}

class TileKernelsPass : public m2c::impl::TileKernelsBase<TileKernelsPass> {
public:
  using TileKernelsBase::TileKernelsBase;

  void runOnOperation() override {
    std::optional<m2c::TargetInfo> info = m2c::lookupTarget(target);
    if (!info) {
      getOperation().emitError("m2c-tile-kernels: unknown target '")
          << target << "' (expected sm_80, sm_90 or sm_90a)";
      return signalPassFailure();
    }
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
  }

private:
  /// The cost model: a family/shape key and its parameters, per op.
  std::optional<std::pair<std::string, Params>> choose(const m2c::TargetInfo &t, Operation *op,
                                                       bool decode) {
    auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
    if (auto matmul = dyn_cast<linalg::MatmulOp>(op)) {
      ArrayRef<int64_t> w = shapeOf(matmul.getDpsInputs()[1]);
      std::string key = "linear/" + std::to_string(w[0]) + "x" + std::to_string(w[1]);
      return std::make_pair(key, decode ? gemvParams(t, w[0]) : gemmParams(t, w[0]));
    }
    if (auto experts = dyn_cast<m2c::moe::ExpertsOp>(op)) {
      ArrayRef<int64_t> w1 = shapeOf(experts.getGateProj());
      std::string key = "experts/" + std::to_string(w1[0]) + "x" + std::to_string(w1[1]) + "x" +
                        std::to_string(w1[2]);
      // Decode: a GEMV over the selected experts' gate and up rows together;
      // prefill: token-expert pairs grouped per expert, GEMM tiles of 64 rows.
      Params p = decode ? gemvParams(t, 2 * w1[1]) : gemmParams(t, 2 * w1[1]);
      if (!decode)
        p["tile_m"] = 64;
      return std::make_pair(key, p);
    }
    if (auto route = dyn_cast<m2c::moe::RouteOp>(op)) {
      ArrayRef<int64_t> gate = shapeOf(route.getGateWeight());
      // The gate GEMV is small (E x H); one block per token reduces top-k in
      // shared memory after the warps score their experts.
      int64_t warps = clampTo(ceilDiv(gate[0], 32), 4, 32);
      return std::make_pair("route/" + std::to_string(gate[0]) + "x" + std::to_string(gate[1]),
                            Params{{"threads", warps * 32},
                                   {"experts_per_warp", ceilDiv(gate[0], warps)}});
    }
    if (auto gqa = dyn_cast<m2c::attn::GqaOp>(op)) {
      int64_t headDim = gqa.getHeadDim(), kvHeads = gqa.getNumKvHeads();
      std::string key = "attention/" + std::to_string(gqa.getNumHeads()) + "h" +
                        std::to_string(kvHeads) + "kv" + std::to_string(headDim) + "d";
      if (decode) {
        // Flash-decoding: a block per (sequence, KV head, split); splits are
        // chosen at run time so that batch x kv_heads x splits reaches
        // target_blocks, each split at least min_split positions long.
        return std::make_pair(key, Params{{"threads", 128},
                                          {"target_blocks", 2 * t.smCount},
                                          {"min_split", 256}});
      }
      int64_t tileQ = 64, tileKv = 64;
      int64_t shared = (tileQ + 2 * tileKv) * headDim * 2;
      return std::make_pair(key, Params{{"threads", 128},
                                        {"tile_q", tileQ},
                                        {"tile_kv", tileKv},
                                        {"shared_bytes", shared}});
    }
    if (isa<m2c::norm::RmsOp, m2c::norm::AddRmsOp>(op)) {
      int64_t cols = cast<RankedTensorType>(op->getOperand(0).getType()).getShape().back();
      // Four f32 per thread per 16-byte load; one block per row.
      int64_t threads = clampTo(ceilDiv(ceilDiv(cols, 4), 32) * 32, 32, t.maxThreadsPerBlock);
      return std::make_pair((isa<m2c::norm::RmsOp>(op) ? "rms_norm/" : "add_rms_norm/") +
                                std::to_string(cols),
                            Params{{"threads", threads}});
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
    for (const auto &[name, value] : it->second) {
      if (!params.count(name))
        return op->emitError("m2c-tile-kernels: tuning entry ")
               << key << " sets unknown parameter '" << name << "'";
      params[name] = value;
      ++numTuned;
    }
    return success();
  }

  std::map<std::string, Params> tuned_;
};

} // namespace
