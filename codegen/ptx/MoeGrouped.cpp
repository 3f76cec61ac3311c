//===- MoeGrouped.cpp - Prefill experts: sorted pairs, grouped mma GEMMs --===//
//
// A prefill chunk selects each expert for many tokens, so the experts run as
// grouped GEMMs on tensor cores over the token-expert pairs sorted by
// expert (vLLM's moe_align_block_size idea), in four launches:
//
//  1. m2c_moe_sort_*: one block counts the pairs per expert (shared-memory
//     atomics), lays the experts' pairs out contiguously, cuts each
//     expert's run into 64-row tiles (tile list: expert, first sorted row),
//     and records each pair's sorted position.
//  2. m2c_moe_up_mma_*: one block per (tile, 64 intermediate columns):
//     A = the tile's token rows (gathered), B = W1[e] and W3[e] together;
//     act = silu(gate) * up, stored bf16 in sorted order.
//  3. m2c_moe_down_mma_*: one block per (tile, 128 hidden columns):
//     y = act W2[e]^T in sorted order.
//  4. m2c_moe_combine_*: out[t] = sum_j w[t, j] y[pos(t, j)] in slot order
//     (+ the fused residual), so the result does not depend on the order
//     the atomics gave the pairs within an expert.
//
// Each expert's weights stream once per 64 of its pairs instead of once per
// pair. Tiles past the step's tile count exit at once (the grid is sized
// for ceil(T * k / 64) + E tiles, the most the sort can produce).
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"
#include "codegen/ptx/Mma.h"
#include "codegen/ptx/WeightOperand.h"
#include "codegen/ptx/Wgmma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace m2c::ptx {
namespace {

using mma::kBlockM;

int64_t alignUp(int64_t bytes) { return ceilDiv(bytes, 256) * 256; }

/// The i32 bookkeeping of the sorted pairs, in one workspace array.
struct Meta {
  int64_t E, pairs, maxTiles;
  int64_t tileCount() const { return 0; }
  int64_t expertStart(int64_t e) const { return 1 + e; } // E + 1 entries
  int64_t tiles() const { return 2 + E; }                 // (expert, first row)
  int64_t sortedPair() const { return tiles() + 2 * maxTiles; }
  int64_t slotOfPair() const { return sortedPair() + pairs; }
  int64_t size() const { return slotOfPair() + pairs; }
};

bool convertible(plan::ElementType type) {
  return type == plan::ElementType::F32 || type == plan::ElementType::BF16 ||
         type == plan::ElementType::F16;
}

/// The tile of this block: (expert, first sorted row, rows) when it exists.
struct TileInfo {
  Value expert, firstRow, rows;
};

TileInfo loadTile(KernelBuilder &kb, const Meta &meta, Value metaArray, Value tile) {
  Value expert = kb.toIndex(kb.loadScalar(metaArray, {kb.add(kb.mul(tile, 2), meta.tiles())}));
  Value first =
      kb.toIndex(kb.loadScalar(metaArray, {kb.add(kb.mul(tile, 2), meta.tiles() + 1)}));
  Value end = kb.toIndex(kb.loadScalar(metaArray, {kb.add(expert, meta.expertStart(1))}));
  return {expert, first, kb.minu(kb.sub(end, first), kBlockM)};
}

/// Runs `body` for this block's tile of sorted pairs (grid x), if the sort
/// produced one: the whole block agrees, so barriers inside stay uniform.
void forThisTile(KernelBuilder &kb, const Meta &meta, Value metaArray,
                 llvm::function_ref<void(const TileInfo &)> body) {
  Value tileId = kb.blockId(gpu::Dimension::x);
  Value count = kb.toIndex(kb.loadScalar(metaArray, {kb.idx(meta.tileCount())}));
  kb.ifThen(kb.ult(tileId, count), [&] { body(loadTile(kb, meta, metaArray, tileId)); });
}

/// silu(g) * u, torch's silu: g / (1 + exp(-g)).
Value siluTimes(KernelBuilder &kb, Value g, Value u) {
  Value silu = kb.divf(g, kb.addf(kb.cf32(1.0), kb.exp(arith::NegFOp::create(kb.b, g))));
  return kb.mulf(silu, u);
}

} // namespace

