//===- GemmWgmma.cpp - wgmma + TMA tiles (sm_90a), and the prefill GEMM ---===//
//
// The tile machinery of Wgmma.h, and y[T, N] = x[T, K] W[N, K]^T for
// prefill chunks with bf16 weights on it (`--target sm_90a` only): blocks
// of 2 warpgroups over 128 tokens x tile_n features.
//
// Stage reuse: the B stage refilled at k-tile kt held k-tile kt - 2, whose
// wgmma group every warpgroup has retired (wait_group 1 at the end of kt - 1,
// then the block barrier). Every thread stores A rows that any warpgroup may
// read; the A stage stored at kt held k-tile kt - stages, and the barrier of
// kt - 1 has every warpgroup past wgmma kt - 3: hence at least 3 stages.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"
#include "codegen/ptx/Wgmma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace m2c::ptx {
namespace wgmma {
namespace {

constexpr int64_t kRowBytes = 128; // one k-tile row in shared memory
constexpr int64_t kSwizzleAtom = 8 * kRowBytes;

/// LLVM-level shared-memory addressing: one aligned dynamic block, byte
/// offsets into it, and the 32-bit shared addresses wgmma descriptors hold.
class SharedBlock {
public:
  SharedBlock(KernelBuilder &kb, StringRef symbol) : b_(kb.b) {
    auto ptr3 = LLVM::LLVMPointerType::get(b_.getContext(), 3);
    {
      OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPointToStart(kb.module().getBody());
      auto type = LLVM::LLVMArrayType::get(b_.getI8Type(), 0);
      LLVM::GlobalOp::create(b_, type, /*isConstant=*/false, LLVM::Linkage::External, symbol,
                             Attribute(), /*alignment=*/kSwizzleAtom, /*addrSpace=*/3);
    }
    base_ = LLVM::AddressOfOp::create(b_, ptr3, symbol);
    // The swizzle is a function of address bits 4-9: tiles start on 1024
    // bytes whatever alignment the driver gives the dynamic block.
    Value address = LLVM::PtrToIntOp::create(b_, b_.getI32Type(), base_);
    Value aligned = arith::AndIOp::create(b_, add(address, i32(kSwizzleAtom - 1)),
                                          i32(~(kSwizzleAtom - 1)));
    pad_ = arith::SubIOp::create(b_, aligned, address);
    address_ = aligned;
  }

