//===- Gemv.cpp - Decode linear layers: bandwidth-bound GEMV --------------===//
//
// y[t, n] = sum_k x[t, k] * W[n, k] for few tokens. The weight streams once
// from HBM per token block, so the kernel is built for memory-level
// parallelism: each warp owns a few output rows, each lane loads 16 bytes of
// every row per step (ld.global.v4), several steps are in flight, the
// product accumulates in fp32 vectors, and a shuffle butterfly reduces the
// warp at the end. A decode block takes 4 tokens of the step and reads each
// weight chunk once for all of them; each token's arithmetic is the same in
// any group, so results do not depend on the batch. Blocks are ordered
// tokens-fastest so the blocks that share a weight slice run together and
// batched decode reads it from L2. Weights are read through WeightOperand,
// packed formats included.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"
#include "codegen/ptx/WeightOperand.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;

namespace m2c::ptx {

WarpDot planWarpDot(int64_t K, int64_t width, int64_t rows, int64_t vectors) {
  WarpDot plan;
  plan.K = K;
  plan.width = width;
  int64_t iters = ceilDiv(K / plan.width, 32);
  // Registers the loads of one step hold: 4 per row chunk, `width` per
  // vector chunk (wide chunks load x at their math). Up to 40 allows 4
  // steps in flight; beyond, keep ~128.
  int64_t perStep = rows * 4 + (width > 8 ? 0 : vectors * width);
  int64_t maxUnroll = perStep <= 40 ? 4 : std::max<int64_t>(1, 128 / perStep);
  // A packed chunk dequantizes to `width` f32 per row, live across the
  // group's vectors: one chunk per step then.
  if (width > 8 && vectors > 1)
    maxUnroll = 1;
  for (int64_t unroll : {4, 3, 2})
    if (unroll <= maxUnroll && iters % unroll == 0) {
      plan.unroll = unroll;
      break;
    }
  return plan;
}

SmallVector<Value> emitWarpDot(KernelBuilder &kb, const WarpDot &plan, Value lane,
                               ArrayRef<LoadVector> loadXs, ArrayRef<WeightRow> rows) {
  const int64_t n = plan.width, chunks = plan.K / n, iters = ceilDiv(chunks, 32);
  const int64_t accWidth = plan.accWidth(), vectors = static_cast<int64_t>(loadXs.size());
  const bool tail = chunks % 32 != 0;
  const bool lazyX = accWidth < n;
  VectorType accType = kb.vec(accWidth, kb.f32());
  SmallVector<Value> init(rows.size() * vectors, kb.zeros(accType));
  // Lanes past the end re-read the last chunk and contribute zero.
  auto loadXAt = [&](const LoadVector &loadX, Value k, int64_t count, Value valid) {
    Value x = loadX(k, count);
    return tail ? kb.select(valid, x, kb.zeros(kb.vec(count, kb.f32()))) : x;
  };
  return kb.loop(
      kb.idx(0), kb.idx(iters), kb.idx(plan.unroll), init,
      [&](Value iv, ValueRange iter) -> SmallVector<Value> {
        SmallVector<Value> accs(iter.begin(), iter.end());
        SmallVector<SmallVector<Value>> xs;
        SmallVector<SmallVector<WeightOperand::Chunk>> ws;
        SmallVector<Value> ks, valids;
        // All loads of the step first: they are independent and overlap.
        for (int64_t u = 0; u < plan.unroll; ++u) {
          Value chunk = kb.add(kb.mul(kb.add(iv, u), 32), lane);
          Value valid;
          if (tail) {
            valid = kb.ult(chunk, chunks);
            chunk = kb.minu(chunk, chunks - 1);
          }
          Value k = kb.mul(chunk, n);
          ks.push_back(k);
          valids.push_back(valid);
          // Wide (packed) chunks load x slice by slice at their math, so
          // the registers held stay those of the 8-wide accumulators.
          xs.emplace_back();
          if (!lazyX)
            for (const LoadVector &loadX : loadXs)
              xs.back().push_back(loadXAt(loadX, k, n, valid));
          ws.emplace_back();
          for (const WeightRow &r : rows)
            ws.back().push_back(
                r.weight->loadChunk(kb, r.expert, r.row, r.kOffset ? kb.add(k, r.kOffset) : k));
        }
        auto slice = [&](Value v, int64_t s) -> Value {
          if (accWidth == n)
            return v;
          SmallVector<int64_t> lanes;
          for (int64_t i = 0; i < accWidth; ++i)
            lanes.push_back(s + i);
          return vector::ShuffleOp::create(kb.b, v, v, lanes);
        };
        for (int64_t u = 0; u < plan.unroll; ++u)
          for (size_t r = 0; r < rows.size(); ++r) {
            Value w = rows[r].weight->dequantize(kb, ws[u][r]);
            // Wide chunks fold into the narrower accumulator slice by slice.
            for (int64_t g = 0; g < vectors; ++g)
              for (int64_t s = 0; s < n; s += accWidth) {
                Value &acc = accs[r * vectors + g];
                Value x = lazyX ? loadXAt(loadXs[g], kb.add(ks[u], s), accWidth, valids[u])
                                : slice(xs[u][g], s);
                acc = kb.fma(slice(w, s), x, acc);
              }
          }
        return accs;
      });
}

LinearOutputs::LinearOutputs(ArrayRef<TensorInfo> outputs)
    : outputs_(outputs.begin(), outputs.end()) {
  int64_t column = 0;
  for (const TensorInfo &t : outputs_) {
    begins_.push_back(column);
    column += t.shape[1];
  }
}

void LinearOutputs::appendParams(KernelBuilder &kb, SmallVectorImpl<FuncParam> &params) const {
  for (size_t i = 0; i < outputs_.size(); ++i)
    params.push_back(outputParam(kb, outputs_[i], static_cast<int64_t>(i)));
}

std::string LinearOutputs::nameSuffix() const {
  if (outputs_.size() == 1)
    return "";
  std::string suffix = "_split";
  for (size_t i = 0; i < outputs_.size(); ++i)
    suffix += (i ? "_" : "") + std::to_string(outputs_[i].shape[1]);
  return suffix;
}

int64_t LinearOutputs::minWidth() const {
  int64_t width = outputs_.front().shape[1];
  for (const TensorInfo &t : outputs_)
    width = std::min(width, t.shape[1]);
  return width;
}

void LinearOutputs::store(KernelBuilder &kb, Value value, Value row, Value col) const {
  auto storeAt = [&](size_t i, Value column) {
    if (isa<VectorType>(value.getType()))
      kb.store(value, memrefs_[i], {row, column});
    else
      kb.storeScalar(value, memrefs_[i], {row, column});
  };
  if (outputs_.size() == 1)
    return storeAt(0, col);
  // One compare per range: cheap next to the dot product behind the value.
  for (size_t i = 0; i < outputs_.size(); ++i) {
    int64_t begin = begins_[i], end = begin + outputs_[i].shape[1];
    Value inside = kb.ult(col, end);
    if (begin > 0)
      inside = kb.andi(inside, kb.ult(kb.idx(begin - 1), col));
    kb.ifThen(inside, [&] { storeAt(i, kb.sub(col, kb.idx(begin))); });
  }
}

namespace {

/// Where a GEMV block works: `rowsPerWarp` weight rows per warp, tokens in
/// groups of `group` sharing each weight read.
struct GemvGeometry {
  int64_t warps = 4, group = 1, rowsPerWarp = 1, rowsPerBlock = 4, rowBlocks = 1;
  bool ragged = false;
  /// grid.y is limited to 65535: the tokens go there if the rows do not fit.
  bool tokensInX = true;

