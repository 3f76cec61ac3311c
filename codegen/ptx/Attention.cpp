//===- Attention.cpp - RoPE, paged KV write and paged attention -----------===//
//
// One plan `attention` kernel becomes two or three launches:
//
//  1. m2c_rope_kv_write_*: one block per token. Partial NeoX RoPE on the
//     token's K (pairs (i, i + rotary_dim/2) of each head, angles
//     float(pos) * inv_freq in f32, inv_freq a constant table computed like
//     the CPU reference), then K and V are written to the token's slot of the
//     paged cache (converted to the cache's element type). It must complete
//     before any block reads the cache, hence its own launch.
//  2. m2c_attn_*: one block per (token, KV head, split) computes all
//     H / KV query heads that share the KV head, so each cached K/V row is
//     read once for them. Lanes split a head_dim row into 16-byte pieces;
//     a warp covers 32 / (lanes per row) positions at a time and the 4 warps
//     interleave over positions 0..pos (causal). The query gets its RoPE on
//     load. Scores use an online softmax (running max, sum, rescaled
//     accumulator) per query head, merged across lanes by shuffles and
//     across warps through shared memory.
//  3. m2c_attn_combine_* (decode only): decode launches `splits` blocks per
//     (token, KV head); a token's context uses ceil(ctx / min_split) of
//     them (at most `splits`), each over one slice of the positions, writing
//     partial (acc, max, sum) states to the workspace; this launch merges
//     them (flash-decoding), so a batch-1 step still fills the GPU.
//
// Prefill with a bf16 cache runs its 64-token tiles of one sequence on
// tensor cores (AttentionMma.cpp): launch 1 then also leaves the roped
// queries in bf16, and launch 2 here skips those tiles.
//
// Not done: non-causal attention, head_dim above 32 x 16 bytes.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Attention.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <numeric>
#include <limits>

using namespace mlir;