void emitMoeCombine(KernelBuilder &kb, const KernelSpec &spec, const std::string &shape,
                    ArrayRef<FuncParam> extraParams, const FuncParam &yParam, KernelBinary &out,
                    llvm::function_ref<Value(ValueRange extra, Value token, int64_t j)> yRow) {
  const TensorInfo &x = spec.inputs[0], &weightsT = spec.inputs[2], &y = spec.outputs[0];
  const bool hasResidual = spec.inputs.size() == 7;
  const int64_t Hd = y.shape[1], topK = weightsT.shape[1];
  const int64_t width = vectorWidth(Hd, 4);
  const int64_t chunks = Hd / width;
  const int64_t threads = std::min<int64_t>(256, ceilDiv(chunks, 32) * 32);
  SmallVector<FuncParam> params = {inputParam(kb, weightsT, 2)};
  params.append(extraParams.begin(), extraParams.end());
  params.push_back(yParam);
  if (hasResidual)
    params.push_back(inputParam(kb, spec.inputs[6], 6));
  params.push_back(outputParam(kb, y, 0));
  SmallVector<Value> args = kb.beginKernel(
      "m2c_moe_combine" + shape + (hasResidual ? "_residual" : ""), params, {threads, 1, 1},
      {rowsExtent(x), plan::GpuExtent::fixed(ceilDiv(chunks, threads)), plan::GpuExtent::fixed(1)},
      out);
  const size_t extras = extraParams.size();
  Value routeWeights = args[0], ys = args[1 + extras];
  ValueRange extra = ValueRange(args).slice(1, extras);
  Value residual = hasResidual ? args[2 + extras] : Value();
  Value result = args.back();
  Value token = kb.blockId(gpu::Dimension::x);
  Value chunk = kb.add(kb.mul(kb.blockId(gpu::Dimension::y), threads), kb.threadId());
  auto body = [&] {
    Value d = kb.mul(chunk, width);
    Value acc = kb.zeros(kb.vec(width, kb.f32()));
    for (int64_t j = 0; j < topK; ++j) {
      Value w = kb.splat(kb.loadScalar(routeWeights, {token, kb.idx(j)}), width);
      acc = kb.addf(acc, kb.mulf(kb.load(ys, {yRow(extra, token, j), d}, width), w));
    }
    if (hasResidual)
      acc = kb.addf(kb.loadF32(residual, {token, d}, width), acc);
    kb.store(acc, result, {token, d});
  };
  if (chunks % threads)
    kb.ifThen(kb.ult(chunk, chunks), body);
  else
    body();
}

bool moeGroupedSupports(const KernelSpec &spec) {
  const TensorInfo &x = spec.inputs[0], &w1 = spec.inputs[3], &w2 = spec.inputs[5];
  if (w1.shape.size() != 3 || w2.shape.size() != 3 || !x.tokenRows)
    return false;
  const int64_t I = w1.shape[1], Hd = w1.shape[2];
  for (int i : {3, 4, 5})
    if (!convertible(spec.inputs[i].type) ||
        !WeightOperand(spec.inputs[i]).unsupportedReason().empty())
      return false;
  return Hd % mma::kMinBlockK == 0 && I % mma::kMinBlockK == 0 && convertible(x.type) &&
         WeightOperand(w1).typeName() == WeightOperand(spec.inputs[4]).typeName() &&
         spec.outputs[0].type == plan::ElementType::F32;
}

namespace {
LogicalResult emitExpertsMma(KernelBuilder &kb, const KernelSpec &spec, const Meta &meta,
                             const std::string &shape, const FuncParam &metaParam,
                             const FuncParam &actParam, const FuncParam &yParam,
                             KernelBinary &out);
LogicalResult emitExpertsWgmma(KernelBuilder &kb, const KernelSpec &spec, const Meta &meta,
                               const std::string &shape, const FuncParam &metaParam,
                               const FuncParam &actParam, const FuncParam &yParam,
                               KernelBinary &out);
} // namespace

