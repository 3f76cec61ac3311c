//===- AttentionMma.cpp - Prefill attention on tensor cores ---------------===//
//
// m2c_attn_prefill_mma_*: FlashAttention-2 over the paged cache, for tiles
// of 64 tokens of one sequence at consecutive positions (a prompt chunk).
// A block is 4 warps for one tile and one query head; warp w owns query
// rows 16w..16w+15. The queries arrive roped and normalised in bf16 from the
// KV-write launch and stay in registers as mma A fragments. Per tile of 64
// cached positions:
//   - K and V rows are gathered through the block table into shared memory
//     (16-byte loads, rows padded by 8 bf16 so ldmatrix is conflict free);
//   - S = Q K^T on mma.sync.m16n8k16 (bf16 in, f32 accumulate), scaled by
//     1/sqrt(head_dim) in f32, with the causal mask;
//   - an online softmax in registers: a row's 64 scores live in the 4 lanes
//     of a quad, so its max is two shuffles; the running sum stays per lane
//     until the end;
//   - O += P V, with P rounded to bf16 straight from the S accumulators
//     (their m16n8 layout is the A operand's) and V through ldmatrix.trans.
// Tiles that mix sequences or skip positions (several prompts packed in one
// step) are left to the per-token kernel; tileIsContiguous decides for both.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Attention.h"
#include "codegen/ptx/Mma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>

using namespace mlir;

namespace m2c::ptx::attention {
namespace {

constexpr int64_t kWarps = 4, kThreads = 32 * kWarps, kPad = 8;

Value cmpEq(KernelBuilder &kb, Value a, Value c) {
  return arith::CmpIOp::create(kb.b, arith::CmpIPredicate::eq, a, c);
}

/// Two f32 as one register of bf16 (lo in the low half).
Value packBf16(KernelBuilder &kb, Value lo, Value hi) {
  Value pair = vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), ValueRange{lo, hi});
  Value halves = kb.fromF32(pair, kb.b.getBF16Type());
  Value bits = vector::BitCastOp::create(kb.b, kb.vec(1, kb.i32()), halves);
  return kb.extract(bits, 0);
}

} // namespace

Value tileIsContiguous(KernelBuilder &kb, StringRef name, Value seqs, Value positions, Value t0,
                       Value numTokens) {
  Value mixed = kb.shared((name + "_mixed").str(), {1}, kb.i32());
  Value tid = kb.threadId();
  kb.ifThen(kb.eq(tid, kb.idx(0)), [&] { kb.storeScalar(kb.ci32(0), mixed, {kb.idx(0)}); });
  kb.barrier();
  Value t = kb.add(t0, tid);
  kb.ifThen(kb.andi(kb.ult(tid, kPrefillTile), kb.ult(t, numTokens)), [&] {
    Value seq0 = kb.loadScalar(seqs, {t0}), pos0 = kb.loadScalar(positions, {t0});
    Value expected = arith::AddIOp::create(kb.b, pos0, kb.toI32(tid));
    Value same = kb.andi(cmpEq(kb, kb.loadScalar(seqs, {t}), seq0),
                         cmpEq(kb, kb.loadScalar(positions, {t}), expected));
    kb.ifThen(cmpEq(kb, same, arith::ConstantIntOp::create(kb.b, 0, 1)),
              [&] { kb.storeScalar(kb.ci32(1), mixed, {kb.idx(0)}); });
  });
  kb.barrier();
  return cmpEq(kb, kb.loadScalar(mixed, {kb.idx(0)}), kb.ci32(0));
}