namespace m2c::ptx {
namespace {

constexpr int64_t kWarps = 4;
// Decode splits the positions per (token, KV head): tiling::AttentionDecodeTile.

/// The splits a decode token's context uses: ceil(ctx / minSplit), at least
/// 1, at most `splits`. It depends on the token's own context only, so a
/// sequence's attention does not change with the batch it runs in.
Value usedSplits(KernelBuilder &kb, Value ctx, int64_t splits, int64_t minSplit) {
  return kb.minu(kb.divu(kb.add(ctx, minSplit - 1), minSplit), splits);
}
using attention::kNoScore;
using Shape = attention::Shape;
using attention::kvLayerParam;
using attention::maxBlocksParam;
using attention::slotBase;

/// The f32 RMS scale 1 / sqrt(mean(x^2) + eps) of row `token` of `xs`
/// ([T, C] f32), reduced over the block (`threads` whole warps): the sum
/// in f32, the last steps in f64 like the rms_norm kernel.
Value rowRmsScale(KernelBuilder &kb, Value xs, Value token, int64_t C, int64_t threads,
                  double eps, llvm::StringRef scratchName) {
  const int64_t width = vectorWidth(C, 4), chunks = C / width;
  Value scratch = kb.shared(scratchName, {threads / 32}, kb.f32());
  SmallVector<Value> sum = kb.loop(
      kb.threadId(), kb.idx(chunks), kb.idx(threads), {kb.cf32(0.0)},
      [&](Value chunk, ValueRange iter) -> SmallVector<Value> {
        Value v = kb.load(xs, {token, kb.mul(chunk, width)}, width);
        return {kb.addf(iter[0], kb.reduceAdd(kb.mulf(v, v)))};
      });
  Value total = kb.blockSum(sum[0], scratch, threads / 32);
  Type f64 = kb.b.getF64Type();
  Value mean = arith::ExtFOp::create(kb.b, f64, kb.divf(total, kb.cf32(static_cast<double>(C))));
  Value root = math::SqrtOp::create(
      kb.b, kb.addf(mean, arith::ConstantOp::create(kb.b, kb.b.getF64FloatAttr(eps))));
  return arith::TruncFOp::create(
      kb.b, kb.f32(), kb.divf(arith::ConstantOp::create(kb.b, kb.b.getF64FloatAttr(1.0)), root));
}

/// Loads n elements of row `token` at column `at`, normalised when `weight`
/// is set: (x * scale) * weight, the reference's order.
Value loadNormalized(KernelBuilder &kb, Value xs, Value token, Value at, int64_t n, Value scale,
                     Value weight) {
  Value x = kb.load(xs, {token, at}, n);
  if (!weight)
    return x;
  return kb.mulf(kb.mulf(x, kb.splat(scale, n)), kb.loadF32(weight, {at}, n));
}

/// inv_freq[i] = float(1 / theta^(2i / rotary_dim)), computed in double as
/// the CPU reference does.
std::vector<float> inverseFrequencies(const Shape &s) {
  std::vector<float> freq(std::max<int64_t>(s.half, 1), 0.0f);
  for (int64_t i = 0; i < s.half; ++i)
    freq[i] = static_cast<float>(1.0 / std::pow(s.theta, double(2 * i) / double(s.rotaryDim)));
  return freq;
}

/// RoPE of the n dims [d, d + n) of a head (n divides rotary_dim / 2):
/// the rotation factors, shared by every head at the same dims.
struct Rope {
  Value lower;   ///< d < rotary_dim / 2: partner is d + half, sign -1
  Value rotated; ///< d < rotary_dim: otherwise the value passes through
  Value partnerOffset;
  Value cos, sin;
};

/// cos and sin of float(pos) * inv_freq[i] in f32 (angles as the CPU
/// reference computes them).
Rope ropeFactors(KernelBuilder &kb, const Shape &s, Value freqTable, Value posF,
                 Value d, int64_t n) {
  Rope rope;
  if (s.half == 0)
    return rope;
  rope.lower = kb.ult(d, s.half);
  rope.rotated = kb.ult(d, s.rotaryDim);
  // Dims past rotary_dim read themselves (offset 0) and keep their value.
  Value zero = kb.idx(0);
  rope.partnerOffset = kb.select(rope.lower, kb.idx(s.half), zero);
  Value freqIndex =
      kb.select(rope.lower, d, kb.select(rope.rotated, kb.sub(d, kb.idx(s.half)), zero));
  Value angle = kb.mulf(kb.splat(posF, n), kb.load(freqTable, {freqIndex}, n));
  // Reduce the f32 angle to [-pi, pi] in f64 (exact enough for any position
  // below 2^24), then take the fast sin/cos: libdevice's accurate sinf/cosf
  // carry a Payne-Hanek path with a local-memory array for large angles.
  VectorType f64 = kb.vec(n, kb.b.getF64Type());
  auto constant = [&](double value) {
    return arith::ConstantOp::create(kb.b, DenseElementsAttr::get(f64, kb.b.getF64FloatAttr(value)));
  };
  Value wide = arith::ExtFOp::create(kb.b, f64, angle);
  Value turns = math::RoundEvenOp::create(kb.b, kb.mulf(wide, constant(0.15915494309189535)));
  Value negTurns = arith::NegFOp::create(kb.b, turns);
  Value reduced = kb.fma(negTurns, constant(6.283185307179586), wide);
  reduced = kb.fma(negTurns, constant(2.4492935982947064e-16), reduced);
  reduced = arith::TruncFOp::create(kb.b, kb.vec(n, kb.f32()), reduced);
  auto cosOp = math::CosOp::create(kb.b, reduced);
  auto sinOp = math::SinOp::create(kb.b, reduced);
  cosOp.setFastmath(arith::FastMathFlags::afn);
  sinOp.setFastmath(arith::FastMathFlags::afn);
  Value sign = kb.select(rope.lower, kb.cf32(-1.0), kb.cf32(1.0));
  rope.cos = cosOp;
  rope.sin = kb.mulf(sinOp, kb.splat(sign, n));
  return rope;
}

/// x1 * cos - x2 * sin (first half), x2 * cos + x1 * sin (second half) of
/// the n values at e of a row; `loadAt(e)` reads n f32 of the row.
Value applyRope(KernelBuilder &kb, const Shape &s, const Rope &rope, Value e,
                llvm::function_ref<Value(Value)> loadAt) {
  Value x = loadAt(e);
  if (s.half == 0)
    return x;
  // Second-half dims have their partner half a rotation back.
  Value back = kb.select(rope.lower, kb.idx(0),
                         kb.select(rope.rotated, kb.idx(s.half), kb.idx(0)));
  Value partner = loadAt(kb.sub(kb.add(e, rope.partnerOffset), back));
  Value rot = kb.addf(kb.mulf(x, rope.cos), kb.mulf(partner, rope.sin));
  return kb.select(rope.rotated, rot, x);
}

/// With `writeQueries` (tensor-core prefill), the same blocks also leave
/// each token's roped, QK-normed queries in bf16 for the mma kernel.
void buildKvWrite(KernelBuilder &kb, const KernelSpec &spec, const Shape &s,
                  KernelBinary &out, const std::string &suffix, bool writeQueries) {
  const int64_t width = vectorWidth(std::gcd(s.D, s.half ? s.half : s.D), 4);
  const int64_t chunks = s.KV * s.D / width;
  const int64_t threads = std::min<int64_t>(256, ceilDiv(chunks, 32) * 32);
  std::string name = (writeQueries ? "m2c_rope_qkv_write" : "m2c_rope_kv_write") + suffix;
  SmallVector<FuncParam> params = {
      inputParam(kb, spec.inputs[1], 1), inputParam(kb, spec.inputs[2], 2),
      inputParam(kb, spec.inputs[3], 3), inputParam(kb, spec.inputs[4], 4),
      inputParam(kb, spec.inputs[5], 5), kvLayerParam(kb, s), maxBlocksParam(kb)};
  if (s.qkNorm)
    params.push_back(inputParam(kb, spec.inputs[7], 7));
  if (writeQueries) {
    params.push_back(inputParam(kb, spec.inputs[0], 0));
    params.push_back(attention::queryWorkspaceParam(kb, spec, s));
    if (s.qkNorm)
      params.push_back(inputParam(kb, spec.inputs[6], 6));
  }
  SmallVector<Value> args =
      kb.beginKernel(name, params, {threads, 1, 1},
                     {rowsExtent(spec.inputs[1]), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)},
                     out);
  Value ks = args[0], vs = args[1], positions = args[2], seqs = args[3], tables = args[4],
        cache = args[5];
  Value maxBlocks = kb.toIndex(args[6]);
  Value freq = kb.constantTable(name + "_inv_freq", inverseFrequencies(s));

