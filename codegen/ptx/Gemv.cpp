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
#include "mlir/Dialect/Vector/IR/VectorOps.h"

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

  // Tile parameters (docs/passes.md). Decode GEMVs read each weight row
  // once for a block's tokens (a token's arithmetic is the same whatever
  // its group, so results do not depend on the batch); the one-row lm_head
  // after take_last_row has a single token. Rows per warp: more rows reuse
  // each x load, but small N needs the blocks to cover the GPU (~2 waves of
  // 132 SMs); 4 tokens' accumulators leave room for 2.
  const int64_t threads = spec.tileParam("threads", 128), warps = threads / 32;
  const int64_t group = x.tokenRows ? spec.tileParam("tokens_per_block", 4) : 1;
  int64_t rowsPerWarp = 1;
  for (int64_t r : {group > 1 ? int64_t(2) : int64_t(4), int64_t(2)})
    if (ceilDiv(N, r * 4) >= 264) {
      rowsPerWarp = r;
      break;
    }
  rowsPerWarp = spec.tileParam("rows_per_warp", rowsPerWarp);
  if (threads % 32)
    return unsupported(kb, "gemv: tile parameter threads = " + llvm::Twine(threads) +
                               " must be whole warps");
  if (failed(checkTileParam(kb, "gemv", "threads", threads, 32, 1024)) ||
      failed(checkTileParam(kb, "gemv", "tokens_per_block", group, 1, 8)) ||
      failed(checkTileParam(kb, "gemv", "rows_per_warp", rowsPerWarp, 1, 8)))
    return failure();
  const int64_t rowsPerBlock = rowsPerWarp * warps;
  const int64_t rowBlocks = ceilDiv(N, rowsPerBlock);
  const bool ragged = N % rowsPerBlock != 0;
  // grid.y is limited to 65535: put the tokens there if the rows do not fit.
  const bool tokensInX = rowBlocks <= 65535;

  out.name = "m2c_gemv_" + weight.typeName() + "_n" + std::to_string(N) + "_k" + std::to_string(K);
  if (x.type != plan::ElementType::F32)
    out.name += std::string("_x") + shortTypeName(x.type);
  out.name += ys.nameSuffix();

  SmallVector<FuncParam> params = {inputParam(kb, x, 0)};
  weight.appendParams(kb, params, 1);
  ys.appendParams(kb, params);
  if (group > 1)
    params.push_back(tokensParam(kb));
  LaunchExtent tokenExtent = group > 1 ? LaunchExtent::tokens(1, group) : rowsExtent(x);
  std::array<LaunchExtent, 3> grid;
  grid[0] = tokensInX ? tokenExtent : LaunchExtent::fixed(rowBlocks);
  grid[1] = tokensInX ? LaunchExtent::fixed(rowBlocks) : tokenExtent;
  grid[2] = LaunchExtent::fixed(1);
  SmallVector<Value> args =
      kb.beginKernel(out.name, params, {32 * warps, 1, 1}, grid, out);
  Value xs = args[0];
  weight.bind(ValueRange(args).slice(1, weight.numParams()));
  ys.bind(ValueRange(args).slice(1 + weight.numParams(), ys.numParams()));

  Value tokenBlock = kb.blockId(tokensInX ? gpu::Dimension::x : gpu::Dimension::y);
  Value rowBlock = kb.blockId(tokensInX ? gpu::Dimension::y : gpu::Dimension::x);
  Value tid = kb.threadId();
  Value lane = kb.remu(tid, 32), warp = kb.divu(tid, 32);
  Value firstRow = kb.mul(kb.add(kb.mul(rowBlock, warps), warp), rowsPerWarp);

  SmallVector<Value> rows, safeRows;
  SmallVector<WeightRow> loadRows;
  for (int64_t r = 0; r < rowsPerWarp; ++r) {
    Value row = kb.add(firstRow, r);
    rows.push_back(row);
    safeRows.push_back(ragged ? kb.minu(row, N - 1) : row);
    loadRows.push_back({&weight, Value(), safeRows.back()});
  }
  Type yType = KernelBuilder::elementType(kb.b.getContext(), y.type);

  // y[t, rows] for the given tokens, each weight row read once for all.
  auto emitTokens = [&](ArrayRef<Value> tokens) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    WarpDot plan = planWarpDot(K, weight.chunkElements(), rowsPerWarp, n);
    SmallVector<LoadVector> loadXs;
    for (Value token : tokens)
      loadXs.push_back([&, token](Value k, int64_t count) {
        return kb.loadF32(xs, {token, k}, count);
      });
    SmallVector<Value> accs = emitWarpDot(kb, plan, lane, loadXs, loadRows);
    SmallVector<Value> sums;
    for (Value acc : accs)
      sums.push_back(kb.warpSum(kb.reduceAdd(acc)));
    kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
      for (int64_t r = 0; r < rowsPerWarp; ++r)
        for (int64_t t = 0; t < n; ++t) {
          auto write = [&] {
            Value value = sums[r * n + t];
            if (!yType.isF32())
              value = arith::TruncFOp::create(kb.b, yType, value);
            ys.store(kb, value, tokens[t], rows[r]);
          };
          if (ragged)
            kb.ifThen(kb.ult(rows[r], N), write);
          else
            write();
        }
    });
  };
  if (group == 1) {
    emitTokens({tokenBlock});
    return success();
  }
  // A whole group of tokens, or the step's last few one by one.
  Value numTokens = kb.toIndex(args.back());
  Value first = kb.mul(tokenBlock, group);
  Value end = kb.add(first, group);
  kb.ifThen(kb.ult(kb.sub(end, kb.idx(1)), numTokens), [&] {
    SmallVector<Value> tokens;
    for (int64_t t = 0; t < group; ++t)
      tokens.push_back(kb.add(first, t));
    emitTokens(tokens);
  });
  kb.ifThen(kb.ult(numTokens, end), [&] {
    kb.loop(first, numTokens, kb.idx(1), [&](Value token) { emitTokens({token}); });
  });
  return success();
}

} // namespace m2c::ptx
