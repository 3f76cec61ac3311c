//===- Gemm.cpp - Prefill linear layers on tensor cores (mma.sync) --------===//
//
// y[T, N] = x[T, K] W[N, K]^T for prefill chunks, on the sm_80+ warp-level
// tensor-core instruction mma.sync.m16n8k16 (bf16 in, f32 accumulate).
//
//   block tile 64 (tokens) x 128 (features) x 64 (k; 32 for f32 weights,
//   whose prefetch registers would not fit), 4 warps as 2 x 2, each
//   warp 32 x 64 = 2 x 8 m16n8 tiles (64 f32 accumulators per thread);
//   global -> registers (16-byte loads, converted to bf16) -> shared memory
//   (rows padded by 8 bf16 so ldmatrix is bank-conflict free) -> ldmatrix.x4
//   fragments -> mma.sync. The next k-tile's global loads are issued before
//   the current tile's math (register double buffering).
//
// Activations are fp32 in the plan: they are rounded to bf16 as they enter
// shared memory, and f32 weights (dequantized FP8) likewise; packed weights
// (WeightOperand) dequantize into the tile, int8 as exact codes whose row
// scale the epilogue applies. Accumulation is fp32. Blocks are ordered token-tile fastest so the blocks that share a
// weight tile run together and the weight streams from HBM once.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"
#include "codegen/ptx/Mma.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace m2c::ptx {
namespace mma {

int64_t chooseBlockK(int64_t K, int64_t weightBytes) {
  // The cost model's tile_k (64 with f32 weights would need ~254 registers
  // per thread), for the grouped experts' GEMMs too.
  return tiling::gemmTile(K, weightBytes).tileK;
}

TileCopy::TileCopy(KernelBuilder &kb, const Tile &tile, int64_t rows, int64_t elementBytes,
                   Value tid, RowAddress address)
    : kb_(kb) {
  width_ = 16 / elementBytes;
  init(tile, rows, tid, address);
}

TileCopy::TileCopy(KernelBuilder &kb, const Tile &tile, int64_t rows, const WeightOperand &weight,
                   Value tid, RowAddress address)
    : kb_(kb), weight_(&weight) {
  width_ = weight.chunkElements();
  init(tile, rows, tid, address);
}

void TileCopy::init(const Tile &tile, int64_t rows, Value tid, RowAddress address) {
  KernelBuilder &kb = kb_;
  const int64_t chunksPerRow = tile.blockK / width_, chunks = rows * chunksPerRow;
  perThread_ = ceilDiv(chunks, kThreads);
  ragged_ = chunks % kThreads != 0;
  for (int64_t i = 0; i < perThread_; ++i) {
    Value id = kb.add(tid, i * kThreads);
    // Threads past the last chunk re-read it and store nothing.
    if (ragged_) {
      active_.push_back(kb.ult(id, chunks));
      id = kb.minu(id, chunks - 1);
    }
    Value row = kb.divu(id, chunksPerRow);
    tileRows_.push_back(row);
    cols_.push_back(kb.mul(kb.remu(id, chunksPerRow), width_));
    addresses_.push_back(address(row));
  }
}

SmallVector<Value> TileCopy::load(Value matrix, Value k0) const {
  SmallVector<Value> values;
  for (int64_t i = 0; i < perThread_; ++i) {
    Value k = kb_.add(k0, cols_[i]);
    if (!weight_) {
      SmallVector<Value> indices(addresses_[i]);
      indices.push_back(k);
      values.push_back(kb_.load(matrix, indices, width_));
      continue;
    }
    const SmallVector<Value> &at = addresses_[i];
    WeightOperand::Chunk chunk =
        weight_->loadChunk(kb_, at.size() == 2 ? at[0] : Value(), at.back(), k, withScales());
    values.push_back(chunk.data);
    if (withScales())
      values.push_back(chunk.scale);
  }
  return values;
}

void TileCopy::store(ValueRange values, Value shared) const {
  const int64_t step = carried() / perThread_;
  for (int64_t i = 0; i < perThread_; ++i) {
    auto write = [&] {
      Value v = values[i * step];
      if (weight_ && weight_->packed())
        v = weight_->dequantize(kb_, {v, withScales() ? values[i * step + 1] : Value()});
      if (!cast<VectorType>(v.getType()).getElementType().isBF16())
        v = kb_.fromF32(kb_.toF32(v), kb_.b.getBF16Type());
      kb_.store(v, shared, {tileRows_[i], cols_[i]});
    };
    if (ragged_)
      kb_.ifThen(active_[i], write);
    else
      write();
  }
}

SmallVector<Value> ldmatrixX4(KernelBuilder &kb, Value shared, Value row, Value col,
                              bool transpose) {
  auto type = VectorType::get({4, 2}, kb.b.getBF16Type());
  Value tiles = nvgpu::LdMatrixOp::create(kb.b, type, shared, ValueRange{row, col}, transpose,
                                          /*numTiles=*/4);
  SmallVector<Value> regs;
  for (int64_t i = 0; i < 4; ++i) {
    // 1-D pieces only: the LLVM lowering has no n-D vector.bitcast.
    Value pair = vector::ExtractOp::create(kb.b, tiles, ArrayRef<int64_t>{i});
    Value bits = vector::BitCastOp::create(kb.b, kb.vec(1, kb.i32()), pair);
    regs.push_back(kb.extract(bits, 0));
  }
  return regs;
}

SmallVector<Value> mmaBf16(KernelBuilder &kb, ArrayRef<Value> a, ArrayRef<Value> b,
                           ArrayRef<Value> c) {
  auto resultType =
      LLVM::LLVMStructType::getLiteral(kb.b.getContext(), SmallVector<Type>(4, kb.f32()));
  Value d = NVVM::MmaOp::create(
      kb.b, resultType, a, b, c, ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
  SmallVector<Value> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(LLVM::ExtractValueOp::create(kb.b, d, ArrayRef<int64_t>{i}));
  return out;
}

SmallVector<SmallVector<Value>> emitMainLoop(KernelBuilder &kb, const Tile &tile, int64_t K,
                                             const Operand &a, ArrayRef<Operand> bs) {
  const int64_t kTiles = K / tile.blockK, tilesN = tile.tilesN(), numAcc = tile.accumulators();
  const int64_t warpN = tile.blockN / kWarpsN;
  Value tid = kb.threadId();
  Value lane = kb.remu(tid, 32), warp = kb.divu(tid, 32);
  Value warpRow = kb.mul(kb.divu(warp, kWarpsN), kWarpM);
  Value warpCol = kb.mul(kb.remu(warp, kWarpsN), warpN);
  // ldmatrix.x4 addresses. A (16x16 of [m][k]): lanes 0-15 rows 0-15 at k
  // 0, lanes 16-31 the same rows at k 8 -> a0..a3 of m16n8k16. B (two n8
  // tiles of [n][k]): lane l row (l/16)*8 + l%8, k ((l/8)%2)*8 -> b0,b1 of
  // n-tile 0 then of n-tile 1.
  Value aRow = kb.add(warpRow, kb.remu(lane, 16));
  Value aCol = kb.mul(kb.divu(lane, 16), 8);
  Value bRow = kb.add(warpCol, kb.add(kb.mul(kb.divu(lane, 16), 8), kb.remu(lane, 8)));
  Value bCol = kb.mul(kb.remu(kb.divu(lane, 8), 2), 8);

  // Loop-carried: the accumulators of each B, then the prefetched chunks.
  SmallVector<Value> init(numAcc * bs.size(), kb.cf32(0.0));
  init.append(a.copy->load(a.matrix, kb.idx(0)));
  for (const Operand &b : bs)
    init.append(b.copy->load(b.matrix, kb.idx(0)));
  SmallVector<Value> results = kb.loop(
      kb.idx(0), kb.idx(kTiles), kb.idx(1), init,
      [&](Value kt, ValueRange iter) -> SmallVector<Value> {
        SmallVector<Value> acc(iter.begin(), iter.begin() + numAcc * bs.size());
        size_t at = numAcc * bs.size();
        a.copy->store(iter.slice(at, a.copy->carried()), a.shared);
        at += a.copy->carried();
        for (const Operand &b : bs) {
          b.copy->store(iter.slice(at, b.copy->carried()), b.shared);
          at += b.copy->carried();
        }
        kb.barrier();
        // Prefetch the next k-tile (the last iteration re-reads its own).
        Value nextK = kb.mul(kb.minu(kb.add(kt, 1), kTiles - 1), tile.blockK);
        SmallVector<Value> next;
        SmallVector<Value> nextLoads = a.copy->load(a.matrix, nextK);
        for (const Operand &b : bs)
          nextLoads.append(b.copy->load(b.matrix, nextK));

        for (int64_t ks = 0; ks < tile.blockK / 16; ++ks) {
          SmallVector<SmallVector<Value>> aFrag;
          for (int64_t mi = 0; mi < kTilesM; ++mi)
            aFrag.push_back(
                ldmatrixX4(kb, a.shared, kb.add(aRow, mi * 16), kb.add(aCol, ks * 16)));
          for (size_t bi = 0; bi < bs.size(); ++bi) {
            SmallVector<SmallVector<Value>> bFrag(tilesN);
            for (int64_t np = 0; np < tilesN / 2; ++np) {
              SmallVector<Value> regs =
                  ldmatrixX4(kb, bs[bi].shared, kb.add(bRow, np * 16), kb.add(bCol, ks * 16));
              bFrag[2 * np] = {regs[0], regs[1]};
              bFrag[2 * np + 1] = {regs[2], regs[3]};
            }
            for (int64_t mi = 0; mi < kTilesM; ++mi)
              for (int64_t ni = 0; ni < tilesN; ++ni) {
                size_t base = bi * numAcc + (mi * tilesN + ni) * 4;
                SmallVector<Value> c(acc.begin() + base, acc.begin() + base + 4);
                SmallVector<Value> d = mmaBf16(kb, aFrag[mi], bFrag[ni], c);
                std::copy(d.begin(), d.end(), acc.begin() + base);
              }
          }
        }
        kb.barrier();
        next.append(acc);
        next.append(nextLoads);
        return next;
      });

  SmallVector<SmallVector<Value>> out;
  for (size_t bi = 0; bi < bs.size(); ++bi)
    out.emplace_back(results.begin() + bi * numAcc, results.begin() + (bi + 1) * numAcc);
  return out;
}

void forEachPair(KernelBuilder &kb, const Tile &tile,
                 llvm::function_ref<void(Value, Value, int64_t)> fn) {
  // c0,c1: row lane/4, columns 2*(lane%4) + {0,1}; c2,c3: 8 rows down.
  const int64_t warpN = tile.blockN / kWarpsN, tilesN = tile.tilesN();
  Value tid = kb.threadId();
  Value lane = kb.remu(tid, 32), warp = kb.divu(tid, 32);
  Value warpRow = kb.mul(kb.divu(warp, kWarpsN), kWarpM);
  Value warpCol = kb.mul(kb.remu(warp, kWarpsN), warpN);
  Value group = kb.divu(lane, 4), pairCol = kb.mul(kb.remu(lane, 4), 2);
  for (int64_t mi = 0; mi < kTilesM; ++mi)
    for (int64_t ni = 0; ni < tilesN; ++ni)
      for (int64_t half = 0; half < 2; ++half) {
        Value row = kb.add(warpRow, kb.add(group, mi * 16 + half * 8));
        Value col = kb.add(warpCol, kb.add(pairCol, ni * 8));
        fn(row, col, (mi * tilesN + ni) * 4 + 2 * half);
      }
}

} // namespace mma

namespace {

bool convertible(plan::ElementType type) {
  return type == plan::ElementType::F32 || type == plan::ElementType::BF16 ||
         type == plan::ElementType::F16;
}

} // namespace

bool mmaGemmSupports(const KernelSpec &spec) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1], &y = spec.outputs[0];
  // The epilogue stores column pairs: every output range must hold whole pairs.
  bool evenOutputs = llvm::all_of(spec.outputs, [&](const TensorInfo &t) {
    return t.shape[1] % 2 == 0 && t.type == plan::ElementType::F32;
  });
  return x.tokenRows && w.shape.size() == 2 && w.shape[1] % mma::kMinBlockK == 0 &&
         w.shape[0] % 8 == 0 && convertible(x.type) && convertible(w.type) &&
         WeightOperand(w).unsupportedReason().empty() && y.type == plan::ElementType::F32 &&
         evenOutputs;
}