  std::array<plan::GpuExtent, 3> grid(const TensorInfo &x) const {
    plan::GpuExtent tokens = group > 1 ? plan::GpuExtent::tokens(1, group) : rowsExtent(x);
    plan::GpuExtent rows = plan::GpuExtent::fixed(rowBlocks);
    return {tokensInX ? tokens : rows, tokensInX ? rows : tokens, plan::GpuExtent::fixed(1)};
  }
};

// Tile parameters (docs/passes.md). Decode GEMVs read each weight row once
// for a block's tokens (a token's arithmetic is the same whatever its group,
// so results do not depend on the batch); a one-row prefill GEMV (the
// lm_head after take_last_row) has a single token. Rows per warp: more rows
// reuse each x load, but small N needs the blocks to cover the GPU (~2 waves
// of its SMs); 4 tokens' accumulators leave room for 2 (tiling::gemvTile).
FailureOr<GemvGeometry> gemvGeometry(KernelBuilder &kb, const KernelSpec &spec,
                                     const TensorInfo &x, int64_t N, llvm::StringRef kernel) {
  GemvGeometry g;
  const tiling::GemvTile defaults = tiling::gemvTile(spec.target, N, x.tokenRows);
  const tiling::GemvTile tile = spec.tile(defaults);
  if (failed(checkTile(kb, kernel, tile, defaults)))
    return failure();
  const int64_t threads = tile.threads;
  g.group = x.tokenRows ? tile.tokensPerBlock : 1;
  g.rowsPerWarp = tile.rowsPerWarp;
  g.warps = threads / 32;
  g.rowsPerBlock = g.rowsPerWarp * g.warps;
  g.rowBlocks = ceilDiv(N, g.rowsPerBlock);
  g.ragged = N % g.rowsPerBlock != 0;
  g.tokensInX = g.rowBlocks <= 65535;
  return g;
}

/// Calls `emitTokens` with the block's token group: a whole group, or the
/// step's last few tokens one by one (`numTokens`: the i32 argument, null
/// when the group is 1).
void forEachTokenGroup(KernelBuilder &kb, const GemvGeometry &g, Value tokenBlock,
                       Value numTokens, llvm::function_ref<void(ArrayRef<Value>)> emitTokens) {
  if (g.group == 1)
    return emitTokens({tokenBlock});
  Value count = kb.toIndex(numTokens);
  Value first = kb.mul(tokenBlock, g.group);
  Value end = kb.add(first, g.group);
  kb.ifThen(kb.ult(kb.sub(end, kb.idx(1)), count), [&] {
    SmallVector<Value> tokens;
    for (int64_t t = 0; t < g.group; ++t)
      tokens.push_back(kb.add(first, t));
    emitTokens(tokens);
  });
  kb.ifThen(kb.ult(count, end),
            [&] { kb.loop(first, count, kb.idx(1), [&](Value token) { emitTokens({token}); }); });
}

/// The rows a warp owns, and the same clamped for loads.
struct WarpRows {
  SmallVector<Value> rows;
  SmallVector<WeightRow> loads;
};
WarpRows warpRows(KernelBuilder &kb, const GemvGeometry &g, const WeightOperand &weight,
                  Value rowBlock, Value warp, int64_t N) {
  WarpRows out;
  Value firstRow = kb.mul(kb.add(kb.mul(rowBlock, g.warps), warp), g.rowsPerWarp);
  for (int64_t r = 0; r < g.rowsPerWarp; ++r) {
    Value row = kb.add(firstRow, r);
    out.rows.push_back(row);
    out.loads.push_back({&weight, Value(), g.ragged ? kb.minu(row, N - 1) : row});
  }
  return out;
}

/// The warp's dot products of its rows with the given tokens' rows of `xs`
/// ([tokens, K] f32), each summed across the warp: [row * tokens + token].
SmallVector<Value> warpRowSums(KernelBuilder &kb, const GemvGeometry &g,
                               const WeightOperand &weight, const WarpRows &rows, Value lane,
                               Value xs, int64_t K, ArrayRef<Value> tokens) {
  WarpDot plan = planWarpDot(K, weight.chunkElements(), g.rowsPerWarp,
                             static_cast<int64_t>(tokens.size()));
  SmallVector<LoadVector> loadXs;
  for (Value token : tokens)
    loadXs.push_back([&kb, xs, token](Value k, int64_t count) {
      return kb.loadF32(xs, {token, k}, count);
    });
  SmallVector<Value> sums;
  for (Value acc : emitWarpDot(kb, plan, lane, loadXs, rows.loads))
    sums.push_back(kb.warpSum(kb.reduceAdd(acc)));
  return sums;
}

} // namespace

LogicalResult buildGemv(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1], &y = spec.outputs[0];
  const int64_t N = w.shape[0], K = w.shape[1];
  int64_t columns = 0;
  for (const TensorInfo &t : spec.outputs)
    columns += t.shape[1];
  if (x.shape[1] != K || columns != N)
    return unsupported(kb, "linear shapes do not match: x [" + llvm::Twine(x.shape[1]) +
                               "], w [" + llvm::Twine(N) + ", " + llvm::Twine(K) + "]");
  LinearOutputs ys(spec.outputs);
  WeightOperand weight(w);
  if (std::string reason = weight.unsupportedReason(); !reason.empty())
    return unsupported(kb, reason);
  FailureOr<GemvGeometry> geometry = gemvGeometry(kb, spec, x, N, "gemv");
  if (failed(geometry))
    return failure();
  const GemvGeometry &g = *geometry;

