//===- Moe.cpp - Router top-k and the decode experts ----------------------===//
//
// moe_route (m2c_moe_route_*): one block per token. Its 8 warps compute the
// gate logits with the GEMV inner loop (4 experts per warp step), through
// shared memory; warp 0 then scores them (sigmoid, or softmax with warp
// reductions), adds the selection bias, and picks the top-k by k rounds of
// a warp arg-max (ties to the lower expert id, as the CPU reference), and
// writes ids and (renormalised) weights. Fused with the post-attention
// add_rms_norm (m2c-fuse-norm-route), the block first computes its token's
// sum and normalised row (as add_rms_norm does), writes both, and the gate
// GEMV reads the row from shared memory.
//
// moe_experts: all selected experts of the step in three launches, whatever
// the expert ids are:
//  1. m2c_moe_up_*: one block per (token, slot) pair and slice of the
//     intermediate rows. The block of the lowest pair that chose an expert
//     leads that expert's group (the others exit), lists the group's pairs
//     in shared memory and, 4 pairs at a time (packed weights: 1), streams
//     its warps' rows of W1[e] and W3[e] once for all of them with 16-byte
//     loads: act = silu(W1 x) * (W3 x) per pair, to the workspace.
//  2. m2c_moe_down_*: the same grouping over W2[e] against act: each pair's
//     expert output y, to the workspace.
//  3. m2c_moe_combine_*: out[t] = sum_j w[t, j] y[t * k + j] in slot order
//     (+ the fused residual).
// A pair's arithmetic does not depend on its group, so a token's result
// does not depend on the batch (the scheduler's exactness). This is the
// decode design; prefill chunks use the sorted, grouped tensor-core
// version (MoeGrouped.cpp, docs/ptx-codegen.md).
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"
#include "codegen/ptx/WeightOperand.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>

using namespace mlir;