  Value i32(int64_t value) { return arith::ConstantIntOp::create(b_, value, 32); }
  Value add(Value a, Value c) { return b_.createOrFold<arith::AddIOp>(a, c); }
  /// Shared address (i32) of `offset` (i32) bytes into the aligned block.
  Value address(Value offset) { return add(address_, offset); }
  /// A pointer to it.
  Value pointer(Value offset) {
    auto ptr3 = LLVM::LLVMPointerType::get(b_.getContext(), 3);
    return LLVM::GEPOp::create(b_, ptr3, b_.getI8Type(), base_, ValueRange{add(pad_, offset)});
  }

private:
  ImplicitLocOpBuilder &b_;
  Value base_, pad_, address_;
};

/// A wgmma shared-memory matrix descriptor for a K-major tile in the
/// 128-byte swizzle: start address >> 4 (bits 0-13), leading byte offset 1
/// (unused by this layout), stride byte offset 1024 >> 4 between 8-row
/// groups (bits 32-45), swizzle mode 1 = 128 bytes (bits 62-63).
Value matrixDescriptor(ImplicitLocOpBuilder &b, Value sharedAddress) {
  Value addr = arith::ExtUIOp::create(b, b.getI64Type(), sharedAddress);
  Value field = arith::ShRUIOp::create(
      b, arith::AndIOp::create(b, addr, arith::ConstantIntOp::create(b, 0x3FFFF, 64)),
      arith::ConstantIntOp::create(b, 4, 64));
  const int64_t fixed =
      (int64_t(1) << 16) | (int64_t(kSwizzleAtom >> 4) << 32) | (int64_t(1) << 62);
  return arith::OrIOp::create(b, field, arith::ConstantIntOp::create(b, fixed, 64));
}

int64_t aStageBytes(const Tile &tile) { return tile.blockM() * kRowBytes; }
int64_t bStageBytes(const Tile &tile) { return tile.blockN() * kRowBytes; }
int64_t stageBytes(const Tile &tile) { return aStageBytes(tile) + tile.numB * bStageBytes(tile); }

} // namespace

int64_t Tile::sharedBytes() const { return stages * (stageBytes(*this) + 8) + kSwizzleAtom; }

LogicalResult checkTile(KernelBuilder &kb, StringRef kernel, const Tile &tile) {
  // wgmma's n: a multiple of 8 up to 256; a TMA box side is at most 256.
  if (tile.warpgroupN % 8 || tile.warpgroupN < 8 || tile.warpgroupN > 256 ||
      tile.blockN() > 256 || tile.stages < 3 || tile.stages > 8 ||
      (tile.blockM() * 8) % tile.threads())
    return unsupported(kb, kernel + ": no wgmma tile of " + llvm::Twine(tile.blockM()) + " x " +
                               llvm::Twine(tile.blockN()) + " columns in " +
                               llvm::Twine(tile.stages) + " stages");
  if (tile.sharedBytes() > kMaxShared)
    return unsupported(kb, kernel + ": " + llvm::Twine(tile.stages) + " stages of " +
                               llvm::Twine(tile.blockM()) + " x " + llvm::Twine(tile.blockN()) +
                               " need " + llvm::Twine(tile.sharedBytes()) +
                               " bytes of shared memory, more than " + llvm::Twine(kMaxShared));
  return success();
}

SmallVector<SmallVector<Value>> emitMainLoop(KernelBuilder &kb, const Tile &tile, int64_t K,
                                             const Operands &ops, StringRef symbol) {
  ImplicitLocOpBuilder &b = kb.b;
  SharedBlock shared(kb, symbol);
  const int64_t stages = tile.stages, kTiles = K / kBlockK, threads = tile.threads();
  const int64_t barriers = stages * stageBytes(tile);
  Value tid = kb.threadId();
  Value warpgroup = kb.divu(tid, 128);
  Value wgM = kb.divu(warpgroup, tile.warpgroupsN), wgN = kb.remu(warpgroup, tile.warpgroupsN);
  Value isLeader = kb.eq(tid, kb.idx(0));

  auto stageOffset = [&](Value stage, int64_t base, int64_t bytes) {
    return shared.add(shared.i32(base), kb.toI32(kb.mul(stage, bytes)));
  };
  auto barrierAt = [&](Value stage) { return shared.pointer(stageOffset(stage, barriers, 8)); };
  // Stage s: A [blockM rows], then each B [blockN rows], 128 bytes a row.
  auto aTile = [&](Value stage) { return stageOffset(stage, 0, stageBytes(tile)); };
  auto bTile = [&](Value stage, int64_t operand) {
    return shared.add(aTile(stage), shared.i32(aStageBytes(tile) + operand * bStageBytes(tile)));
  };

  // One arrival (the leader's expect_tx) and the TMA bytes complete a phase.
  kb.ifThen(isLeader, [&] {
    for (int64_t s = 0; s < stages; ++s)
      NVVM::MBarrierInitOp::create(b, barrierAt(kb.idx(s)), shared.i32(1), Value());
    NVVM::FenceMbarrierInitOp::create(b);
  });
  kb.barrier();
  auto issueB = [&](Value kt) {
    Value stage = kb.remu(kt, stages);
    Value bar = barrierAt(stage);
    NVVM::MBarrierArriveExpectTxOp::create(b, Type(), bar,
                                           shared.i32(tile.numB * bStageBytes(tile)),
                                           NVVM::MemScopeKind::CTA, false, Value());
    for (int64_t i = 0; i < tile.numB; ++i) {
      SmallVector<Value> coords = {kb.toI32(kb.mul(kt, kBlockK)), ops.mapRows[i]};
      // The copy names its destination in the cluster's shared window (this
      // CTA's own, in a launch without clusters).
      Value dst = LLVM::AddrSpaceCastOp::create(b, LLVM::LLVMPointerType::get(b.getContext(), 7),
                                                shared.pointer(bTile(stage, i)));
      NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
          b, dst, ops.maps[i], coords, bar, ValueRange{}, Value(), Value(),
          NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, NVVM::CTAGroupKindAttr(), Value());
    }
  };
  kb.ifThen(isLeader, [&] {
    for (int64_t kt = 0; kt < std::min(stages - 2, kTiles); ++kt)
      issueB(kb.idx(kt));
  });