  Value token = kb.blockId(gpu::Dimension::x);
  Value kNorm = s.qkNorm ? args[7] : Value();
  Value kScale = s.qkNorm ? rowRmsScale(kb, ks, token, s.KV * s.D, threads, s.qkEps,
                                        name + "_k_partials")
                          : Value();
  Value posI32 = kb.loadScalar(positions, {token});
  Value pos = kb.toIndex(posI32);
  Value posF = arith::SIToFPOp::create(kb.b, kb.f32(), posI32);
  Value seq = kb.toIndex(kb.loadScalar(seqs, {token}));
  Value base = slotBase(kb, s, tables, maxBlocks, seq, pos);
  Type cacheElement = KernelBuilder::elementType(kb.b.getContext(), s.cacheType);
  // Each thread takes `width` elements of a row at a time: the roped (and
  // normalised) values of x[token, e..e+width) go to store(e, values).
  auto ropeRow = [&](Value xs, int64_t elements, Value scale, Value weight,
                     llvm::function_ref<void(Value e, Value rotated)> store) {
    const int64_t pieces = elements / width;
    Value tid = kb.threadId();
    kb.loop(kb.idx(0), kb.idx(pieces), kb.idx(threads), [&](Value start) {
      Value chunk = kb.add(start, tid);
      auto body = [&] {
        Value e = kb.mul(chunk, width);
        Rope rope = ropeFactors(kb, s, freq, posF, kb.remu(e, s.D), width);
        store(e, applyRope(kb, s, rope, e, [&](Value at) {
                return loadNormalized(kb, xs, token, at, width, scale, weight);
              }));
      };
      if (pieces % threads)
        kb.ifThen(kb.ult(chunk, pieces), body);
      else
        body();
    });
  };
  ropeRow(ks, s.KV * s.D, kScale, kNorm, [&](Value e, Value k) {
    kb.store(kb.fromF32(k, cacheElement), cache, {kb.add(base, e)});
    Value v = kb.load(vs, {token, e}, width);
    kb.store(kb.fromF32(v, cacheElement), cache, {kb.add(kb.add(base, s.KV * s.D), e)});
  });
  if (!writeQueries)
    return;
  // The queries: the per-token kernel's arithmetic (norm, then RoPE in
  // f32), rounded once to bf16.
  const size_t q0 = s.qkNorm ? 8 : 7;
  Value qs = args[q0], queries = args[q0 + 1];
  Value qNorm = s.qkNorm ? args[q0 + 2] : Value();
  Value qScale = s.qkNorm ? rowRmsScale(kb, qs, token, s.H * s.D, threads, s.qkEps,
                                        name + "_q_partials")
                          : Value();
  Type bf16 = kb.b.getBF16Type();
  ropeRow(qs, s.H * s.D, qScale, qNorm,
          [&](Value e, Value q) { kb.store(kb.fromF32(q, bf16), queries, {token, e}); });
}

/// One lane group's softmax state for one query head.
struct HeadState {
  Value max, sum, acc;
};

/// Merges two online-softmax states.
HeadState merge(KernelBuilder &kb, HeadState a, HeadState c, int64_t width) {
  Value m = kb.maxf(a.max, c.max);
  Value fa = kb.exp(kb.subf(a.max, m)), fc = kb.exp(kb.subf(c.max, m));
  Value sum = kb.addf(kb.mulf(a.sum, fa), kb.mulf(c.sum, fc));
  Value acc = kb.addf(kb.mulf(a.acc, kb.splat(fa, width)), kb.mulf(c.acc, kb.splat(fc, width)));
  return {m, sum, acc};
}

Value shuffleVector(KernelBuilder &kb, Value vec, int64_t offset, int64_t width) {
  SmallVector<Value> parts;
  for (int64_t i = 0; i < width; ++i)
    parts.push_back(kb.shuffleXor(kb.extract(vec, i), offset));
  return vector::FromElementsOp::create(kb.b, kb.vec(width, kb.f32()), parts);
}

/// With `skipContiguousTiles`, blocks whose token lies in a tile the
/// tensor-core prefill kernel takes return at once.
LogicalResult buildAttend(KernelBuilder &kb, const KernelSpec &spec, const Shape &s,
                          KernelBinary &out, const std::string &suffix, int64_t splits,
                          int64_t minSplit, int64_t partialRow, bool skipContiguousTiles) {
  const int64_t width = vectorWidth(s.D, byteSize(s.cacheType));
  // A row's pieces, on a power-of-two lane group (the butterflies need
  // one); lanes past the row's pieces (head_dim 48: 12 of 16) hold zero
  // queries and store nothing.
  const int64_t rowPieces = s.D / width;
  const int64_t lanesPerRow = static_cast<int64_t>(llvm::PowerOf2Ceil(rowPieces));
  const bool idleLanes = lanesPerRow != rowPieces;
  if (lanesPerRow > 32)
    return unsupported(kb, "attention head_dim " + llvm::Twine(s.D) + " needs more than one "
                           "16-byte piece per lane, which is not lowered yet");
  if (s.half % width != 0)
    return unsupported(kb, "attention rotary_dim " + llvm::Twine(s.rotaryDim) +
                               " does not split into " + llvm::Twine(width) + "-element pieces");
  const int64_t rowsPerWarp = 32 / lanesPerRow;
  const int64_t step = kWarps * rowsPerWarp;
  const float scale = static_cast<float>(std::pow(double(s.D), -0.5));
  std::string name = (splits > 1 ? "m2c_attn_decode" : "m2c_attn") + suffix;

  const TensorInfo &q = spec.inputs[0], &o = spec.outputs[0];
  SmallVector<FuncParam> params = {inputParam(kb, q, 0), inputParam(kb, spec.inputs[3], 3),
                                   inputParam(kb, spec.inputs[4], 4),
                                   inputParam(kb, spec.inputs[5], 5), kvLayerParam(kb, s),
                                   maxBlocksParam(kb)};
  const int64_t partialRows = spec.maxTokens * s.KV * splits * s.group;
  if (splits > 1)
    params.push_back({kb.memref({partialRows, partialRow}, plan::ElementType::F32),
                      {plan::GpuParam::Kind::Workspace, 0}});
  else
    params.push_back(outputParam(kb, o, 0));
  if (s.qkNorm)
    params.push_back(inputParam(kb, spec.inputs[6], 6));
  if (skipContiguousTiles)
    params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(
      name, params, {32 * kWarps, 1, 1},
      {rowsExtent(q), plan::GpuExtent::fixed(s.KV), plan::GpuExtent::fixed(splits)}, out);
  Value qs = args[0], positions = args[1], seqs = args[2], tables = args[3], cache = args[4];
  Value maxBlocks = kb.toIndex(args[5]);
  Value result = args[6];
  Value freq = kb.constantTable(name + "_inv_freq", inverseFrequencies(s));

  Value token = kb.blockId(gpu::Dimension::x);
  auto attend = [&] {
    // Every block normalises its token's whole q row (H * D): the scale
    // needs all of it, and it is a few KB against the cache rows read below.
    Value qNorm = s.qkNorm ? args[7] : Value();
    Value qScale = s.qkNorm ? rowRmsScale(kb, qs, token, s.H * s.D, 32 * kWarps, s.qkEps,
                                          name + "_q_partials")
                            : Value();
    Value kvHead = kb.blockId(gpu::Dimension::y);
    Value split = kb.blockId(gpu::Dimension::z);
    Value tid = kb.threadId();
    Value lane = kb.remu(tid, 32), warp = kb.divu(tid, 32);
    Value sub = kb.divu(lane, lanesPerRow), pieceLane = kb.remu(lane, lanesPerRow);
    Value activeLane = kb.ult(pieceLane, kb.idx(rowPieces));
    // Idle lanes read the row's last piece, so every load stays in the head.
    Value d0 = kb.mul(idleLanes ? kb.minu(pieceLane, kb.idx(rowPieces - 1)) : pieceLane, width);
    Value posI32 = kb.loadScalar(positions, {token});
    Value pos = kb.toIndex(posI32);
    Value posF = arith::SIToFPOp::create(kb.b, kb.f32(), posI32);
    Value seq = kb.toIndex(kb.loadScalar(seqs, {token}));
    Value ctx = kb.add(pos, 1);
    VectorType vtype = kb.vec(width, kb.f32());

    // This block's positions: [begin, end) of the split, in `step` strides.
    Value begin = kb.idx(0), end = ctx;
    if (splits > 1) {
      // The context's own splits, each a whole number of `step`s.
      Value span = kb.mul(usedSplits(kb, ctx, splits, minSplit), step);
      Value perSplit = kb.mul(arith::CeilDivUIOp::create(kb.b, ctx, span), step);
      begin = kb.minu(kb.mul(split, perSplit), ctx);
      end = kb.minu(kb.add(begin, perSplit), ctx);
    }

    // Queries with RoPE, one piece per lane per head.
    SmallVector<Value> queries;
    Rope rope = ropeFactors(kb, s, freq, posF, d0, width);
    for (int64_t g = 0; g < s.group; ++g) {
      Value headBase = kb.mul(kb.add(kb.mul(kvHead, s.group), g), s.D);
      Value query = applyRope(kb, s, rope, kb.add(headBase, d0), [&](Value at) {
        return loadNormalized(kb, qs, token, at, width, qScale, qNorm);
      });
      queries.push_back(idleLanes ? kb.select(activeLane, query, kb.zeros(kb.vec(width, kb.f32())))
                                  : query);
    }

    SmallVector<Value> init;
    for (int64_t g = 0; g < s.group; ++g) {
      init.push_back(kb.cf32(kNoScore));
      init.push_back(kb.cf32(0.0));
      init.push_back(kb.zeros(vtype));
    }
    Value first = kb.add(begin, kb.mul(warp, rowsPerWarp));
    SmallVector<Value> state = kb.loop(
        first, end, kb.idx(step), init, [&](Value p0, ValueRange iter) -> SmallVector<Value> {
          Value p = kb.add(p0, sub);
          Value valid = kb.ult(p, end);
          p = kb.minu(p, kb.sub(end, kb.idx(1)));
          Value base = kb.add(slotBase(kb, s, tables, maxBlocks, seq, p),
                              kb.add(kb.mul(kvHead, s.D), d0));
          Value k = kb.loadF32(cache, {base}, width);
          Value v = kb.loadF32(cache, {kb.add(base, s.KV * s.D)}, width);
          SmallVector<Value> next;
          for (int64_t g = 0; g < s.group; ++g) {
            Value m = iter[3 * g], l = iter[3 * g + 1], acc = iter[3 * g + 2];
            Value score = kb.mulf(kb.warpSum(kb.reduceAdd(kb.mulf(queries[g], k)), lanesPerRow),
                                  kb.cf32(scale));
            score = kb.select(valid, score,
                              kb.cf32(-std::numeric_limits<double>::infinity()));
            Value mNew = kb.maxf(m, score);
            Value correction = kb.exp(kb.subf(m, mNew));
            Value weight = kb.exp(kb.subf(score, mNew));
            next.push_back(mNew);
            next.push_back(kb.addf(kb.mulf(l, correction), weight));
            next.push_back(kb.fma(v, kb.splat(weight, width),
                                  kb.mulf(acc, kb.splat(correction, width))));
          }
          return next;
        });

    // Merge the lane groups of each warp (positions differ, dims agree).
    SmallVector<HeadState> heads;
    for (int64_t g = 0; g < s.group; ++g) {
      HeadState h{state[3 * g], state[3 * g + 1], state[3 * g + 2]};
      for (int64_t offset = lanesPerRow; offset < 32; offset *= 2)
        h = merge(kb, h,
                  {kb.shuffleXor(h.max, offset), kb.shuffleXor(h.sum, offset),
                   shuffleVector(kb, h.acc, offset, width)},
                  width);
      heads.push_back(h);
    }

    // Then the warps, through shared memory: lanes of group 0 publish.
    Value sharedAcc = kb.shared(name + "_acc", {kWarps, s.group, s.D}, kb.f32());
    Value sharedMax = kb.shared(name + "_max", {kWarps, s.group}, kb.f32());
    Value sharedSum = kb.shared(name + "_sum", {kWarps, s.group}, kb.f32());
    kb.ifThen(kb.ult(lane, rowPieces), [&] {
      for (int64_t g = 0; g < s.group; ++g) {
        kb.store(heads[g].acc, sharedAcc, {warp, kb.idx(g), d0});
        kb.ifThen(kb.eq(lane, kb.idx(0)), [&] {
          kb.storeScalar(heads[g].max, sharedMax, {warp, kb.idx(g)});
          kb.storeScalar(heads[g].sum, sharedSum, {warp, kb.idx(g)});
        });
      }
    });
    kb.barrier();
    // Thread i finishes head i / rowPieces, piece i % rowPieces.
    const int64_t pieces = s.group * rowPieces;
    kb.loop(kb.idx(0), kb.idx(pieces), kb.idx(32 * kWarps), [&](Value start) {
      Value item = kb.add(start, tid);
      kb.ifThen(kb.ult(item, pieces), [&] {
        Value g = kb.divu(item, rowPieces);
        Value d = kb.mul(kb.remu(item, rowPieces), width);
        HeadState total{kb.loadScalar(sharedMax, {kb.idx(0), g}),
                        kb.loadScalar(sharedSum, {kb.idx(0), g}),
                        kb.load(sharedAcc, {kb.idx(0), g, d}, width)};
        for (int64_t w = 1; w < kWarps; ++w)
          total = merge(kb, total,
                        {kb.loadScalar(sharedMax, {kb.idx(w), g}),
                         kb.loadScalar(sharedSum, {kb.idx(w), g}),
                         kb.load(sharedAcc, {kb.idx(w), g, d}, width)},
                        width);
        Value head = kb.add(kb.mul(kvHead, s.group), g);
        if (splits == 1) {
          Value outV = kb.divf(total.acc, kb.splat(total.sum, width));
          kb.store(outV, result, {token, kb.add(kb.mul(head, s.D), d)});
          return;
        }
        // Partial row ((token * KV + kvHead) * splits + split) * group + g:
        // [acc (D), max, sum, pad].
        Value row = kb.add(
            kb.mul(kb.add(kb.mul(kb.add(kb.mul(token, s.KV), kvHead), splits), split), s.group),
            g);
        kb.store(total.acc, result, {row, d});
        kb.ifThen(kb.eq(d, kb.idx(0)), [&] {
          kb.storeScalar(total.max, result, {row, kb.idx(s.D)});
          kb.storeScalar(total.sum, result, {row, kb.idx(s.D + 1)});
        });
      });
    });
  };
  if (splits > 1) {
    // Splits past the context's own do nothing (the combine skips them).
    Value ctx = kb.add(kb.toIndex(kb.loadScalar(positions, {token})), 1);
    kb.ifThen(kb.ult(kb.blockId(gpu::Dimension::z), usedSplits(kb, ctx, splits, minSplit)),
              attend);
    return success();
  }
  if (!skipContiguousTiles) {
    attend();
    return success();
  }
  Value t0 = kb.mul(kb.divu(token, attention::kPrefillTile), attention::kPrefillTile);
  Value contiguous = attention::tileIsContiguous(kb, name, seqs, positions, t0,
                                                 kb.toIndex(args.back()));
  kb.ifThen(arith::XOrIOp::create(kb.b, contiguous, arith::ConstantIntOp::create(kb.b, 1, 1)),
            attend);
  return success();
}

void buildCombine(KernelBuilder &kb, const KernelSpec &spec, const Shape &s,
                  KernelBinary &out, const std::string &suffix, int64_t splits,
                  int64_t minSplit, int64_t partialRow) {
  const int64_t width = vectorWidth(s.D, 4);
  const int64_t pieces = s.group * (s.D / width);
  const int64_t threads = std::min<int64_t>(256, ceilDiv(pieces, 32) * 32);
  const TensorInfo &o = spec.outputs[0];
  const int64_t partialRows = spec.maxTokens * s.KV * splits * s.group;
  SmallVector<FuncParam> params = {
      {kb.memref({partialRows, partialRow}, plan::ElementType::F32),
       {plan::GpuParam::Kind::Workspace, 0}},
      outputParam(kb, o, 0), inputParam(kb, spec.inputs[3], 3)};
  SmallVector<Value> args = kb.beginKernel(
      "m2c_attn_combine" + suffix, params, {threads, 1, 1},
      {rowsExtent(o), plan::GpuExtent::fixed(s.KV), plan::GpuExtent::fixed(1)}, out);
  Value partial = args[0], result = args[1], positions = args[2];
  Value token = kb.blockId(gpu::Dimension::x), kvHead = kb.blockId(gpu::Dimension::y);
  Value ctx = kb.add(kb.toIndex(kb.loadScalar(positions, {token})), 1);
  Value used = usedSplits(kb, ctx, splits, minSplit);
  Value tid = kb.threadId();
  kb.loop(kb.idx(0), kb.idx(pieces), kb.idx(threads), [&](Value start) {
    Value item = kb.add(start, tid);
    kb.ifThen(kb.ult(item, pieces), [&] {
      Value g = kb.divu(item, s.D / width);
      Value d = kb.mul(kb.remu(item, s.D / width), width);
      Value firstRow = kb.add(kb.mul(kb.add(kb.mul(token, s.KV), kvHead), splits * s.group), g);
      auto stateAt = [&](Value sp) -> HeadState {
        Value row = kb.add(firstRow, kb.mul(sp, s.group));
        return {kb.loadScalar(partial, {row, kb.idx(s.D)}),
                kb.loadScalar(partial, {row, kb.idx(s.D + 1)}),
                kb.load(partial, {row, d}, width)};
      };
      // Merged in split order, only the splits this context used.
      HeadState first = stateAt(kb.idx(0));
      SmallVector<Value> merged =
          kb.loop(kb.idx(1), used, kb.idx(1), {first.max, first.sum, first.acc},
                  [&](Value sp, ValueRange iter) -> SmallVector<Value> {
                    HeadState next = merge(kb, {iter[0], iter[1], iter[2]}, stateAt(sp), width);
                    return {next.max, next.sum, next.acc};
                  });
      HeadState total{merged[0], merged[1], merged[2]};
      Value head = kb.add(kb.mul(kvHead, s.group), g);
      kb.store(kb.divf(total.acc, kb.splat(total.sum, width)), result,
               {token, kb.add(kb.mul(head, s.D), d)});
    });
  });
}

} // namespace