namespace m2c::ptx {
namespace {

constexpr int64_t kWarps = 4;
constexpr int64_t kRowsPerWarp = 4;

Value negInf(KernelBuilder &kb) { return kb.cf32(-std::numeric_limits<double>::infinity()); }

} // namespace

LogicalResult buildMoeRoute(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  // With add_rms_norm the router normalises its token's row first: inputs
  // (a, b, norm weight, gate [, bias]), outputs (a + b, normed, ids, weights).
  const auto route = spec.typedAttrs<plan::MoeRouteAttrs>();
  const bool norm = route.addRmsNorm;
  const size_t first = norm ? 2 : 0;
  const TensorInfo &x = spec.inputs[0], &gate = spec.inputs[first + 1];
  const bool hasBias = spec.inputs.size() == first + 3;
  const int64_t E = gate.shape[0], Hd = gate.shape[1];
  const int64_t topK = route.topK;
  const bool softmax = route.softmax, renormalize = route.renormalize;
  if (topK < 1 || topK > E || spec.outputs[first].shape[1] != topK)
    return unsupported(kb, "moe_route expects top_k (" + llvm::Twine(topK) +
                               ") in [1, num_experts (" + llvm::Twine(E) + ")]");
  if (x.shape[1] != Hd)
    return unsupported(kb, "moe_route hidden size does not match the gate");
  if (gate.quantization != plan::Quantization::None)
    return unsupported(kb, "the router gate is never quantized");
  // The normalised row lives in shared memory for the gate GEMV.
  if (norm && (x.type != plan::ElementType::F32 || Hd * 4 > 40 * 1024))
    return unsupported(kb, "moe_route's norm prologue needs f32 rows of at most 10240; "
                           "compile with --disable-pass=m2c-fuse-norm-route");
  constexpr int64_t kRouteWarps = 8;
  static_assert(32 * kRouteWarps == tiling::ThreadsTile{256}.threads);
  if (failed(checkTile(kb, "moe_route", spec.tile(tiling::routeTile()), tiling::routeTile())))
    return failure();
  const int64_t perLane = ceilDiv(E, 32);
  const int64_t groups = ceilDiv(E, kRowsPerWarp);
  const std::string normTag = norm ? "_addnorm" : "";
  out.name = "m2c_moe_route_e" + std::to_string(E) + "_k" + std::to_string(topK) + "_h" +
             std::to_string(Hd) + (softmax ? "_softmax" : "_sigmoid") + normTag;

  // The logits go to the workspace: blocks of 8 warps, one group of 4
  // experts per warp. Up to 32 experts one block holds them all and warp 0
  // selects after a barrier; beyond, the GEMV spreads over ceil(E/32)
  // blocks per token (one block per token kept minimax-m2's 256-expert
  // router at 56 us) and a second launch, one warp per token, selects.
  // With the norm prologue every logits block normalises the row into
  // shared memory (a few KB re-read from L2) and the first one writes it.
  const int64_t logitBlocks = ceilDiv(groups, kRouteWarps);
  const bool oneLaunch = logitBlocks == 1;
  out.workspaceBytes = spec.maxTokens * perLane * 32 * 4;
  FuncParam workspace = {kb.memref({spec.maxTokens, perLane * 32}, plan::ElementType::F32),
                         {plan::GpuParam::Kind::Workspace, 0}};
  std::string shape = "_e" + std::to_string(E) + "_h" + std::to_string(Hd);
  std::string selection = "_k" + std::to_string(topK) + (softmax ? "_softmax" : "_sigmoid");
  SmallVector<FuncParam> outputs;
  if (hasBias)
    outputs.push_back(inputParam(kb, spec.inputs[first + 2], first + 2));
  outputs.push_back(outputParam(kb, spec.outputs[first], first));
  outputs.push_back(outputParam(kb, spec.outputs[first + 1], first + 1));
  // The logits launch reads x (or a, b and the norm weight) and the gate,
  // and with the norm writes the sum and the normalised row.
  SmallVector<FuncParam> logitParams = {inputParam(kb, x, 0)};
  if (norm)
    logitParams.append({inputParam(kb, spec.inputs[1], 1), inputParam(kb, spec.inputs[2], 2)});
  logitParams.append({inputParam(kb, gate, first + 1), workspace});
  if (norm)
    logitParams.append(
        {outputParam(kb, spec.outputs[0], 0), outputParam(kb, spec.outputs[1], 1)});
  const size_t numLogitParams = logitParams.size();
  // The token's hidden row, as the gate GEMV reads it: x in global memory,
  // or the prologue's normalised row in shared memory.
  auto hiddenRow = [&](ValueRange args, Value token, Value writes) -> LoadVector {
    if (!norm)
      return [&kb, xs = args[0], token](Value k, int64_t n) {
        return kb.loadF32(xs, {token, k}, n);
      };
    RmsNormRow row;
    row.x = args[0];
    row.residual = args[1];
    row.weight = args[2];
    row.sums = args[5];
    row.ys = args[6];
    row.rowCopy = kb.shared(out.name + "_row", {Hd}, kb.f32());
    row.writeOutputs = writes;
    row.row = token;
    row.cols = Hd;
    row.threads = 32 * kRouteWarps;
    row.eps = route.eps;
    row.scratchName = out.name + (oneLaunch ? "_partials" : "_logits_partials");
    emitRmsNormRow(kb, row);
    kb.barrier();
    return [&kb, shared = row.rowCopy](Value k, int64_t n) { return kb.loadF32(shared, {k}, n); };
  };

  // With few experts (the card's 8: two groups) most warps of the block
  // would idle: then the warps split K, each sums its slice for one group,
  // and the slices add up in a fixed order through shared memory.
  const int64_t chunk = WeightOperand(gate).chunkElements();
  int64_t kSplits = oneLaunch ? kRouteWarps / groups : 1;
  while (kSplits > 1 && Hd % (kSplits * chunk) != 0)
    kSplits /= 2;
  // One warp's dot products of its group's 4 gate rows with x over
  // [k0, k0 + K) (k0 null: from 0), reduced across the warp; `experts`
  // receives the rows' expert ids (past E for a ragged last group).
  auto groupSums = [&](const WeightOperand &gateRows, Value group, Value k0, int64_t K,
                       const LoadVector &loadX, SmallVector<Value> &experts) {
    SmallVector<WeightRow> loadRows;
    for (int64_t r = 0; r < kRowsPerWarp; ++r) {
      experts.push_back(kb.add(kb.mul(group, kRowsPerWarp), r));
      loadRows.push_back({&gateRows, Value(), kb.minu(experts.back(), E - 1), k0});
    }
    LoadVector sliceX = [&](Value k, int64_t n) { return loadX(kb.add(k, k0), n); };
    WarpDot plan = planWarpDot(K, gateRows.chunkElements(), kRowsPerWarp);
    SmallVector<Value> accs =
        emitWarpDot(kb, plan, kb.laneId(), {k0 ? sliceX : loadX}, loadRows);
    SmallVector<Value> sums;
    for (Value acc : accs)
      sums.push_back(kb.warpSum(kb.reduceAdd(acc)));
    return sums;
  };
  auto emitLogits = [&](const LoadVector &loadX, Value gates, Value logits, Value token,
                        Value group) {
    Value lane = kb.laneId();
    WeightOperand gateRows(gate);
    gateRows.bind(gates);
    if (kSplits > 1) {
      const int64_t slice = Hd / kSplits;
      Value warp = kb.warpId();
      Value partials = kb.shared(out.name + "_logit_slices", {kSplits, groups * kRowsPerWarp},
                                 kb.f32());
      // groups * kSplits warps work (3 groups of 12 experts: 6 of the 8);
      // every thread reaches the barrier.
      kb.ifThen(kb.ult(warp, kb.idx(groups * kSplits)), [&] {
        Value split = kb.divu(warp, groups);
        SmallVector<Value> experts;
        SmallVector<Value> sums = groupSums(gateRows, kb.remu(warp, groups),
                                            kb.mul(split, slice), slice, loadX, experts);
        kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
          for (int64_t r = 0; r < kRowsPerWarp; ++r)
            kb.storeScalar(sums[r], partials, {split, experts[r]});
        });
      });
      kb.barrier();
      Value expert = kb.threadId();
      kb.ifThen(kb.ult(expert, E), [&] {
        Value total = kb.loadScalar(partials, {kb.idx(0), expert});
        for (int64_t s = 1; s < kSplits; ++s)
          total = kb.addf(total, kb.loadScalar(partials, {kb.idx(s), expert}));
        kb.storeScalar(total, logits, {token, expert});
      });
      return;
    }
    kb.ifThen(kb.ult(group, groups), [&] {
      SmallVector<Value> experts;
      SmallVector<Value> sums = groupSums(gateRows, group, Value(), Hd, loadX, experts);
      kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
        for (int64_t r = 0; r < kRowsPerWarp; ++r)
          kb.ifThen(kb.ult(experts[r], E),
                    [&] { kb.storeScalar(sums[r], logits, {token, experts[r]}); });
      });
    });
  };

  // Scores, bias and top-k by one warp over logits[token, :].
  auto emitSelect = [&](Value logits, Value bias, Value ids, Value weights, Value token,
                        Value lane) {
    // Lane l holds experts l, l + 32, ...: ascending ids per lane.
    SmallVector<Value> expert, valid, score, choice;
    for (int64_t j = 0; j < perLane; ++j) {
      expert.push_back(kb.add(lane, j * 32));
      valid.push_back(kb.ult(expert.back(), E));
      Value logit = kb.loadScalar(logits, {token, kb.minu(expert.back(), E - 1)});
      score.push_back(kb.select(valid.back(), logit, negInf(kb)));
    }
    if (softmax) {
      Value m = score[0];
      for (int64_t j = 1; j < perLane; ++j)
        m = kb.maxf(m, score[j]);
      m = kb.warpMax(m);
      Value sum = kb.cf32(0.0);
      for (int64_t j = 0; j < perLane; ++j) {
        score[j] = kb.exp(kb.subf(score[j], m));
        sum = kb.addf(sum, score[j]);
      }
      // The reference multiplies by the reciprocal of the sum.
      Value inv = kb.divf(kb.cf32(1.0), kb.warpSum(sum));
      for (int64_t j = 0; j < perLane; ++j)
        score[j] = kb.mulf(score[j], inv);
    } else {
      for (int64_t j = 0; j < perLane; ++j)
        score[j] = kb.divf(kb.cf32(1.0),
                           kb.addf(kb.cf32(1.0), kb.exp(arith::NegFOp::create(kb.b, score[j]))));
    }
    for (int64_t j = 0; j < perLane; ++j) {
      Value c = score[j];
      if (hasBias)
        c = kb.addf(c, kb.loadScalar(bias, {kb.minu(expert[j], E - 1)}));
      choice.push_back(kb.select(valid[j], c, negInf(kb)));
    }

    SmallVector<Value> selectedId, selectedScore;
    for (int64_t round = 0; round < topK; ++round) {
      // The lane's best: strict > keeps the lower id on ties.
      Value best = negInf(kb), bestId = kb.ci32(E), bestScore = kb.cf32(0.0);
      for (int64_t j = 0; j < perLane; ++j) {
        Value better = arith::CmpFOp::create(kb.b, arith::CmpFPredicate::OGT, choice[j], best);
        best = kb.select(better, choice[j], best);
        bestId = kb.select(better, kb.toI32(expert[j]), bestId);
        bestScore = kb.select(better, score[j], bestScore);
      }
      // The warp's best: larger choice, or equal choice and lower id.
      for (int64_t offset = 16; offset >= 1; offset /= 2) {
        Value otherBest = kb.shuffleXor(best, offset);
        Value otherId = kb.shuffleXor(bestId, offset);
        Value otherScore = kb.shuffleXor(bestScore, offset);
        Value greater =
            arith::CmpFOp::create(kb.b, arith::CmpFPredicate::OGT, otherBest, best);
        Value tie = kb.andi(
            arith::CmpFOp::create(kb.b, arith::CmpFPredicate::OEQ, otherBest, best),
            arith::CmpIOp::create(kb.b, arith::CmpIPredicate::slt, otherId, bestId));
        Value take = arith::OrIOp::create(kb.b, greater, tie);
        best = kb.select(take, otherBest, best);
        bestId = kb.select(take, otherId, bestId);
        bestScore = kb.select(take, otherScore, bestScore);
      }
      selectedId.push_back(bestId);
      selectedScore.push_back(bestScore);
      for (int64_t j = 0; j < perLane; ++j)
        choice[j] = kb.select(arith::CmpIOp::create(kb.b, arith::CmpIPredicate::eq,
                                                    kb.toI32(expert[j]), bestId),
                              negInf(kb), choice[j]);
    }
    Value total = selectedScore[0];
    for (int64_t j = 1; j < topK; ++j)
      total = kb.addf(total, selectedScore[j]);
    kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
      for (int64_t j = 0; j < topK; ++j) {
        Value w = renormalize ? kb.divf(selectedScore[j], total) : selectedScore[j];
        kb.storeScalar(selectedId[j], ids, {token, kb.idx(j)});
        kb.storeScalar(w, weights, {token, kb.idx(j)});
      }
    });
    };

  Value token, lane, logits;
  ValueRange rest;
  SmallVector<Value> args;
  const size_t gateArg = norm ? 3 : 1, workspaceArg = gateArg + 1;
  if (oneLaunch) {
    SmallVector<FuncParam> params = logitParams;
    params.append(outputs.begin(), outputs.end());
    args = kb.beginKernel(out.name, params, {32 * kRouteWarps, 1, 1},
                          {rowsExtent(x), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
    token = kb.blockId(gpu::Dimension::x);
    logits = args[workspaceArg];
    emitLogits(hiddenRow(args, token, Value()), args[gateArg], logits, token, kb.warpId());
    // Global writes before the barrier are visible to the whole block.
    kb.barrier();
    rest = ValueRange(args).drop_front(numLogitParams);
    lane = kb.laneId();
  } else {
    args = kb.beginKernel("m2c_moe_route_logits" + shape + normTag, logitParams,
                          {32 * kRouteWarps, 1, 1},
                          {rowsExtent(x), plan::GpuExtent::fixed(logitBlocks), plan::GpuExtent::fixed(1)},
                          out);
    Value block = kb.blockId(gpu::Dimension::y);
    token = kb.blockId(gpu::Dimension::x);
    emitLogits(hiddenRow(args, token, kb.eq(block, kb.idx(0))), args[gateArg],
               args[workspaceArg], token, kb.add(kb.mul(block, kRouteWarps), kb.warpId()));
    SmallVector<FuncParam> params = {workspace};
    params.append(outputs.begin(), outputs.end());
    args = kb.beginKernel("m2c_moe_route_select" + shape + selection + normTag, params,
                          {32, 1, 1},
                          {rowsExtent(x), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
    token = kb.blockId(gpu::Dimension::x);
    logits = args[0];
    rest = ValueRange(args).drop_front(1);
    lane = kb.threadId();
  }
  Value bias = hasBias ? rest[0] : Value();
  Value ids = rest[hasBias ? 1 : 0], weights = rest[hasBias ? 2 : 1];
  kb.ifThen(kb.eq(kb.warpId(), kb.idx(0)),
            [&] { emitSelect(logits, bias, ids, weights, token, lane); });
  return success();
}

namespace {

/// The decode experts' expert groups. The block of pair p (token p / k,
/// slot p % k) leads p's group when p is the lowest pair that selected its
/// expert; the others exit. The leader lists the group's pairs in shared
/// memory (in atomic order: each pair's arithmetic is its own, so the order
/// changes no result) and hands them out `group` at a time.
struct ExpertGroup {
  Value expert, count, list; ///< list: workgroup memref<maxPairs x i32>
};

/// Emits the leader check and the listing; calls body(group) in the
/// leader's blocks only (uniformly across the block).
void withExpertGroup(KernelBuilder &kb, const std::string &name, Value ids, Value pair,
                     Value numPairs, int64_t maxPairs, int64_t E, int64_t topK,
                     llvm::function_ref<void(const ExpertGroup &)> body) {
  ImplicitLocOpBuilder &b = kb.b;
  Value list = kb.shared(name + "_pairs", {maxPairs}, kb.i32());
  Value state = kb.shared(name + "_state", {2}, kb.i32()); // count, not-leader
  auto expertOf = [&](Value p) {
    Value e = kb.toIndex(kb.loadScalar(ids, {kb.divu(p, topK), kb.remu(p, topK)}));
    // Ids outside [0, E) (the runtime validates them) count as expert 0.
    return kb.select(kb.ult(e, E), e, kb.idx(0));
  };
  Value e = expertOf(pair);
  Value tid = kb.threadId();
  kb.ifThen(kb.eq(tid, kb.idx(0)), [&] {
    kb.storeScalar(kb.ci32(0), state, {kb.idx(0)});
    kb.storeScalar(kb.ci32(0), state, {kb.idx(1)});
  });
  kb.barrier();
  kb.loop(tid, numPairs, kb.idx(32 * kWarps), [&](Value q) {
    kb.ifThen(kb.eq(expertOf(q), e), [&] {
      // A lower pair chose e: that pair's block leads.
      // (An atomic, so that concurrent writers are no race for racecheck.)
      kb.ifThen(kb.ult(q, pair), [&] {
        memref::AtomicRMWOp::create(
            b, arith::AtomicRMWKindAttr::get(b.getContext(), arith::AtomicRMWKind::maxs),
            kb.ci32(1), state, ValueRange{kb.idx(1)});
      });
      kb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::uge, q, pair), [&] {
        Value slot = memref::AtomicRMWOp::create(
            b, arith::AtomicRMWKindAttr::get(b.getContext(), arith::AtomicRMWKind::addi),
            kb.ci32(1), state, ValueRange{kb.idx(0)});
        // A token selects an expert at most once, so a group holds at most
        // one pair per token; the guard only keeps bad ids in bounds.
        kb.ifThen(kb.ult(kb.toIndex(slot), maxPairs),
                  [&] { kb.storeScalar(kb.toI32(q), list, {kb.toIndex(slot)}); });
      });
    });
  });
  kb.barrier();
  Value leads = kb.eq(kb.toIndex(kb.loadScalar(state, {kb.idx(1)})), kb.idx(0));
  Value count = kb.minu(kb.toIndex(kb.loadScalar(state, {kb.idx(0)})), maxPairs);
  kb.ifThen(leads, [&] { body({e, count, list}); });
}

} // namespace

LogicalResult buildMoeExpertsGemv(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &idsT = spec.inputs[1], &weightsT = spec.inputs[2];
  const TensorInfo &w1 = spec.inputs[3], &w3 = spec.inputs[4], &w2 = spec.inputs[5];
  const bool hasResidual = spec.inputs.size() == 7;
  const TensorInfo &y = spec.outputs[0];
  if (w1.shape.size() != 3 || w3.shape != w1.shape || w2.shape.size() != 3)
    return unsupported(kb, "moe_experts expects stacked [E, I, H] and [E, H, I] weights");
  const int64_t E = w1.shape[0], I = w1.shape[1], Hd = w1.shape[2];
  const int64_t topK = idsT.shape[1];
  if (w2.shape[0] != E || w2.shape[1] != Hd || w2.shape[2] != I || x.shape[1] != Hd ||
      y.shape[1] != Hd || weightsT.shape[1] != topK)
    return unsupported(kb, "moe_experts weight shapes do not match");
  WeightOperand up1(w1), up3(w3), down(w2);
  for (const WeightOperand *weight : {&up1, &up3, &down})
    if (std::string reason = weight->unsupportedReason(); !reason.empty())
      return unsupported(kb, reason);
  if (up1.typeName() != up3.typeName())
    return unsupported(kb, "moe_experts expects w1 and w3 in one format");
  if (!x.tokenRows)
    return unsupported(kb, "moe_experts expects token-scaled activations");
  // The expert group's pair list lives in static shared memory (48 KB).
  constexpr int64_t kMaxListTokens = 10240;
  if (spec.maxTokens > kMaxListTokens)
    return unsupported(kb, "decode experts list a group's pairs in shared memory: max_tokens (" +
                               llvm::Twine(spec.maxTokens) + ") must be at most " +
                               llvm::Twine(kMaxListTokens));
  const int64_t pairs = spec.maxTokens * topK;
  const std::string shape = "_e" + std::to_string(E) + "_k" + std::to_string(topK) + "_h" +
                            std::to_string(Hd) + "_i" + std::to_string(I) + "_" + up1.typeName() +
                            (down.typeName() != up1.typeName() ? "_" + down.typeName() : "");
  out.name = "m2c_moe_experts" + shape + (hasResidual ? "_residual" : "");
  // Workspace: act [pairs, I], then each pair's expert output y [pairs, Hd].
  const int64_t yOffset = ceilDiv(pairs * I * 4, 256) * 256;
  out.workspaceBytes = yOffset + pairs * Hd * 4;
  FuncParam actParam = {kb.memref({pairs, I}, plan::ElementType::F32),
                        {plan::GpuParam::Kind::Workspace, 0}};
  FuncParam yParam = {kb.memref({pairs, Hd}, plan::ElementType::F32),
                      {plan::GpuParam::Kind::Workspace, yOffset}};

  // Pairs per pass: 4 for bf16/f32 rows. A packed chunk dequantizes to 16-32
  // f32 per row, which 4 pairs' accumulators leave no registers for: one
  // pair at a time, with more rows per warp instead.
  const bool packed = up1.packed() || down.packed();
  const tiling::ExpertsGemvTile defaults = tiling::expertsGemvTile(packed);
  const tiling::ExpertsGemvTile tile = spec.tile(defaults);
  assert(defaults.threads == 32 * kWarps);
  if (failed(checkTile(kb, "moe_experts", tile, defaults)))
    return failure();
  const int64_t group = tile.pairsPerGroup, upRows = tile.upRowsPerWarp,
                downRows = tile.downRowsPerWarp;
  // One grouped GEMV launch: for each group of up to `group` pairs, every
  // warp streams its rows of the expert's matrices once for all of them.
  // emit(args, expert, firstRow, groupPairs) does the math and the stores.
  // Rows per warp: 1 of W1 and 1 of W3 (up), 2 of W2 (down): 16 or 8
  // accumulators of 8 f32 for a group of 4.
  auto groupedLaunch = [&](const std::string &name, SmallVector<FuncParam> params, int64_t rows,
                           int64_t rowsPerWarp,
                           llvm::function_ref<void(ValueRange args, Value e, Value firstRow,
                                                   ArrayRef<Value> groupPairs)>
                               emit) {
    params.push_back(tokensParam(kb));
    SmallVector<Value> args = kb.beginKernel(
        name, params, {32 * kWarps, 1, 1},
        {plan::GpuExtent::tokens(topK), plan::GpuExtent::fixed(ceilDiv(rows, rowsPerWarp * kWarps)),
         plan::GpuExtent::fixed(1)},
        out);
    Value pair = kb.blockId(gpu::Dimension::x), rowBlock = kb.blockId(gpu::Dimension::y);
    Value numPairs = kb.mul(kb.toIndex(args.back()), topK);
    Value firstRow =
        kb.mul(kb.add(kb.mul(rowBlock, kWarps), kb.warpId()), rowsPerWarp);
    // A group has at most one pair per token of the step.
    withExpertGroup(kb, name, args[1], pair, numPairs, spec.maxTokens, E, topK,
                    [&](const ExpertGroup &g) {
      // `group` pairs at a time, then the rest one by one (a single pair,
      // as at batch 1, does no redundant math).
      Value full = group > 1 ? kb.mul(kb.divu(g.count, group), group) : kb.idx(0);
      for (int64_t size : group > 1 ? SmallVector<int64_t>{group, 1} : SmallVector<int64_t>{1}) {
        kb.loop(size == 1 ? full : kb.idx(0), size == 1 ? g.count : full, kb.idx(size),
                [&](Value g0) {
          SmallVector<Value> groupPairs;
          for (int64_t i = 0; i < size; ++i)
            groupPairs.push_back(kb.toIndex(kb.loadScalar(g.list, {kb.add(g0, i)})));
          emit(args, g.expert, firstRow, groupPairs);
        });
      }
    });
  };

  // Launch 1: act[q, :] = silu(W1[e] x_t) * (W3[e] x_t) for each pair q = (t, j).
  {
    SmallVector<FuncParam> params = {inputParam(kb, x, 0), inputParam(kb, idsT, 1)};
    up1.appendParams(kb, params, 3);
    up3.appendParams(kb, params, 4);
    params.push_back(actParam);
    groupedLaunch("m2c_moe_up" + shape, params, I, upRows,
                  [&](ValueRange args, Value e, Value firstRow, ArrayRef<Value> groupPairs) {
      Value xs = args[0], act = args[args.size() - 2];
      up1.bind(args.slice(2, up1.numParams()));
      up3.bind(args.slice(2 + up1.numParams(), up3.numParams()));
      SmallVector<Value> rows;
      SmallVector<WeightRow> loadRows;
      for (int64_t r = 0; r < upRows; ++r)
        rows.push_back(kb.add(firstRow, r));
      for (const WeightOperand *w : {&up1, &up3})
        for (Value row : rows)
          loadRows.push_back({w, e, kb.minu(row, I - 1)});
      SmallVector<LoadVector> loadXs;
      for (Value q : groupPairs) {
        Value token = kb.divu(q, topK);
        loadXs.push_back([&, token](Value k, int64_t n) { return kb.loadF32(xs, {token, k}, n); });
      }
      Value lane = kb.laneId();
      const int64_t n = static_cast<int64_t>(groupPairs.size());
      SmallVector<Value> accs =
          emitWarpDot(kb, planWarpDot(Hd, up1.chunkElements(), 2 * upRows, n), lane, loadXs,
                      loadRows);
      for (int64_t r = 0; r < upRows; ++r)
        for (int64_t i = 0; i < n; ++i) {
          Value g = kb.warpSum(kb.reduceAdd(accs[r * n + i]));
          Value u = kb.warpSum(kb.reduceAdd(accs[(upRows + r) * n + i]));
          // torch's silu: g / (1 + exp(-g)).
          Value silu =
              kb.divf(g, kb.addf(kb.cf32(1.0), kb.exp(arith::NegFOp::create(kb.b, g))));
          Value a = kb.mulf(silu, u);
          kb.ifThen(kb.andi(kb.eq(lane, kb.idx(0)), kb.ult(rows[r], I)),
                    [&] { kb.storeScalar(a, act, {groupPairs[i], rows[r]}); });
        }
    });
  }

  // Launch 2: y[q, :] = W2[e] act[q] for each pair q.
  {
    SmallVector<FuncParam> params = {actParam, inputParam(kb, idsT, 1)};
    down.appendParams(kb, params, 5);
    params.push_back(yParam);
    groupedLaunch("m2c_moe_down" + shape, params, Hd, downRows,
                  [&](ValueRange args, Value e, Value firstRow, ArrayRef<Value> groupPairs) {
      Value act = args[0], ys = args[args.size() - 2];
      down.bind(args.slice(2, down.numParams()));
      SmallVector<Value> rows;
      SmallVector<WeightRow> loadRows;
      for (int64_t r = 0; r < downRows; ++r) {
        rows.push_back(kb.add(firstRow, r));
        loadRows.push_back({&down, e, kb.minu(rows.back(), Hd - 1)});
      }
      SmallVector<LoadVector> loadXs;
      for (Value q : groupPairs)
        loadXs.push_back([&, q](Value k, int64_t n) { return kb.load(act, {q, k}, n); });
      Value lane = kb.laneId();
      const int64_t n = static_cast<int64_t>(groupPairs.size());
      SmallVector<Value> accs = emitWarpDot(
          kb, planWarpDot(I, down.chunkElements(), downRows, n), lane, loadXs, loadRows);
      for (int64_t r = 0; r < downRows; ++r)
        for (int64_t i = 0; i < n; ++i) {
          Value v = kb.warpSum(kb.reduceAdd(accs[r * n + i]));
          kb.ifThen(kb.andi(kb.eq(lane, kb.idx(0)), kb.ult(rows[r], Hd)),
                    [&] { kb.storeScalar(v, ys, {groupPairs[i], rows[r]}); });
        }
    });
  }

  // Launch 3: out[t] = sum_j w[t, j] y[t * k + j] (+ residual), j in slot order.
  emitMoeCombine(kb, spec, shape, {}, yParam, out, [&](ValueRange, Value token, int64_t j) {
    return kb.add(kb.mul(token, topK), j);
  });
  return success();
}

} // namespace m2c::ptx