  // A: chunk c = i * threads + tid is row c / 8 of the tile, columns
  // (c % 8) * 8; 16-byte chunk j of row r sits at j ^ (r % 8) of its 128
  // bytes, so the 8 threads of a row cover distinct bank groups.
  const int64_t perThread = tile.blockM() * 8 / threads;
  SmallVector<SmallVector<Value>> rowIndices;
  SmallVector<Value> chunkCols, swizzled;
  for (int64_t i = 0; i < perThread; ++i) {
    Value c = kb.add(tid, i * threads);
    Value row = kb.divu(c, 8), chunk = kb.remu(c, 8);
    rowIndices.push_back(ops.aRow(row));
    chunkCols.push_back(kb.mul(chunk, 8));
    Value physical = arith::XOrIOp::create(b, chunk, kb.remu(row, 8));
    swizzled.push_back(kb.toI32(kb.add(kb.mul(row, kRowBytes), kb.mul(physical, 16))));
  }
  const int64_t loadsPerChunk = ops.aElementBytes == 4 ? 2 : 1, width = 8 / loadsPerChunk;
  auto loadA = [&](Value kt) {
    SmallVector<Value> values;
    for (int64_t i = 0; i < perThread; ++i)
      for (int64_t l = 0; l < loadsPerChunk; ++l) {
        SmallVector<Value> at = rowIndices[i];
        at.push_back(kb.add(kb.mul(kt, kBlockK), kb.add(chunkCols[i], l * width)));
        values.push_back(kb.load(ops.a, at, width));
      }
    return values;
  };
  auto storeA = [&](ValueRange values, Value stage) {
    Value tileStart = aTile(stage);
    for (int64_t i = 0; i < perThread; ++i) {
      Value chunk = values[i * loadsPerChunk];
      if (loadsPerChunk == 2)
        chunk = vector::ShuffleOp::create(b, values[2 * i], values[2 * i + 1],
                                          ArrayRef<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
      if (!cast<VectorType>(chunk.getType()).getElementType().isBF16())
        chunk = kb.fromF32(kb.toF32(chunk), b.getBF16Type());
      LLVM::StoreOp::create(b, chunk, shared.pointer(shared.add(tileStart, swizzled[i])), 16);
    }
  };

  auto accType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(tile.accumulators(), kb.f32()));
  Value zeroAcc = LLVM::PoisonOp::create(b, accType);
  Value zero = kb.cf32(0.0);
  for (int64_t i = 0; i < tile.accumulators(); ++i)
    zeroAcc = LLVM::InsertValueOp::create(b, zeroAcc, zero, ArrayRef<int64_t>{i});
  auto shape = NVVM::MMAShapeAttr::get(b.getContext(), 64, tile.warpgroupN, 16);
  Value aRows = kb.toI32(kb.mul(wgM, kWarpgroupRows * kRowBytes));
  Value bRows = kb.toI32(kb.mul(wgN, tile.warpgroupN * kRowBytes));