  out.name = "m2c_gemv_" + weight.typeName() + "_n" + std::to_string(N) + "_k" + std::to_string(K);
  if (x.type != plan::ElementType::F32)
    out.name += std::string("_x") + shortTypeName(x.type);
  out.name += ys.nameSuffix();

  SmallVector<FuncParam> params = {inputParam(kb, x, 0)};
  weight.appendParams(kb, params, 1);
  ys.appendParams(kb, params);
  if (g.group > 1)
    params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(out.name, params, {32 * g.warps, 1, 1}, g.grid(x), out);
  Value xs = args[0];
  weight.bind(ValueRange(args).slice(1, weight.numParams()));
  ys.bind(ValueRange(args).slice(1 + weight.numParams(), ys.numParams()));

  Value tokenBlock = kb.blockId(g.tokensInX ? gpu::Dimension::x : gpu::Dimension::y);
  Value rowBlock = kb.blockId(g.tokensInX ? gpu::Dimension::y : gpu::Dimension::x);
  Value lane = kb.laneId();
  WarpRows rows = warpRows(kb, g, weight, rowBlock, kb.warpId(), N);
  Type yType = KernelBuilder::elementType(kb.b.getContext(), y.type);

  // y[t, rows] for the given tokens, each weight row read once for all.
  forEachTokenGroup(kb, g, tokenBlock, g.group > 1 ? args.back() : Value(),
                    [&](ArrayRef<Value> tokens) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    SmallVector<Value> sums = warpRowSums(kb, g, weight, rows, lane, xs, K, tokens);
    kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
      for (int64_t r = 0; r < g.rowsPerWarp; ++r)
        for (int64_t t = 0; t < n; ++t) {
          auto write = [&] {
            Value value = sums[r * n + t];
            if (!yType.isF32())
              value = arith::TruncFOp::create(kb.b, yType, value);
            ys.store(kb, value, tokens[t], rows.rows[r]);
          };
          if (g.ragged)
            kb.ifThen(kb.ult(rows.rows[r], N), write);
          else
            write();
        }
    });
  });
  return success();
}