LogicalResult buildMoeExpertsGrouped(KernelBuilder &kb, const KernelSpec &spec,
                                     KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &idsT = spec.inputs[1], &weightsT = spec.inputs[2];
  const TensorInfo &w1 = spec.inputs[3], &w3 = spec.inputs[4], &w2 = spec.inputs[5];
  const bool hasResidual = spec.inputs.size() == 7;
  const TensorInfo &y = spec.outputs[0];
  const int64_t E = w1.shape[0], I = w1.shape[1], Hd = w1.shape[2], topK = idsT.shape[1];
  if (w3.shape != w1.shape || w2.shape[0] != E || w2.shape[1] != Hd || w2.shape[2] != I ||
      x.shape[1] != Hd || y.shape[1] != Hd || weightsT.shape[1] != topK)
    return unsupported(kb, "moe_experts weight shapes do not match");
  WeightOperand up1(w1), up3(w3), down(w2);
  Meta meta{E, spec.maxTokens * topK, ceilDiv(spec.maxTokens * topK, kBlockM) + E};
  const int64_t P = meta.pairs;
  const int64_t actOffset = alignUp(meta.size() * 4);
  const int64_t yOffset = actOffset + alignUp(P * I * 2);
  out.workspaceBytes = yOffset + P * Hd * 4;
  const std::string shape = "_e" + std::to_string(E) + "_k" + std::to_string(topK) + "_h" +
                            std::to_string(Hd) + "_i" + std::to_string(I) + "_" + up1.typeName() +
                            (down.typeName() != up1.typeName() ? "_" + down.typeName() : "");
  out.name = "m2c_moe_experts_grouped" + shape + (hasResidual ? "_residual" : "");

  MemRefType metaType = kb.memref({meta.size()}, plan::ElementType::I32);
  MemRefType actType = kb.memref({P, I}, plan::ElementType::BF16);
  MemRefType yType = kb.memref({P, Hd}, plan::ElementType::F32);
  FuncParam metaParam{metaType, {plan::GpuParam::Kind::Workspace, 0}};
  FuncParam actParam{actType, {plan::GpuParam::Kind::Workspace, actOffset}};
  FuncParam yParam{yType, {plan::GpuParam::Kind::Workspace, yOffset}};
  Type i32 = kb.i32();

  // 1. Sort the pairs by expert and cut the tiles.
  {
    constexpr int64_t kSortThreads = 1024;
    SmallVector<Value> args = kb.beginKernel(
        "m2c_moe_sort_e" + std::to_string(E) + "_k" + std::to_string(topK),
        {inputParam(kb, idsT, 1), metaParam, tokensParam(kb)}, {kSortThreads, 1, 1},
        {plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
    Value ids = args[0], m = args[1];
    Value pairs = kb.mul(kb.toIndex(args[2]), topK);
    Value counts = kb.shared(out.name + "_counts", {E}, i32);
    Value starts = kb.shared(out.name + "_starts", {E}, i32);
    Value tid = kb.threadId();
    auto expertOf = [&](Value p) {
      Value e = kb.toIndex(kb.loadScalar(ids, {kb.divu(p, topK), kb.remu(p, topK)}));
      // Ids outside [0, E) (the runtime validates them) count as expert 0.
      return kb.select(kb.ult(e, E), e, kb.idx(0));
    };
    kb.loop(tid, kb.idx(E), kb.idx(kSortThreads),
            [&](Value e) { kb.storeScalar(kb.ci32(0), counts, {e}); });
    kb.barrier();
    kb.loop(tid, pairs, kb.idx(kSortThreads), [&](Value p) {
      Value rank = memref::AtomicRMWOp::create(
          kb.b, arith::AtomicRMWKindAttr::get(kb.b.getContext(), arith::AtomicRMWKind::addi),
          kb.ci32(1), counts, ValueRange{expertOf(p)});
      kb.storeScalar(rank, m, {kb.add(p, meta.slotOfPair())});
    });
    kb.barrier();
    kb.ifThen(kb.eq(tid, kb.idx(0)), [&] {
      SmallVector<Value> state = kb.loop(
          kb.idx(0), kb.idx(E), kb.idx(1), {kb.ci32(0), kb.ci32(0)},
          [&](Value e, ValueRange iter) -> SmallVector<Value> {
            Value running = iter[0], count = kb.loadScalar(counts, {e});
            kb.storeScalar(running, starts, {e});
            kb.storeScalar(running, m, {kb.add(e, meta.expertStart(0))});
            SmallVector<Value> tilesDone = kb.loop(
                kb.idx(0), kb.toIndex(count), kb.idx(kBlockM), {iter[1]},
                [&](Value r, ValueRange tileIter) -> SmallVector<Value> {
                  Value tile = kb.toIndex(tileIter[0]);
                  kb.storeScalar(kb.toI32(e), m, {kb.add(kb.mul(tile, 2), meta.tiles())});
                  kb.storeScalar(arith::AddIOp::create(kb.b, running, kb.toI32(r)), m,
                                 {kb.add(kb.mul(tile, 2), meta.tiles() + 1)});
                  return {arith::AddIOp::create(kb.b, tileIter[0], kb.ci32(1))};
                });
            return {arith::AddIOp::create(kb.b, running, count), tilesDone[0]};
          });
      kb.storeScalar(state[0], m, {kb.idx(meta.expertStart(E))});
      kb.storeScalar(state[1], m, {kb.idx(meta.tileCount())});
    });
    kb.barrier();
    kb.loop(tid, pairs, kb.idx(kSortThreads), [&](Value p) {
      Value slotAt = kb.add(p, meta.slotOfPair());
      Value pos = arith::AddIOp::create(kb.b, kb.loadScalar(starts, {expertOf(p)}),
                                        kb.loadScalar(m, {slotAt}));
      kb.storeScalar(kb.toI32(p), m, {kb.add(kb.toIndex(pos), meta.sortedPair())});
      kb.storeScalar(pos, m, {slotAt});
    });
  }

  if (spec.wgmmaTile()) {
    if (!moeWgmmaSupports(spec))
      return unsupported(kb, "grouped experts on wgmma need unpacked bf16 weights, and hidden and "
                             "intermediate sizes that are multiples of 64");
    if (failed(emitExpertsWgmma(kb, spec, meta, shape, metaParam, actParam, yParam, out)))
      return failure();
  } else if (failed(emitExpertsMma(kb, spec, meta, shape, metaParam, actParam, yParam, out))) {
    return failure();
  }

  // 4. out[t] = sum_j w[t, j] y[pos(t, j)] (+ residual), j in slot order.
  emitMoeCombine(kb, spec, shape, {metaParam}, yParam, out,
                 [&](ValueRange extra, Value token, int64_t j) {
                   Value slot = kb.add(kb.add(kb.mul(token, topK), j), meta.slotOfPair());
                   return kb.toIndex(kb.loadScalar(extra[0], {slot}));
                 });
  return success();
}

namespace {

LogicalResult emitExpertsMma(KernelBuilder &kb, const KernelSpec &spec, const Meta &meta,
                             const std::string &shape, const FuncParam &metaParam,
                             const FuncParam &actParam, const FuncParam &yParam,
                             KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0];
  const TensorInfo &w1 = spec.inputs[3], &w3 = spec.inputs[4], &w2 = spec.inputs[5];
  const int64_t E = w1.shape[0], I = w1.shape[1], Hd = w1.shape[2],
                topK = spec.inputs[1].shape[1];
  WeightOperand up1(w1), up3(w3), down(w2);
  const plan::GpuExtent tiles = plan::GpuExtent::tokens(topK, kBlockM, 1, E);
  const tiling::ExpertsMmaTile defaults = tiling::expertsMmaTile();
  assert(defaults.threads == mma::kThreads && defaults.tileM == kBlockM);
  if (failed(checkTile(kb, "grouped experts", spec.tile(defaults), defaults)))
    return failure();
  Type bf16 = kb.b.getBF16Type();
  // 2. act = silu(x W1[e]^T) * (x W3[e]^T) per tile of sorted pairs.
  {
    mma::Tile tile{64, mma::chooseBlockK(Hd, std::max(up1.loadBytes(), up3.loadBytes()))};
    SmallVector<FuncParam> params = {inputParam(kb, x, 0)};
    up1.appendParams(kb, params, 3);
    up3.appendParams(kb, params, 4);
    params.append({metaParam, actParam});
    SmallVector<Value> args = kb.beginKernel(
        "m2c_moe_up_mma" + shape, params, {mma::kThreads, 1, 1},
        {tiles, plan::GpuExtent::fixed(ceilDiv(I, tile.blockN)), plan::GpuExtent::fixed(1)}, out);
    Value xs = args[0], m = args[args.size() - 2], act = args.back();
    up1.bind(ValueRange(args).slice(1, up1.numParams()));
    up3.bind(ValueRange(args).slice(1 + up1.numParams(), up3.numParams()));
    Value sharedA = kb.shared("m2c_moe_up_mma" + shape + "_a", {kBlockM, tile.sharedK()}, bf16);
    Value sharedG =
        kb.shared("m2c_moe_up_mma" + shape + "_g", {tile.blockN, tile.sharedK()}, bf16);
    Value sharedU =
        kb.shared("m2c_moe_up_mma" + shape + "_u", {tile.blockN, tile.sharedK()}, bf16);
    Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), tile.blockN);
    forThisTile(kb, meta, m, [&](const TileInfo &t) {
      Value tid = kb.threadId();
      Value lastRow = kb.sub(t.rows, kb.idx(1));
      mma::TileCopy copyA(kb, tile, kBlockM, byteSize(x.type), tid,
                          [&](Value r) -> SmallVector<Value> {
        Value s = kb.add(t.firstRow, kb.minu(r, lastRow));
        Value pair = kb.toIndex(kb.loadScalar(m, {kb.add(s, meta.sortedPair())}));
        return {kb.divu(pair, topK)};
      });
      auto weightRow = [&](Value r) -> SmallVector<Value> {
        Value row = kb.add(n0, r);
        return {t.expert, I % tile.blockN ? kb.minu(row, I - 1) : row};
      };
      mma::TileCopy copyG(kb, tile, tile.blockN, up1, tid, weightRow);
      mma::TileCopy copyU(kb, tile, tile.blockN, up3, tid, weightRow);
      SmallVector<SmallVector<Value>> acc =
          mma::emitMainLoop(kb, tile, Hd, {xs, &copyA, sharedA},
                            {{Value(), &copyG, sharedG}, {Value(), &copyU, sharedU}});
      mma::forEachPair(kb, tile, [&](Value row, Value col, int64_t index) {
        Value c = kb.add(n0, col);
        Value inBounds = kb.ult(row, t.rows);
        if (I % tile.blockN)
          inBounds = kb.andi(inBounds, kb.ult(c, I));
        kb.ifThen(inBounds, [&] {
          SmallVector<Value> values;
          for (int64_t i = 0; i < 2; ++i) {
            Value g = acc[0][index + i], u = acc[1][index + i];
            // int8 tiles held exact codes; their row scales apply here.
            if (up1.scalesInEpilogue())
              g = kb.mulf(g, up1.rowScale(kb, t.expert, kb.add(c, i)));
            if (up3.scalesInEpilogue())
              u = kb.mulf(u, up3.rowScale(kb, t.expert, kb.add(c, i)));
            values.push_back(siluTimes(kb, g, u));
          }
          Value pair = vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), values);
          kb.store(kb.fromF32(pair, bf16), act, {kb.add(t.firstRow, row), c});
        });
      });
    });
  }

  // 3. y = act W2[e]^T per tile of sorted pairs.
  {
    mma::Tile tile{128, mma::chooseBlockK(I, down.loadBytes())};
    SmallVector<FuncParam> params;
    down.appendParams(kb, params, 5);
    params.append({metaParam, actParam, yParam});
    SmallVector<Value> args = kb.beginKernel(
        "m2c_moe_down_mma" + shape, params, {mma::kThreads, 1, 1},
        {tiles, plan::GpuExtent::fixed(ceilDiv(Hd, tile.blockN)), plan::GpuExtent::fixed(1)}, out);
    down.bind(ValueRange(args).take_front(down.numParams()));
    Value m = args[down.numParams()], act = args[down.numParams() + 1],
          ys = args[down.numParams() + 2];
    Value sharedA =
        kb.shared("m2c_moe_down_mma" + shape + "_a", {kBlockM, tile.sharedK()}, bf16);
    Value sharedB =
        kb.shared("m2c_moe_down_mma" + shape + "_b", {tile.blockN, tile.sharedK()}, bf16);
    Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), tile.blockN);
    forThisTile(kb, meta, m, [&](const TileInfo &t) {
      Value tid = kb.threadId();
      Value lastRow = kb.sub(t.rows, kb.idx(1));
      mma::TileCopy copyA(kb, tile, kBlockM, 2, tid, [&](Value r) -> SmallVector<Value> {
        return {kb.add(t.firstRow, kb.minu(r, lastRow))};
      });
      mma::TileCopy copyB(kb, tile, tile.blockN, down, tid,
                          [&](Value r) -> SmallVector<Value> {
                            Value row = kb.add(n0, r);
                            return {t.expert, Hd % tile.blockN ? kb.minu(row, Hd - 1) : row};
                          });
      SmallVector<SmallVector<Value>> acc =
          mma::emitMainLoop(kb, tile, I, {act, &copyA, sharedA}, {{Value(), &copyB, sharedB}});
      mma::forEachPair(kb, tile, [&](Value row, Value col, int64_t index) {
        Value c = kb.add(n0, col);
        Value inBounds = kb.ult(row, t.rows);
        if (Hd % tile.blockN)
          inBounds = kb.andi(inBounds, kb.ult(c, Hd));
        kb.ifThen(inBounds, [&] {
          SmallVector<Value> values = {acc[0][index], acc[0][index + 1]};
          if (down.scalesInEpilogue())
            for (int64_t i = 0; i < 2; ++i)
              values[i] = kb.mulf(values[i], down.rowScale(kb, t.expert, kb.add(c, i)));
          kb.store(vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), values), ys,
                   {kb.add(t.firstRow, row), c});
        });
      });
    });
  }

  return success();
}

