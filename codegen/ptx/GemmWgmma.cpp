//===- GemmWgmma.cpp - Prefill linear layers on sm_90a (wgmma + TMA) ------===//
//
// y[T, N] = x[T, K] W[N, K]^T for prefill chunks with bf16 weights, on
// Hopper's warpgroup MMA (wgmma.mma_async.m64n<tile_n>k16, bf16 in, f32
// accumulate), for `--target sm_90a` only.
//
//   block: 2 warpgroups (256 threads), tile 128 tokens x tile_n features,
//   k-tiles of 64 (one 128-byte row of bf16), `stages` shared-memory stages.
//   W tiles: the tensor-memory accelerator (cp.async.bulk.tensor.2d, 128-byte
//   swizzle, zero fill past N) into shared memory, completing on one mbarrier
//   per stage, issued by thread 0 stages - 2 k-tiles ahead. Its tensor map is
//   a kernel parameter (KernelParam::Kind::TensorMap): the runtime encodes
//   it over the weight and passes its device address.
//   x tiles: f32 activations are rounded to bf16 on the way in, so threads
//   load them (16-byte loads, one k-tile ahead in registers) and store them
//   in the same 128-byte-swizzled layout, then fence.proxy.async so the
//   tensor cores see the stores.
//   Each warpgroup multiplies its 64 rows against the shared W tile; one
//   wgmma group stays in flight while the next tile is staged.
//
// Stage reuse: the W stage refilled at k-tile kt held k-tile kt - 2, whose
// wgmma group every warpgroup has retired (wait_group 1 at the end of kt - 1,
// then the block barrier); an x stage is rewritten S k-tiles later.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace m2c::ptx {
namespace {

constexpr int64_t kWarpgroupRows = 64; // wgmma's m
constexpr int64_t kWarpgroups = 2;
constexpr int64_t kBlockM = kWarpgroupRows * kWarpgroups;
constexpr int64_t kThreads = 128 * kWarpgroups;
constexpr int64_t kBlockK = 64;    // bf16 per 128-byte swizzle row
constexpr int64_t kRowBytes = 128; // one k-tile row in shared memory
constexpr int64_t kSwizzleAtom = 8 * kRowBytes;
/// The largest dynamic shared memory a block may have on sm_90.
constexpr int64_t kMaxShared = 227 * 1024;

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
  const int64_t fixed = (int64_t(1) << 16) | (int64_t(kSwizzleAtom >> 4) << 32) | (int64_t(1) << 62);
  return arith::OrIOp::create(b, field, arith::ConstantIntOp::create(b, fixed, 64));
}

} // namespace

bool wgmmaGemmSupports(const KernelSpec &spec) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1];
  bool evenOutputs = llvm::all_of(spec.outputs, [&](const TensorInfo &t) {
    return t.shape[1] % 2 == 0 && t.type == plan::ElementType::F32;
  });
  // The tensor map needs 16-byte row strides; a k-tile is 64 columns.
  return x.tokenRows && x.type == plan::ElementType::F32 && w.shape.size() == 2 &&
         w.type == plan::ElementType::BF16 && w.quantization == plan::Quantization::None &&
         w.kind == plan::Operand::Kind::Weight && w.shape[1] % kBlockK == 0 && evenOutputs;
}