namespace {

/// A candidate for the argmax: larger value first, then the lower index.
/// NaN and +inf count as +inf; a final +inf or -inf means "no id" (-1).
struct ArgmaxPair {
  Value value, index; // f32, i32
};
ArgmaxPair betterOf(KernelBuilder &kb, ArgmaxPair a, ArgmaxPair b) {
  using arith::CmpFPredicate;
  Value greater = arith::CmpFOp::create(kb.b, CmpFPredicate::OGT, b.value, a.value);
  Value tie = kb.andi(arith::CmpFOp::create(kb.b, CmpFPredicate::OEQ, b.value, a.value),
                      arith::CmpIOp::create(kb.b, arith::CmpIPredicate::slt, b.index, a.index));
  Value takeB = arith::OrIOp::create(kb.b, greater, tie);
  return {kb.select(takeB, b.value, a.value), kb.select(takeB, b.index, a.index)};
}

/// The pair as one u64 that orders as betterOf does: the value's bits made
/// monotonic (-0 as +0) above the complemented index, so one atomic max
/// merges the warps.
Value argmaxKey(KernelBuilder &kb, ArgmaxPair p) {
  Type i64 = kb.b.getI64Type();
  Value ordered = orderedFloatBits(kb, p.value);
  Value high = arith::ShLIOp::create(kb.b, arith::ExtUIOp::create(kb.b, i64, ordered),
                                     arith::ConstantIntOp::create(kb.b, i64, 32));
  Value low = arith::ExtUIOp::create(kb.b, i64, arith::XOrIOp::create(kb.b, p.index, kb.ci32(-1)));
  return arith::OrIOp::create(kb.b, high, low);
}

/// The id a merged key stands for, or -1 when its value is +-inf.
Value idOfKey(KernelBuilder &kb, Value key) {
  Type i32 = kb.i32(), i64 = kb.b.getI64Type();
  Value high = arith::TruncIOp::create(
      kb.b, i32, arith::ShRUIOp::create(kb.b, key, arith::ConstantIntOp::create(kb.b, i64, 32)));
  // Ordered bits of +inf (0x7f800000 | sign) and -inf (~0xff800000).
  auto is = [&](uint32_t bits) {
    return arith::CmpIOp::create(kb.b, arith::CmpIPredicate::eq, high,
                                 kb.ci32(static_cast<int32_t>(bits)));
  };
  Value infinite = arith::OrIOp::create(kb.b, is(0xff800000u), is(0x007fffffu));
  Value id = arith::XOrIOp::create(kb.b, arith::TruncIOp::create(kb.b, i32, key), kb.ci32(-1));
  return kb.select(infinite, kb.ci32(-1), id);
}

Value atomic(KernelBuilder &kb, arith::AtomicRMWKind kind, Value value, Value memref,
             ValueRange indices) {
  return memref::AtomicRMWOp::create(
      kb.b, arith::AtomicRMWKindAttr::get(kb.b.getContext(), kind), value, memref, indices);
}

} // namespace