LogicalResult buildMmaGemm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  using namespace mma;
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1];
  const int64_t N = w.shape[0], K = w.shape[1];
  if (!mmaGemmSupports(spec))
    return unsupported(kb, "the mma.sync GEMM needs K (" + llvm::Twine(K) +
                               ") a multiple of 32 and N (" + llvm::Twine(N) +
                               ") a multiple of 8");
  WeightOperand weight(w);
  const tiling::GemmTile defaults = tiling::gemmTile(K, weight.loadBytes());
  const tiling::GemmTile chosen = spec.tile(defaults);
  if (failed(checkTile(kb, "gemm", chosen, defaults)))
    return failure();
  Tile tile{chosen.tileN, chosen.tileK};
  if (K % tile.blockK)
    return unsupported(kb, "gemm: tile_k (" + llvm::Twine(tile.blockK) + ") must divide K (" +
                               llvm::Twine(K) + ")");
  const int64_t tilesN = ceilDiv(N, tile.blockN);
  LinearOutputs ys(spec.outputs);
  out.name = "m2c_gemm_mma_" + weight.typeName() + "_n" + std::to_string(N) + "_k" +
             std::to_string(K);
  if (x.type != plan::ElementType::F32)
    out.name += std::string("_x") + shortTypeName(x.type);
  out.name += ys.nameSuffix();

  SmallVector<FuncParam> params = {inputParam(kb, x, 0)};
  weight.appendParams(kb, params, 1);
  ys.appendParams(kb, params);
  params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(
      out.name, params, {kThreads, 1, 1},
      {plan::GpuExtent::tokens(1, kBlockM), plan::GpuExtent::fixed(tilesN), plan::GpuExtent::fixed(1)},
      out);
  Value xs = args[0];
  weight.bind(ValueRange(args).slice(1, weight.numParams()));
  ys.bind(ValueRange(args).slice(1 + weight.numParams(), ys.numParams()));
  Value numTokens = kb.toIndex(args.back());
  Type bf16 = kb.b.getBF16Type();
  Value sharedA = kb.shared(out.name + "_a", {kBlockM, tile.sharedK()}, bf16);
  Value sharedB = kb.shared(out.name + "_b", {tile.blockN, tile.sharedK()}, bf16);
  Value tid = kb.threadId();
  Value m0 = kb.mul(kb.blockId(gpu::Dimension::x), kBlockM);
  Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), tile.blockN);
  Value lastToken = kb.sub(numTokens, kb.idx(1));

  // Rows past the end re-read the last row; their results are dropped.
  TileCopy copyA(kb, tile, kBlockM, byteSize(x.type), tid, [&](Value r) -> SmallVector<Value> {
    return {kb.minu(kb.add(m0, r), lastToken)};
  });
  TileCopy copyB(kb, tile, tile.blockN, weight, tid, [&](Value r) -> SmallVector<Value> {
    Value row = kb.add(n0, r);
    return {N % tile.blockN ? kb.minu(row, N - 1) : row};
  });
  SmallVector<SmallVector<Value>> acc =
      emitMainLoop(kb, tile, K, {xs, &copyA, sharedA}, {{Value(), &copyB, sharedB}});

  const bool raggedN = N % tile.blockN != 0;
  forEachPair(kb, tile, [&](Value row, Value col, int64_t index) {
    Value r = kb.add(m0, row), c = kb.add(n0, col);
    Value inBounds = kb.ult(r, numTokens);
    if (raggedN)
      inBounds = kb.andi(inBounds, kb.ult(c, N));
    kb.ifThen(inBounds, [&] {
      SmallVector<Value> values = {acc[0][index], acc[0][index + 1]};
      // Output columns are weight rows: int8 tiles held exact codes.
      if (weight.scalesInEpilogue())
        for (int64_t i = 0; i < 2; ++i)
          values[i] = kb.mulf(values[i], weight.rowScale(kb, Value(), kb.add(c, i)));
      ys.store(kb, vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), values), r, c);
    });
  });
  return success();
}

/// The linear variant resolveSpec chose: the decode GEMV, the mma.sync
/// GEMM or, on sm_90a, the wgmma GEMM.
LogicalResult buildLinear(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  switch (spec.linear) {
  case LinearVariant::Wgmma:
    return buildWgmmaGemm(kb, spec, out);
  case LinearVariant::Mma:
    return buildMmaGemm(kb, spec, out);
  case LinearVariant::Gemv:
    break;
  }
  return buildGemv(kb, spec, out);
}

} // namespace m2c::ptx