namespace attention {

Value slotBase(KernelBuilder &kb, const Shape &s, Value tables, Value maxBlocks, Value seq,
               Value pos) {
  Value entry = kb.add(kb.mul(seq, maxBlocks), kb.divu(pos, s.blockSize));
  Value block = kb.toIndex(kb.loadScalar(tables, {entry}));
  Value slot = kb.add(kb.mul(block, s.blockSize), kb.remu(pos, s.blockSize));
  return kb.mul(slot, 2 * s.KV * s.D);
}

FuncParam kvLayerParam(KernelBuilder &kb, const Shape &s) {
  return {kb.memref({int64_t(1) << 40}, s.cacheType), {plan::GpuParam::Kind::KvCacheLayer, 0}};
}

FuncParam maxBlocksParam(KernelBuilder &kb) {
  return {kb.i32(), {plan::GpuParam::Kind::MaxBlocks, 0}};
}

FuncParam queryWorkspaceParam(KernelBuilder &kb, const KernelSpec &spec, const Shape &s) {
  return {kb.memref({spec.maxTokens, s.H * s.D}, plan::ElementType::BF16),
          {plan::GpuParam::Kind::Workspace, 0}};
}

} // namespace attention

LogicalResult buildAttention(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const auto attrs = spec.typedAttrs<plan::AttentionAttrs>();
  Shape s;
  s.H = attrs.numHeads;
  s.KV = attrs.numKvHeads;
  s.D = attrs.headDim;
  s.rotaryDim = attrs.rotaryDim;
  s.half = s.rotaryDim / 2;
  s.theta = attrs.ropeTheta;
  s.blockSize = spec.kvCache.blockSize;
  s.cacheType = spec.kvCache.type;
  if (s.H <= 0 || s.KV <= 0 || s.D <= 0 || s.H % s.KV != 0)
    return unsupported(kb, "attention expects num_heads (" + llvm::Twine(s.H) +
                               ") a positive multiple of num_kv_heads (" + llvm::Twine(s.KV) +
                               ")");
  s.group = s.H / s.KV;
  if (!attrs.causal)
    return unsupported(kb, "non-causal attention is not lowered to PTX yet");
  if (spec.kvCache.kvHeads != s.KV || spec.kvCache.headDim != s.D || s.blockSize <= 0)
    return unsupported(kb, "the KV cache spec does not match the attention kernel");
  if (s.rotaryDim % 2 || s.rotaryDim > s.D)
    return unsupported(kb, "attention rotary_dim " + llvm::Twine(s.rotaryDim) +
                               " must be even and at most head_dim");
  if (s.cacheType != plan::ElementType::F32 && s.cacheType != plan::ElementType::BF16 &&
      s.cacheType != plan::ElementType::F16)
    return unsupported(kb, "attention supports f32, bf16 and f16 KV caches");

  // Decode steps split the positions (flash-decoding); a prefill chunk has
  // enough (token, head) blocks already.
  const bool decode = spec.decode;
  const tiling::AttentionDecodeTile decodeDefaults = tiling::attentionDecodeTile();
  const tiling::AttentionDecodeTile decodeTile = spec.tile(decodeDefaults);
  const tiling::ThreadsTile prefillDefaults = tiling::attentionPrefillTile();
  assert(decodeDefaults.threads == 32 * kWarps && prefillDefaults.threads == 32 * kWarps);
  if (failed(decode ? checkTile(kb, "attention", decodeTile, decodeDefaults)
                    : checkTile(kb, "attention", spec.tile(prefillDefaults), prefillDefaults)))
    return failure();
  const int64_t splits = decode ? decodeTile.splits : 1;
  const int64_t minSplit = decodeTile.minSplit;
  const int64_t partialRow = ceilDiv(s.D + 2, 4) * 4;
  s.qkNorm = spec.inputs.size() == 8;
  s.qkEps = attrs.qkNormEps;
  std::string suffix = "_h" + std::to_string(s.H) + "_kvh" + std::to_string(s.KV) + "_d" +
                       std::to_string(s.D) + "_" + shortTypeName(s.cacheType) + "_bs" +
                       std::to_string(s.blockSize) + (s.qkNorm ? "_qkn" : "");
  out.name = std::string(decode ? "m2c_attention_decode" : "m2c_attention") + suffix;

  // Prefill: tiles of 64 contiguous tokens on tensor cores, the rest (tiles
  // that mix sequences) per token.
  const bool tensorCores = !decode && attention::prefillOnTensorCores(s);
  buildKvWrite(kb, spec, s, out, suffix, tensorCores);
  if (tensorCores) {
    attention::buildPrefillMma(kb, spec, s, out, suffix);
    out.workspaceBytes = spec.maxTokens * s.H * s.D * 2;
  }
  if (failed(buildAttend(kb, spec, s, out, suffix, splits, minSplit, partialRow, tensorCores)))
    return failure();
  if (splits > 1) {
    buildCombine(kb, spec, s, out, suffix, splits, minSplit, partialRow);
    out.workspaceBytes = spec.maxTokens * s.KV * splits * s.group * partialRow * 4;
  }
  return success();
}

} // namespace m2c::ptx