LogicalResult buildLmHead(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &normWeight = spec.inputs[1], &w = spec.inputs[2];
  const TensorInfo &logits = spec.outputs[0], &ids = spec.outputs[1];
  const bool candidates = spec.outputs.size() == 4;
  const int64_t V = w.shape[0], H = w.shape[1];
  if (x.type != plan::ElementType::F32 || x.shape[1] != H || logits.shape[1] != V ||
      logits.type != plan::ElementType::F32 || ids.type != plan::ElementType::I32)
    return unsupported(kb, "lm_head expects f32 x [T, " + llvm::Twine(H) +
                               "], f32 logits [T, " + llvm::Twine(V) + "] and i32 ids");
  if (V >= INT32_MAX)
    return unsupported(kb, "lm_head: a vocabulary of " + llvm::Twine(V) + " needs 64-bit ids");
  WeightOperand weight(w);
  if (std::string reason = weight.unsupportedReason(); !reason.empty())
    return unsupported(kb, reason);
  FailureOr<GemvGeometry> geometry = gemvGeometry(kb, spec, x, V, "lm_head");
  if (failed(geometry))
    return failure();
  const GemvGeometry &g = *geometry;
  const bool residual = spec.inputs.size() == 4;
  out.name = "m2c_lm_head_" + weight.typeName() + "_v" + std::to_string(V) + "_h" +
             std::to_string(H);
  if (normWeight.type != plan::ElementType::BF16)
    out.name += std::string("_w") + shortTypeName(normWeight.type);
  if (residual)
    out.name += "_residual";
  if (candidates)
    out.name += "_top" + std::to_string(spec.outputs[2].shape[1]);

  // Launch 1 writes the normalised rows to the workspace, once per token:
  // a prologue in every GEMV block re-reads x in each of the thousands of
  // row blocks (card on an H200, batch 1: 412 us with the rows made in
  // shared memory per block, 387 us with this launch; docs/ptx-codegen.md).
  const int64_t rows = x.tokenRows ? spec.maxTokens : x.shape[0];
  out.workspaceBytes = rows * H * 4;
  TensorInfo normed = x;
  normed.shape = {rows, H};
  FuncParam normedOut = {kb.memref(normed), {plan::GpuParam::Kind::Workspace, 0}};
  const int64_t normThreads = rmsNormThreads(H);
  SmallVector<FuncParam> normParams = {inputParam(kb, x, 0), inputParam(kb, normWeight, 1)};
  if (residual)
    normParams.push_back(inputParam(kb, spec.inputs[3], 3));
  normParams.push_back(normedOut);
  SmallVector<Value> nargs = kb.beginKernel(
      out.name + "_norm", normParams, {normThreads, 1, 1},
      {rowsExtent(x), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
  RmsNormRow row;
  row.x = nargs[0];
  row.weight = nargs[1];
  row.residual = residual ? nargs[2] : Value();
  row.ys = nargs.back();
  row.row = kb.blockId(gpu::Dimension::x);
  row.cols = H;
  row.threads = normThreads;
  row.eps = spec.typedAttrs<plan::NormAttrs>().eps;
  row.scratchName = out.name + "_norm_partials";
  emitRmsNormRow(kb, row);

  // Launch 2: the GEMV over the normalised rows and the logits; every warp
  // merges its best (logit, index) per token into the token's u64 key in
  // the kernel's state (argmaxKey: one atomic max orders them as the host
  // argmax does).
  const int64_t keysBytes = rows * 8;
  out.stateBytes = keysBytes;
  MLIRContext *context = kb.b.getContext();
  FuncParam keysParam = {MemRefType::get({rows}, IntegerType::get(context, 64)),
                         {plan::GpuParam::Kind::State, 0}};
  FuncParam normedIn = {kb.memref(normed), {plan::GpuParam::Kind::Workspace, 0}};
  SmallVector<FuncParam> params = {normedIn};
  weight.appendParams(kb, params, 2);
  params.append({outputParam(kb, logits, 0), keysParam});
  if (g.group > 1)
    params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(out.name, params, {32 * g.warps, 1, 1}, g.grid(x), out);
  Value hs = args[0];
  weight.bind(ValueRange(args).slice(1, weight.numParams()));
  const size_t next = 1 + weight.numParams();
  Value ys = args[next], keys = args[next + 1];
  Value numTokens = g.group > 1 ? args.back() : Value();

  Value tokenBlock = kb.blockId(g.tokensInX ? gpu::Dimension::x : gpu::Dimension::y);
  Value rowBlock = kb.blockId(g.tokensInX ? gpu::Dimension::y : gpu::Dimension::x);
  Value lane = kb.laneId();
  WarpRows rowsOfWarp = warpRows(kb, g, weight, rowBlock, kb.warpId(), V);
  const float inf = std::numeric_limits<float>::infinity();

  forEachTokenGroup(kb, g, tokenBlock, numTokens, [&](ArrayRef<Value> tokens) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    SmallVector<Value> sums = warpRowSums(kb, g, weight, rowsOfWarp, lane, hs, H, tokens);
    SmallVector<ArgmaxPair> best(n);
    for (int64_t t = 0; t < n; ++t) {
      best[t] = {kb.cf32(-inf), kb.ci32(-1)};
      for (int64_t r = 0; r < g.rowsPerWarp; ++r) {
        Value sum = sums[r * n + t];
        // NaN counts as +inf; rows past V do not compete.
        Value isNan = arith::CmpFOp::create(kb.b, arith::CmpFPredicate::UNO, sum, sum);
        Value candidate = kb.select(isNan, kb.cf32(inf), sum);
        if (g.ragged)
          candidate = kb.select(kb.ult(rowsOfWarp.rows[r], V), candidate, kb.cf32(-inf));
        best[t] = betterOf(kb, best[t], {candidate, kb.toI32(rowsOfWarp.rows[r])});
      }
    }
    // Lane 0 writes the warp's logits and merges its best per token into
    // the token's key: a relaxed atomic, ordered for launch 3 by the launch
    // boundary (no fence, no block barrier on the GEMV's path).
    kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < g.rowsPerWarp; ++r) {
          auto write = [&] { kb.storeScalar(sums[r * n + t], ys, {tokens[t], rowsOfWarp.rows[r]}); };
          if (g.ragged)
            kb.ifThen(kb.ult(rowsOfWarp.rows[r], V), write);
          else
            write();
        }
        atomic(kb, arith::AtomicRMWKind::maxu, argmaxKey(kb, best[t]), keys, {tokens[t]});
      }
    });
  });

  // Launch 3: each token's key becomes its id, and the key goes back to 0
  // for the next step.
  SmallVector<FuncParam> finishParams = {keysParam, outputParam(kb, ids, 1)};
  SmallVector<Value> fargs = kb.beginKernel(
      out.name + "_argmax", finishParams, {32, 1, 1},
      {rowsExtent(x), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
  Value token = kb.blockId(gpu::Dimension::x);
  kb.ifThen(kb.eq(kb.threadId(), kb.idx(0)), [&] {
    Value key = atomic(kb, arith::AtomicRMWKind::assign,
                       arith::ConstantIntOp::create(kb.b, kb.b.getI64Type(), 0), fargs[0], {token});
    kb.storeScalar(idOfKey(kb, key), fargs[1], {token, kb.idx(0)});
  });
  // Launches 4 and 5: the sampling candidates, from the logits, with
  // their scratch after the normalised rows.
  if (candidates) {
    const int64_t offset = ceilDiv(out.workspaceBytes, 16) * 16;
    out.workspaceBytes =
        offset + topCandidatesWorkspace(rows, V, spec.outputs[2].shape[1]);
    return emitTopCandidates(kb, out.name + "_candidates", logits, 0, spec.outputs[2],
                             spec.outputs[3], rowsExtent(x), rows, offset, out);
  }
  return success();
}

} // namespace m2c::ptx