/// Steps 2 and 3 on wgmma (sm_90a): blocks of 2 warpgroups over one
/// 64-row tile of sorted pairs, each warpgroup 128 of the block's 256
/// columns; W1 and W3 (up), W2 (down) through TMA, their [E, N, K] stacks
/// mapped as [E * N, K] (a box past an expert's last row reads the next
/// expert's, whose columns the epilogue drops).
LogicalResult emitExpertsWgmma(KernelBuilder &kb, const KernelSpec &spec, const Meta &meta,
                               const std::string &shape, const FuncParam &metaParam,
                               const FuncParam &actParam, const FuncParam &yParam,
                               KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &w1 = spec.inputs[3];
  const int64_t E = w1.shape[0], I = w1.shape[1], Hd = w1.shape[2],
                topK = spec.inputs[1].shape[1];
  const plan::GpuExtent tiles = plan::GpuExtent::tokens(topK, kBlockM, 1, E);
  wgmma::Tile upTile{1, 2, 128, 2, 3}, downTile{1, 2, 128, 1, 4};
  const tiling::ExpertsWgmmaTile defaults = tiling::expertsWgmmaTile();
  assert(defaults.threads == upTile.threads() && defaults.tileM == kBlockM &&
         defaults.upTileN == upTile.blockN() && defaults.downTileN == downTile.blockN());
  if (failed(checkTile(kb, "grouped experts", spec.tile(defaults), defaults)) ||
      failed(wgmma::checkTile(kb, "grouped experts (up)", upTile)) ||
      failed(wgmma::checkTile(kb, "grouped experts (down)", downTile)))
    return failure();
  Type bf16 = kb.b.getBF16Type();
  auto pairStore = [&](ArrayRef<Value> values) {
    return vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), values);
  };

  // 2. act = silu(x W1[e]^T) * (x W3[e]^T).
  {
    const std::string name = "m2c_moe_up_wgmma" + shape;
    SmallVector<FuncParam> params = {inputParam(kb, x, 0),
                                     wgmma::tensorMapParam(kb, 3, upTile.blockN()),
                                     wgmma::tensorMapParam(kb, 4, upTile.blockN()), metaParam,
                                     actParam};
    SmallVector<Value> args = kb.beginKernel(
        name, params, {upTile.threads(), 1, 1},
        {tiles, plan::GpuExtent::fixed(ceilDiv(I, upTile.blockN())), plan::GpuExtent::fixed(1)}, out);
    out.launches.back().sharedBytes = upTile.sharedBytes();
    Value xs = args[0], m = args[3], act = args[4];
    Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), upTile.blockN());
    forThisTile(kb, meta, m, [&](const TileInfo &t) {
      Value lastRow = kb.sub(t.rows, kb.idx(1));
      auto tokenRow = [&](Value r) -> SmallVector<Value> {
        Value sorted = kb.add(t.firstRow, kb.minu(r, lastRow));
        Value pair = kb.toIndex(kb.loadScalar(m, {kb.add(sorted, meta.sortedPair())}));
        return {kb.divu(pair, topK)};
      };
      Value mapRow = kb.toI32(kb.add(kb.mul(t.expert, I), n0));
      wgmma::Operands ops{xs, byteSize(x.type), tokenRow, {args[1], args[2]}, {mapRow, mapRow}};
      SmallVector<SmallVector<Value>> acc =
          wgmma::emitMainLoop(kb, upTile, Hd, ops, name + "_shared");
      wgmma::forEachPair(kb, upTile, [&](Value row, Value col, int64_t index) {
        Value c = kb.add(n0, col);
        kb.ifThen(kb.andi(kb.ult(row, t.rows), kb.ult(c, I)), [&] {
          SmallVector<Value> values;
          for (int64_t i = 0; i < 2; ++i) {
            Value g = acc[0][index + i], u = acc[1][index + i];
            values.push_back(siluTimes(kb, g, u));
          }
          kb.store(kb.fromF32(pairStore(values), bf16), act, {kb.add(t.firstRow, row), c});
        });
      });
    });
  }

  // 3. y = act W2[e]^T.
  {
    const std::string name = "m2c_moe_down_wgmma" + shape;
    SmallVector<FuncParam> params = {wgmma::tensorMapParam(kb, 5, downTile.blockN()),
                                     metaParam, actParam, yParam};
    SmallVector<Value> args = kb.beginKernel(
        name, params, {downTile.threads(), 1, 1},
        {tiles, plan::GpuExtent::fixed(ceilDiv(Hd, downTile.blockN())), plan::GpuExtent::fixed(1)},
        out);
    out.launches.back().sharedBytes = downTile.sharedBytes();
    Value m = args[1], act = args[2], ys = args[3];
    Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), downTile.blockN());
    forThisTile(kb, meta, m, [&](const TileInfo &t) {
      Value lastRow = kb.sub(t.rows, kb.idx(1));
      auto actRow = [&](Value r) -> SmallVector<Value> {
        return {kb.add(t.firstRow, kb.minu(r, lastRow))};
      };
      Value mapRow = kb.toI32(kb.add(kb.mul(t.expert, Hd), n0));
      wgmma::Operands ops{act, 2, actRow, {args[0]}, {mapRow}};
      SmallVector<SmallVector<Value>> acc =
          wgmma::emitMainLoop(kb, downTile, I, ops, name + "_shared");
      wgmma::forEachPair(kb, downTile, [&](Value row, Value col, int64_t index) {
        Value c = kb.add(n0, col);
        kb.ifThen(kb.andi(kb.ult(row, t.rows), kb.ult(c, Hd)), [&] {
          kb.store(pairStore({acc[0][index], acc[0][index + 1]}), ys,
                   {kb.add(t.firstRow, row), c});
        });
      });
    });
  }
  return success();
}

} // namespace

bool moeWgmmaSupports(const KernelSpec &spec) {
  // The A operands are f32 (or 2-byte) x and the bf16 activations; the
  // sort's 64-row tiles are one warpgroup's rows.
  return moeGroupedSupports(spec) && wgmma::weightSupported(spec.inputs[3]) &&
         wgmma::weightSupported(spec.inputs[4]) && wgmma::weightSupported(spec.inputs[5]) &&
         spec.inputs[3].shape[2] % wgmma::kBlockK == 0 &&
         spec.inputs[5].shape[2] % wgmma::kBlockK == 0 && kBlockM == wgmma::kWarpgroupRows;
}

/// Prefill experts grouped on tensor cores where resolveSpec chose them,
/// else the decode GEMVs.
LogicalResult buildMoeExperts(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  return spec.moeGrouped ? buildMoeExpertsGrouped(kb, spec, out) : buildMoeExpertsGemv(kb, spec, out);
}

} // namespace m2c::ptx