  SmallVector<Value> init(tile.numB, zeroAcc);
  init.append(loadA(kb.idx(0)));
  SmallVector<Value> results = kb.loop(
      kb.idx(0), kb.idx(kTiles), kb.idx(1), init,
      [&](Value kt, ValueRange iter) -> SmallVector<Value> {
        Value stage = kb.remu(kt, stages);
        storeA(iter.drop_front(tile.numB), stage);
        // Generic-proxy stores, read next by the tensor cores (async proxy).
        NVVM::FenceProxyOp::create(
            b, NVVM::ProxyKind::async_shared,
            NVVM::SharedSpaceAttr::get(b.getContext(), NVVM::SharedSpace::shared_cta));
        SmallVector<Value> next = loadA(kb.minu(kb.add(kt, 1), kTiles - 1));
        kb.barrier();
        Value ahead = kb.add(kt, stages - 2);
        kb.ifThen(kb.andi(isLeader, kb.ult(ahead, kTiles)), [&] { issueB(ahead); });
        Value parity = kb.toI32(kb.remu(kb.divu(kt, stages), 2));
        NVVM::MBarrierTryWaitParityOp::create(b, barrierAt(stage), parity,
                                              shared.i32(0x989680));
        NVVM::WgmmaFenceAlignedOp::create(b);
        Value a = shared.add(aTile(stage), aRows);
        SmallVector<Value> sums(iter.take_front(tile.numB));
        for (int64_t ks = 0; ks < kBlockK / 16; ++ks) {
          Value descA = matrixDescriptor(b, shared.address(shared.add(a, shared.i32(ks * 32))));
          for (int64_t i = 0; i < tile.numB; ++i) {
            Value w = shared.add(bTile(stage, i), bRows);
            Value descB =
                matrixDescriptor(b, shared.address(shared.add(w, shared.i32(ks * 32))));
            sums[i] = NVVM::WgmmaMmaAsyncOp::create(
                b, accType, sums[i], descA, descB, shape, NVVM::WGMMATypes::bf16,
                NVVM::WGMMATypes::bf16, NVVM::WGMMATypes::f32, NVVM::WGMMAScaleOut::one,
                NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, NVVM::MMALayout::row,
                NVVM::MMALayout::col, NVVM::MMAIntOverflowAttr());
          }
        }
        NVVM::WgmmaGroupSyncAlignedOp::create(b);
        NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
        SmallVector<Value> yielded = sums;
        yielded.append(next);
        return yielded;
      });
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
  SmallVector<SmallVector<Value>> out;
  for (int64_t i = 0; i < tile.numB; ++i) {
    out.emplace_back();
    for (int64_t j = 0; j < tile.accumulators(); ++j)
      out.back().push_back(LLVM::ExtractValueOp::create(b, results[i], ArrayRef<int64_t>{j}));
  }
  return out;
}

void forEachPair(KernelBuilder &kb, const Tile &tile,
                 llvm::function_ref<void(Value, Value, int64_t)> fn) {
  // Accumulator i: row 16 * warp + lane / 4 (+ 8 for i % 4 >= 2) of the
  // warpgroup's 64, column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
  Value tid = kb.threadId();
  Value warpgroup = kb.divu(tid, 128), t = kb.remu(tid, 128);
  Value lane = kb.remu(t, 32), warp = kb.divu(t, 32);
  Value rowBase = kb.add(kb.mul(kb.divu(warpgroup, tile.warpgroupsN), kWarpgroupRows),
                         kb.add(kb.mul(warp, 16), kb.divu(lane, 4)));
  Value colBase = kb.add(kb.mul(kb.remu(warpgroup, tile.warpgroupsN), tile.warpgroupN),
                         kb.mul(kb.remu(lane, 4), 2));
  for (int64_t i = 0; i < tile.accumulators(); i += 2)
    fn(kb.add(rowBase, (i % 4) / 2 * 8), kb.add(colBase, (i / 4) * 8), i);
}

bool weightSupported(const TensorInfo &w) {
  return w.kind == plan::Operand::Kind::Weight && w.type == plan::ElementType::BF16 &&
         w.quantization == plan::Quantization::None && w.shape.back() % kBlockK == 0;
}