void buildPrefillMma(KernelBuilder &kb, const KernelSpec &spec, const Shape &s, KernelBinary &out,
                     const std::string &suffix) {
  const int64_t D = s.D, kSteps = D / 16, dimTiles = D / 8, rowChunks = D / 8;
  const int64_t scoreTiles = kPrefillTile / 8; // n8 tiles of S per warp
  const float scale = static_cast<float>(std::pow(double(D), -0.5));
  const std::string name = "m2c_attn_prefill_mma" + suffix;
  const TensorInfo &o = spec.outputs[0];
  SmallVector<FuncParam> params = {queryWorkspaceParam(kb, spec, s),
                                   inputParam(kb, spec.inputs[3], 3),
                                   inputParam(kb, spec.inputs[4], 4),
                                   inputParam(kb, spec.inputs[5], 5),
                                   kvLayerParam(kb, s),
                                   maxBlocksParam(kb),
                                   outputParam(kb, o, 0),
                                   tokensParam(kb)};
  SmallVector<Value> args = kb.beginKernel(
      name, params, {kThreads, 1, 1},
      {plan::GpuExtent::tokens(1, kPrefillTile), plan::GpuExtent::fixed(s.H), plan::GpuExtent::fixed(1)},
      out);
  Value queries = args[0], positions = args[1], seqs = args[2], tables = args[3],
        cache = args[4], result = args[6];
  Value maxBlocks = kb.toIndex(args[5]), numTokens = kb.toIndex(args[7]);
  Value t0 = kb.mul(kb.blockId(gpu::Dimension::x), kPrefillTile);
  Value head = kb.blockId(gpu::Dimension::y);
  Value kvHead = kb.divu(head, s.group);
  Value contiguous = tileIsContiguous(kb, name, seqs, positions, t0, numTokens);

  kb.ifThen(contiguous, [&] {
    Type bf16 = kb.b.getBF16Type();
    Value sharedK = kb.shared(name + "_k", {kPrefillTile, D + kPad}, bf16);
    Value sharedV = kb.shared(name + "_v", {kPrefillTile, D + kPad}, bf16);
    Value tid = kb.threadId();
    Value lane = kb.remu(tid, 32), warp = kb.divu(tid, 32);
    Value quad = kb.divu(lane, 4), inQuad = kb.remu(lane, 4);
    Value seq = kb.toIndex(kb.loadScalar(seqs, {t0}));
    Value p0 = kb.toIndex(kb.loadScalar(positions, {t0}));
    Value rows = kb.minu(kb.sub(numTokens, t0), kPrefillTile);
    Value lastPos = kb.add(p0, kb.sub(rows, kb.idx(1)));
    Value lastToken = kb.sub(numTokens, kb.idx(1));

    // Rows of 16-byte chunks into a [64, D] bf16 tile, 128 threads at a time.
    auto fillTile = [&](llvm::function_ref<void(Value row, Value col)> copy) {
      kb.loop(kb.idx(0), kb.idx(kPrefillTile * rowChunks), kb.idx(kThreads), [&](Value start) {
        Value chunk = kb.add(start, tid);
        copy(kb.divu(chunk, rowChunks), kb.mul(kb.remu(chunk, rowChunks), 8));
      });
    };

    // The tile's queries, staged through the K buffer into A fragments.
    fillTile([&](Value row, Value col) {
      Value t = kb.minu(kb.add(t0, row), lastToken);
      kb.store(kb.load(queries, {t, kb.add(kb.mul(head, D), col)}, 8), sharedK, {row, col});
    });
    kb.barrier();
    SmallVector<SmallVector<Value>> qFrag;
    Value aRow = kb.add(kb.mul(warp, 16), kb.remu(lane, 16));
    Value aCol = kb.mul(kb.divu(lane, 16), 8);
    for (int64_t ks = 0; ks < kSteps; ++ks)
      qFrag.push_back(mma::ldmatrixX4(kb, sharedK, aRow, kb.add(aCol, ks * 16)));
    kb.barrier();

    // This thread's two rows (c0/c1 and c2/c3 of each accumulator tile)
    // and their positions.
    Value rowLocal[2] = {kb.add(kb.mul(warp, 16), quad), kb.add(kb.mul(warp, 16), quad)};
    rowLocal[1] = kb.add(rowLocal[1], kb.idx(8));
    Value rowPos[2] = {kb.add(p0, rowLocal[0]), kb.add(p0, rowLocal[1])};
    // ldmatrix addresses: K as the B operand ([n][k] rows), V transposed.
    Value kRow = kb.add(kb.mul(kb.divu(lane, 16), 8), kb.remu(lane, 8));
    Value kCol = kb.mul(kb.remu(kb.divu(lane, 8), 2), 8);
    Value vRow = kb.add(kb.remu(lane, 8), kb.mul(kb.remu(kb.divu(lane, 8), 2), 8));
    Value vCol = kb.mul(kb.divu(lane, 16), 8);

    // Loop-carried: max and sum of both rows, then O (dimTiles x 4).
    SmallVector<Value> init = {kb.cf32(kNoScore), kb.cf32(kNoScore), kb.cf32(0.0), kb.cf32(0.0)};
    init.append(dimTiles * 4, kb.cf32(0.0));
    Value kvTiles = kb.divu(kb.add(lastPos, kPrefillTile), kPrefillTile);
    SmallVector<Value> state = kb.loop(
        kb.idx(0), kvTiles, kb.idx(1), init, [&](Value j, ValueRange iter) -> SmallVector<Value> {
          Value c0 = kb.mul(j, kPrefillTile);
          // Positions past the last one re-read it; the mask drops them.
          fillTile([&](Value row, Value col) {
            Value pos = kb.minu(kb.add(c0, row), lastPos);
            Value base = kb.add(slotBase(kb, s, tables, maxBlocks, seq, pos),
                                kb.add(kb.mul(kvHead, D), col));
            kb.store(kb.load(cache, {base}, 8), sharedK, {row, col});
            kb.store(kb.load(cache, {kb.add(base, s.KV * D)}, 8), sharedV, {row, col});
          });
          kb.barrier();

          // S = Q K^T: scoreTiles m16n8 tiles per warp.
          SmallVector<SmallVector<Value>> acc(scoreTiles, SmallVector<Value>(4, kb.cf32(0.0)));
          for (int64_t ks = 0; ks < kSteps; ++ks)
            for (int64_t np = 0; np < scoreTiles / 2; ++np) {
              SmallVector<Value> b = mma::ldmatrixX4(kb, sharedK, kb.add(kRow, np * 16),
                                                     kb.add(kCol, ks * 16));
              acc[2 * np] = mma::mmaBf16(kb, qFrag[ks], {b[0], b[1]}, acc[2 * np]);
              acc[2 * np + 1] = mma::mmaBf16(kb, qFrag[ks], {b[2], b[3]}, acc[2 * np + 1]);
            }

          // Scale, mask, and the online softmax of each of the two rows.
          Value negInf = kb.cf32(-std::numeric_limits<double>::infinity());
          SmallVector<Value> next(iter.begin(), iter.end());
          for (int64_t half = 0; half < 2; ++half) {
            Value rowMax = negInf;
            for (int64_t ni = 0; ni < scoreTiles; ++ni)
              for (int64_t e = 0; e < 2; ++e) {
                Value col = kb.add(c0, kb.add(kb.mul(inQuad, 2), ni * 8 + e));
                Value &score = acc[ni][2 * half + e];
                score = kb.select(kb.ult(rowPos[half], col), negInf,
                                  kb.mulf(score, kb.cf32(scale)));
                rowMax = kb.maxf(rowMax, score);
              }
            rowMax = kb.maxf(rowMax, kb.shuffleXor(rowMax, 1));
            rowMax = kb.maxf(rowMax, kb.shuffleXor(rowMax, 2));
            Value m = iter[half], mNew = kb.maxf(m, rowMax);
            Value correction = kb.exp(kb.subf(m, mNew));
            Value sum = kb.mulf(iter[2 + half], correction);
            for (int64_t ni = 0; ni < scoreTiles; ++ni)
              for (int64_t e = 0; e < 2; ++e) {
                Value &p = acc[ni][2 * half + e];
                p = kb.exp(kb.subf(p, mNew));
                sum = kb.addf(sum, p);
              }
            next[half] = mNew;
            next[2 + half] = sum;
            for (int64_t dn = 0; dn < dimTiles; ++dn)
              for (int64_t e = 0; e < 2; ++e) {
                Value &o = next[4 + dn * 4 + 2 * half + e];
                o = kb.mulf(o, correction);
              }
          }

          // O += P V, 16 positions per k-step.
          for (int64_t kk = 0; kk < kPrefillTile / 16; ++kk) {
            SmallVector<Value> a = {packBf16(kb, acc[2 * kk][0], acc[2 * kk][1]),
                                    packBf16(kb, acc[2 * kk][2], acc[2 * kk][3]),
                                    packBf16(kb, acc[2 * kk + 1][0], acc[2 * kk + 1][1]),
                                    packBf16(kb, acc[2 * kk + 1][2], acc[2 * kk + 1][3])};
            for (int64_t dp = 0; dp < dimTiles / 2; ++dp) {
              SmallVector<Value> b = mma::ldmatrixX4(kb, sharedV, kb.add(vRow, kk * 16),
                                                     kb.add(vCol, dp * 16), /*transpose=*/true);
              for (int64_t i = 0; i < 2; ++i) {
                const int64_t base = 4 + (2 * dp + i) * 4;
                SmallVector<Value> c(next.begin() + base, next.begin() + base + 4);
                SmallVector<Value> d = mma::mmaBf16(kb, a, {b[2 * i], b[2 * i + 1]}, c);
                std::copy(d.begin(), d.end(), next.begin() + base);
              }
            }
          }
          kb.barrier();
          return next;
        });

    // Each row's sum over its quad, then O / sum to the rows in the step.
    for (int64_t half = 0; half < 2; ++half) {
      Value sum = state[2 + half];
      sum = kb.addf(sum, kb.shuffleXor(sum, 1));
      sum = kb.addf(sum, kb.shuffleXor(sum, 2));
      Value t = kb.add(t0, rowLocal[half]);
      kb.ifThen(kb.ult(t, numTokens), [&] {
        for (int64_t dn = 0; dn < dimTiles; ++dn) {
          SmallVector<Value> pair;
          for (int64_t e = 0; e < 2; ++e)
            pair.push_back(kb.divf(state[4 + dn * 4 + 2 * half + e], sum));
          Value col = kb.add(kb.mul(head, D), kb.add(kb.mul(inQuad, 2), dn * 8));
          kb.store(vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), pair), result,
                   {t, col});
        }
      });
    }
  });
}

} // namespace m2c::ptx::attention