LogicalResult buildWgmmaGemm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &w = spec.inputs[1];
  const int64_t N = w.shape[0], K = w.shape[1];
  if (!wgmmaGemmSupports(spec))
    return unsupported(kb, "the wgmma GEMM needs f32 activations, an unpacked bf16 weight and K (" +
                               llvm::Twine(K) + ") a multiple of 64");
  const int64_t blockN = spec.tileParam("tile_n", 128), stages = spec.tileParam("stages", 4);
  if (failed(checkFixedTileParam(kb, spec, "gemm", "tile_m", kBlockM)) ||
      failed(checkFixedTileParam(kb, spec, "gemm", "tile_k", kBlockK)) ||
      failed(checkFixedTileParam(kb, spec, "gemm", "threads", kThreads)) ||
      failed(checkTileParam(kb, "gemm", "tile_n", blockN, 64, 256, /*powerOfTwo=*/true)) ||
      failed(checkTileParam(kb, "gemm", "stages", stages, 3, 8)))
    return failure();
  const int64_t aStageBytes = kBlockM * kRowBytes, bStageBytes = blockN * kRowBytes;
  const int64_t barriers = stages * (aStageBytes + bStageBytes);
  const int64_t sharedBytes = barriers + 8 * stages + kSwizzleAtom;
  if (sharedBytes > kMaxShared)
    return unsupported(kb, "gemm: " + llvm::Twine(stages) + " stages of tile_n " +
                               llvm::Twine(blockN) + " need " + llvm::Twine(sharedBytes) +
                               " bytes of shared memory, more than " + llvm::Twine(kMaxShared));
  const int64_t kTiles = K / kBlockK, accumulators = blockN / 2;

  LinearOutputs ys(spec.outputs);
  out.name = "m2c_gemm_wgmma_bf16_n" + std::to_string(N) + "_k" + std::to_string(K) +
             ys.nameSuffix();
  auto ptr = LLVM::LLVMPointerType::get(kb.b.getContext());
  KernelParam tensorMap{KernelParam::Kind::TensorMap, 1};
  tensorMap.box = {blockN, kBlockK};
  SmallVector<FuncParam> params = {inputParam(kb, x, 0), {ptr, tensorMap}};
  ys.appendParams(kb, params);
  params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(
      out.name, params, {kThreads, 1, 1},
      {LaunchExtent::tokens(1, kBlockM), LaunchExtent::fixed(ceilDiv(N, blockN)),
       LaunchExtent::fixed(1)},
      out);
  out.launches.back().sharedBytes = sharedBytes;
  Value xs = args[0], map = args[1];
  ys.bind(ValueRange(args).slice(2, ys.numParams()));
  Value numTokens = kb.toIndex(args.back());

  ImplicitLocOpBuilder &b = kb.b;
  SharedBlock shared(kb, out.name + "_shared");
  Value tid = kb.threadId();
  Value warpgroup = kb.divu(tid, 128), t = kb.remu(tid, 128);
  Value isLeader = kb.eq(tid, kb.idx(0));
  Value n0 = kb.mul(kb.blockId(gpu::Dimension::y), blockN);
  Value m0 = kb.add(kb.mul(kb.blockId(gpu::Dimension::x), kBlockM),
                    kb.mul(warpgroup, kWarpgroupRows));
  Value lastToken = kb.sub(numTokens, kb.idx(1));

  auto stageOffset = [&](Value stage, int64_t base, int64_t bytes) {
    return shared.add(shared.i32(base), kb.toI32(kb.mul(stage, bytes)));
  };
  auto barrierAt = [&](Value stage) { return shared.pointer(stageOffset(stage, barriers, 8)); };
  auto bTile = [&](Value stage) { return stageOffset(stage, stages * aStageBytes, bStageBytes); };
  auto aTile = [&](Value stage) {
    return shared.add(stageOffset(stage, 0, aStageBytes),
                      kb.toI32(kb.mul(warpgroup, kWarpgroupRows * kRowBytes)));
  };

  // One arrival (the leader's expect_tx) and the TMA bytes complete a phase.
  kb.ifThen(isLeader, [&] {
    for (int64_t s = 0; s < stages; ++s)
      NVVM::MBarrierInitOp::create(b, barrierAt(kb.idx(s)), shared.i32(1), Value());
    NVVM::FenceMbarrierInitOp::create(b);
  });
  kb.barrier();
  auto issueWeightTile = [&](Value kt) {
    Value stage = kb.remu(kt, stages);
    Value bar = barrierAt(stage);
    NVVM::MBarrierArriveExpectTxOp::create(b, Type(), bar, shared.i32(bStageBytes),
                                           NVVM::MemScopeKind::CTA, false, Value());
    SmallVector<Value> coords = {kb.toI32(kb.mul(kt, kBlockK)), kb.toI32(n0)};
    // The copy names its destination in the cluster's shared window (this
    // CTA's own, in a launch without clusters).
    Value dst = LLVM::AddrSpaceCastOp::create(b, LLVM::LLVMPointerType::get(b.getContext(), 7),
                                              shared.pointer(bTile(stage)));
    NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
        b, dst, map, coords, bar, ValueRange{}, Value(), Value(),
        NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, NVVM::CTAGroupKindAttr(), Value());
  };
  kb.ifThen(isLeader, [&] {
    for (int64_t kt = 0; kt < std::min(stages - 2, kTiles); ++kt)
      issueWeightTile(kb.idx(kt));
  });

  // x: each thread moves 4 chunks of 8 columns per k-tile: chunk c = i *
  // 128 + t is row c / 8 of its warpgroup's 64, columns (c % 8) * 8.
  constexpr int64_t kChunks = kWarpgroupRows * kBlockK / 8 / 128;
  SmallVector<Value> rows, chunkCols, swizzled;
  for (int64_t i = 0; i < kChunks; ++i) {
    Value c = kb.add(t, i * 128);
    Value row = kb.divu(c, 8), chunk = kb.remu(c, 8);
    rows.push_back(kb.minu(kb.add(m0, row), lastToken));
    chunkCols.push_back(kb.mul(chunk, 8));
    // 16-byte chunk j of row r sits at chunk j ^ (r % 8) of its 128 bytes.
    Value physical = arith::XOrIOp::create(b, chunk, kb.remu(row, 8));
    swizzled.push_back(kb.toI32(kb.add(kb.mul(row, kRowBytes), kb.mul(physical, 16))));
  }
  auto loadX = [&](Value kt) {
    SmallVector<Value> values;
    for (int64_t i = 0; i < kChunks; ++i) {
      Value k = kb.add(kb.mul(kt, kBlockK), chunkCols[i]);
      values.push_back(kb.load(xs, {rows[i], k}, 4));
      values.push_back(kb.load(xs, {rows[i], kb.add(k, 4)}, 4));
    }
    return values;
  };
  auto storeX = [&](ValueRange values, Value stage) {
    Value tile = aTile(stage);
    for (int64_t i = 0; i < kChunks; ++i) {
      Value wide = vector::ShuffleOp::create(b, values[2 * i], values[2 * i + 1],
                                             ArrayRef<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
      Value bf16 = kb.fromF32(wide, b.getBF16Type());
      LLVM::StoreOp::create(b, bf16, shared.pointer(shared.add(tile, swizzled[i])), 16);
    }
  };

  auto accType = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                  SmallVector<Type>(accumulators, kb.f32()));
  Value acc = LLVM::PoisonOp::create(b, accType);
  Value zero = kb.cf32(0.0);
  for (int64_t i = 0; i < accumulators; ++i)
    acc = LLVM::InsertValueOp::create(b, acc, zero, ArrayRef<int64_t>{i});
  auto shape = NVVM::MMAShapeAttr::get(b.getContext(), 64, blockN, 16);

  SmallVector<Value> init = {acc};
  init.append(loadX(kb.idx(0)));
  SmallVector<Value> results = kb.loop(
      kb.idx(0), kb.idx(kTiles), kb.idx(1), init,
      [&](Value kt, ValueRange iter) -> SmallVector<Value> {
        Value stage = kb.remu(kt, stages);
        storeX(iter.drop_front(), stage);
        // Generic-proxy stores, read next by the tensor cores (async proxy).
        NVVM::FenceProxyOp::create(b, NVVM::ProxyKind::async_shared,
                                   NVVM::SharedSpaceAttr::get(b.getContext(),
                                                              NVVM::SharedSpace::shared_cta));
        SmallVector<Value> next = loadX(kb.minu(kb.add(kt, 1), kTiles - 1));
        kb.barrier();
        Value ahead = kb.add(kt, stages - 2);
        kb.ifThen(kb.andi(isLeader, kb.ult(ahead, kTiles)), [&] { issueWeightTile(ahead); });
        Value parity = kb.toI32(kb.remu(kb.divu(kt, stages), 2));
        NVVM::MBarrierTryWaitParityOp::create(b, barrierAt(stage), parity,
                                              shared.i32(0x989680));
        NVVM::WgmmaFenceAlignedOp::create(b);
        Value a = aTile(stage), w = bTile(stage);
        Value sum = iter[0];
        for (int64_t ks = 0; ks < kBlockK / 16; ++ks) {
          Value descA = matrixDescriptor(b, shared.address(shared.add(a, shared.i32(ks * 32))));
          Value descB = matrixDescriptor(b, shared.address(shared.add(w, shared.i32(ks * 32))));
          sum = NVVM::WgmmaMmaAsyncOp::create(
              b, accType, sum, descA, descB, shape, NVVM::WGMMATypes::bf16,
              NVVM::WGMMATypes::bf16, NVVM::WGMMATypes::f32, NVVM::WGMMAScaleOut::one,
              NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, NVVM::MMALayout::row,
              NVVM::MMALayout::col, NVVM::MMAIntOverflowAttr());
        }
        NVVM::WgmmaGroupSyncAlignedOp::create(b);
        NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
        SmallVector<Value> yielded = {sum};
        yielded.append(next);
        return yielded;
      });
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);

  // Accumulator i of a thread: row 16 * warp + lane / 4 (+ 8 for i % 4 >=
  // 2) of its warpgroup's 64, column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
  Value lane = kb.remu(t, 32), warp = kb.divu(t, 32);
  Value rowBase = kb.add(m0, kb.add(kb.mul(warp, 16), kb.divu(lane, 4)));
  Value colBase = kb.add(n0, kb.mul(kb.remu(lane, 4), 2));
  const bool raggedN = N % blockN != 0;
  for (int64_t i = 0; i < accumulators; i += 2) {
    Value r = kb.add(rowBase, (i % 4) / 2 * 8), c = kb.add(colBase, (i / 4) * 8);
    Value inBounds = kb.ult(r, numTokens);
    if (raggedN)
      inBounds = kb.andi(inBounds, kb.ult(c, N));
    kb.ifThen(inBounds, [&] {
      SmallVector<Value> pair;
      for (int64_t j = 0; j < 2; ++j)
        pair.push_back(LLVM::ExtractValueOp::create(b, results[0], ArrayRef<int64_t>{i + j}));
      ys.store(kb, vector::FromElementsOp::create(b, kb.vec(2, kb.f32()), pair), r, c);
    });
  }
  return success();
}

} // namespace m2c::ptx