FuncParam tensorMapParam(KernelBuilder &kb, int64_t input, int64_t boxRows) {
  plan::GpuParam map{plan::GpuParam::Kind::TensorMap, input};
  map.box = {boxRows, kBlockK};
  return {LLVM::LLVMPointerType::get(kb.b.getContext()), map};
}

} // namespace wgmma

bool wgmmaGemmSupports(const KernelSpec &spec) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1];
  bool evenOutputs = llvm::all_of(spec.outputs, [&](const TensorInfo &t) {
    return t.shape[1] % 2 == 0 && t.type == plan::ElementType::F32;
  });
  return x.tokenRows && x.type == plan::ElementType::F32 && w.shape.size() == 2 &&
         wgmma::weightSupported(w) && evenOutputs;
}

LogicalResult buildWgmmaGemm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1];
  const int64_t N = w.shape[0], K = w.shape[1];
  if (!wgmmaGemmSupports(spec))
    return unsupported(kb, "the wgmma GEMM needs f32 activations, an unpacked bf16 weight and K (" +
                               llvm::Twine(K) + ") a multiple of 64");
  const tiling::WgmmaGemmTile defaults = tiling::wgmmaGemmTile(N);
  const tiling::WgmmaGemmTile chosen = spec.tile(defaults);
  wgmma::Tile tile;
  tile.warpgroupN = chosen.tileN;
  tile.stages = chosen.stages;
  // The typed tile's fixed values are this kernel's shape (2 warpgroups of
  // 64 rows, k-tiles of one swizzle row).
  assert(defaults.tileM == tile.blockM() && defaults.tileK == wgmma::kBlockK &&
         defaults.threads == tile.threads());
  if (failed(checkTile(kb, "gemm", chosen, defaults)) || failed(wgmma::checkTile(kb, "gemm", tile)))
    return failure();

  LinearOutputs ys(spec.outputs);
  out.name = "m2c_gemm_wgmma_bf16_n" + std::to_string(N) + "_k" + std::to_string(K) +
             ys.nameSuffix();
  SmallVector<FuncParam> params = {inputParam(kb, x, 0),
                                   wgmma::tensorMapParam(kb, 1, tile.blockN())};
  ys.appendParams(kb, params);
  params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(
      out.name, params, {tile.threads(), 1, 1},
      {plan::GpuExtent::tokens(1, tile.blockM()), plan::GpuExtent::fixed(ceilDiv(N, tile.blockN())),
       plan::GpuExtent::fixed(1)},
      out);
  out.launches.back().sharedBytes = tile.sharedBytes();
  Value xs = args[0];
  ys.bind(ValueRange(args).slice(2, ys.numParams()));
  Value numTokens = kb.toIndex(args.back());
  Value m0 = kb.mul(kb.blockId(gpu::Dimension::x), tile.blockM());
  Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), tile.blockN());
  Value lastToken = kb.sub(numTokens, kb.idx(1));

  // Rows past the end re-read the last row; their results are dropped.
  wgmma::Operands ops;
  ops.a = xs;
  ops.aElementBytes = 4;
  auto xRow = [&](Value r) -> SmallVector<Value> { return {kb.minu(kb.add(m0, r), lastToken)}; };
  ops.aRow = xRow;
  ops.maps = {args[1]};
  ops.mapRows = {kb.toI32(n0)};
  SmallVector<SmallVector<Value>> acc =
      wgmma::emitMainLoop(kb, tile, K, ops, out.name + "_shared");

  const bool raggedN = N % tile.blockN() != 0;
  wgmma::forEachPair(kb, tile, [&](Value row, Value col, int64_t i) {
    Value r = kb.add(m0, row), c = kb.add(n0, col);
    Value inBounds = kb.ult(r, numTokens);
    if (raggedN)
      inBounds = kb.andi(inBounds, kb.ult(c, N));
    kb.ifThen(inBounds, [&] {
      SmallVector<Value> pair = {acc[0][i], acc[0][i + 1]};
      ys.store(kb, vector::FromElementsOp::create(kb.b, kb.vec(2, kb.f32()), pair), r, c);
    });
  });
  return success();
}

} // namespace m2c::ptx
