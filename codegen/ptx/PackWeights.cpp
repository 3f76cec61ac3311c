//===- PackWeights.cpp - Quantized packing on the GPU ---------------------===//
//
// `--random-weights` with quantized weights on the GPU: a random fill writes
// one f32 matrix to scratch, and these kernels pack it where the weight
// lives, exactly as packQuantized (runtime/weights/Quantize.cpp) does on the
// host: the same amax, the same f32 division, round half away from zero
// (lround), and e4m3 rounding to nearest even with saturation at 448.
// minimax-m2's 230 B parameters cannot be packed on the host in useful time.
//
// ABI (plan::GpuPackKernel): (src f32*, codes u8*, scales f32*, rows i64,
// cols i64), one launch per matrix:
//   int8:       grid (rows),                          128 threads, one row each;
//   int4_g128:  grid (rows, ceil(cols/128)),           32 threads, one group;
//   fp8_block:  grid (ceil(rows/128), ceil(cols/128)), 256 threads, one block.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;

namespace m2c::ptx {

int64_t packKernelBlock(plan::Quantization q) {
  switch (q) {
  case plan::Quantization::Int8:
    return 128;
  case plan::Quantization::Int4G128:
    return 32;
  case plan::Quantization::Fp8Block128:
    return 256;
  case plan::Quantization::None:
    break;
  }
  return 0;
}

namespace {

/// f32 -> e4m3fn bits (in an i32), as f32ToF8e4m3 (runtime/checkpoint/DType).
Value encodeE4m3(KernelBuilder &kb, Value v) {
  ImplicitLocOpBuilder &b = kb.b;
  Type i32 = kb.i32();
  auto c = [&](uint32_t x) { return arith::ConstantIntOp::create(b, static_cast<int32_t>(x), 32); };
  Value bits = arith::BitcastOp::create(b, i32, v);
  Value sign = arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, c(24)), c(0x80));
  Value magnitudeBits = arith::AndIOp::create(b, bits, c(0x7FFFFFFF));
  Value magnitude = arith::BitcastOp::create(b, kb.f32(), magnitudeBits);
  // Subnormal codes are multiples of 2^-9: round the multiple to even.
  Value subnormal = arith::FPToSIOp::create(
      b, i32, math::RoundEvenOp::create(b, kb.mulf(magnitude, kb.cf32(512.0))));
  // Normal codes: drop 20 mantissa bits, rounding to nearest even, and
  // rebias the exponent (127 -> 7).
  Value lsb = arith::AndIOp::create(b, arith::ShRUIOp::create(b, magnitudeBits, c(20)), c(1));
  Value rounded = arith::AddIOp::create(
      b, magnitudeBits, arith::AddIOp::create(b, c(0x7FFFF), lsb));
  Value normal = arith::SubIOp::create(b, arith::ShRUIOp::create(b, rounded, c(20)), c(120 << 3));
  auto less = [&](Value x, float bound) {
    return arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, x, kb.cf32(bound));
  };
  Value code = arith::SelectOp::create(b, less(magnitude, 0x1p-6f), subnormal, normal);
  code = arith::SelectOp::create(b, less(magnitude, 448.0f), code, c(0x7E));
  Value isNan = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, v, v);
  code = arith::SelectOp::create(b, isNan, c(0x7F), code);
  return arith::OrIOp::create(b, code, sign);
}

/// round(x / scale) clamped to [-limit, limit], as an i32.
Value quantizeInt(KernelBuilder &kb, Value x, Value scale, float limit) {
  Value q = math::RoundOp::create(kb.b, kb.divf(x, scale));
  q = arith::MinimumFOp::create(kb.b, arith::MaximumFOp::create(kb.b, q, kb.cf32(-limit)),
                                kb.cf32(limit));
  return arith::FPToSIOp::create(kb.b, kb.i32(), q);
}

/// amax > 0 ? amax / top : 1, as scaleFor in Quantize.cpp.
Value scaleFor(KernelBuilder &kb, Value amax, float top) {
  Value positive = arith::CmpFOp::create(kb.b, arith::CmpFPredicate::OGT, amax, kb.cf32(0.0));
  return arith::SelectOp::create(kb.b, positive, kb.divf(amax, kb.cf32(top)), kb.cf32(1.0));
}

Value toI8(KernelBuilder &kb, Value i32Value) {
  return arith::TruncIOp::create(kb.b, kb.b.getI8Type(), i32Value);
}

} // namespace

LogicalResult buildPackKernel(KernelBuilder &kb, plan::Quantization q, KernelBinary &out) {
  ImplicitLocOpBuilder &b = kb.b;
  const int64_t block = packKernelBlock(q);
  if (!block)
    return emitError(b.getLoc(), "pack kernel: no format");
  out.name = std::string("m2c_pack_") + plan::quantizationName(q);
  constexpr int64_t kHuge = int64_t(1) << 40;
  Type i64 = b.getI64Type();
  // The ABI is GpuPackKernel's; these plan::GpuParam kinds are placeholders.
  SmallVector<FuncParam> params = {
      {MemRefType::get({kHuge}, kb.f32()), {plan::GpuParam::Kind::Input, 0}},
      {MemRefType::get({kHuge}, b.getI8Type()), {plan::GpuParam::Kind::Output, 0}},
      {MemRefType::get({kHuge}, kb.f32()), {plan::GpuParam::Kind::Output, 1}},
      {i64, {plan::GpuParam::Kind::NumTokens, 0}},
      {i64, {plan::GpuParam::Kind::NumTokens, 0}}};
  plan::GpuExtent one = plan::GpuExtent::fixed(1);
  SmallVector<Value> args = kb.beginKernel(out.name, params, {block, 1, 1}, {one, one, one}, out);
  Value src = args[0], codes = args[1], scales = args[2];
  Value rows = arith::IndexCastOp::create(b, b.getIndexType(), args[3]);
  Value cols = arith::IndexCastOp::create(b, b.getIndexType(), args[4]);
  Value tid = kb.threadId();
  auto absAt = [&](Value index) { return math::AbsFOp::create(b, kb.loadScalar(src, {index})); };

  if (q == plan::Quantization::None)
    return unsupported(kb, "a pack kernel needs a quantized format");
  // The grids and thread counts above are this file's; the group sizes and
  // code ranges are the format's.
  const plan::QuantFormat &format = plan::quantFormat(q);
  const int64_t groupRows = format.groupRows, groupCols = format.groupCols;
  switch (q) {
  case plan::Quantization::Int8: {
    Value row = kb.blockId(gpu::Dimension::x);
    Value rowBase = kb.mul(row, cols);
    Value scratch = kb.shared(out.name + "_amax", {block / 32}, kb.f32());
    Value amax = kb.loop(tid, cols, kb.idx(block), {kb.cf32(0.0)},
                         [&](Value c, ValueRange acc) -> SmallVector<Value> {
                           return {kb.maxf(acc[0], absAt(kb.add(rowBase, c)))};
                         })[0];
    Value scale = scaleFor(kb, kb.blockMax(amax, scratch, block / 32), format.qmax);
    kb.ifThen(kb.eq(tid, kb.idx(0)), [&] { kb.storeScalar(scale, scales, {row}); });
    kb.loop(tid, cols, kb.idx(block), [&](Value c) {
      Value index = kb.add(rowBase, c);
      kb.storeScalar(toI8(kb, quantizeInt(kb, kb.loadScalar(src, {index}), scale, format.qmax)),
                     codes, {index});
    });
    break;
  }
  case plan::Quantization::Int4G128: {
    Value row = kb.blockId(gpu::Dimension::x), group = kb.blockId(gpu::Dimension::y);
    // 32 threads of 4 columns cover one group.
    Value groups = kb.divu(kb.add(cols, kb.idx(groupCols - 1)), groupCols);
    Value first = kb.add(kb.mul(group, groupCols), kb.mul(tid, groupCols / 32));
    SmallVector<Value> values;
    Value amax = kb.cf32(0.0);
    for (int64_t i = 0; i < 4; ++i) {
      Value c = kb.add(first, i);
      Value inside = kb.ult(c, cols);
      Value index = kb.add(kb.mul(row, cols), kb.minu(c, kb.sub(cols, kb.idx(1))));
      Value v = kb.select(inside, kb.loadScalar(src, {index}), kb.cf32(0.0));
      values.push_back(v);
      amax = kb.maxf(amax, math::AbsFOp::create(b, v));
    }
    Value scale = scaleFor(kb, kb.warpMax(amax), format.qmax);
    kb.ifThen(kb.eq(tid, kb.idx(0)),
              [&] { kb.storeScalar(scale, scales, {kb.add(kb.mul(row, groups), group)}); });
    Value packedCols = kb.divu(kb.add(cols, kb.idx(1)), 2);
    for (int64_t pair = 0; pair < 2; ++pair) {
      auto nibble = [&](int64_t i) {
        return arith::AndIOp::create(b, quantizeInt(kb, values[i], scale, format.qmax), kb.ci32(0xF));
      };
      Value byte = arith::OrIOp::create(
          b, nibble(2 * pair),
          arith::ShLIOp::create(b, nibble(2 * pair + 1), kb.ci32(4)));
      Value c = kb.add(first, 2 * pair);
      kb.ifThen(kb.ult(c, cols), [&] {
        kb.storeScalar(toI8(kb, byte), codes,
                       {kb.add(kb.mul(row, packedCols), kb.divu(c, 2))});
      });
    }
    break;
  }
  case plan::Quantization::Fp8Block128: {
    Value r0 = kb.mul(kb.blockId(gpu::Dimension::x), groupRows);
    Value c0 = kb.mul(kb.blockId(gpu::Dimension::y), groupCols);
    Value colBlocks = kb.divu(kb.add(cols, kb.idx(groupCols - 1)), groupCols);
    Value scratch = kb.shared(out.name + "_amax", {block / 32}, kb.f32());
    // Element i of the block, when it is inside the matrix.
    auto at = [&](Value i, llvm::function_ref<void(Value index)> body) {
      Value r = kb.add(r0, kb.divu(i, groupCols)), c = kb.add(c0, kb.remu(i, groupCols));
      kb.ifThen(kb.andi(kb.ult(r, rows), kb.ult(c, cols)),
                [&] { body(kb.add(kb.mul(r, cols), c)); });
    };
    Value amax = kb.loop(tid, kb.idx(groupRows * groupCols), kb.idx(block), {kb.cf32(0.0)},
                         [&](Value i, ValueRange acc) -> SmallVector<Value> {
                           Value r = kb.add(r0, kb.divu(i, groupCols)), c = kb.add(c0, kb.remu(i, groupCols));
                           Value inside = kb.andi(kb.ult(r, rows), kb.ult(c, cols));
                           Value index = kb.select(inside, kb.add(kb.mul(r, cols), c), kb.idx(0));
                           Value v = kb.select(inside, absAt(index), kb.cf32(0.0));
                           return {kb.maxf(acc[0], v)};
                         })[0];
    Value scale = scaleFor(kb, kb.blockMax(amax, scratch, block / 32), format.qmax);
    kb.ifThen(kb.eq(tid, kb.idx(0)), [&] {
      kb.storeScalar(scale, scales,
                     {kb.add(kb.mul(kb.blockId(gpu::Dimension::x), colBlocks),
                             kb.blockId(gpu::Dimension::y))});
    });
    kb.loop(tid, kb.idx(groupRows * groupCols), kb.idx(block), [&](Value i) {
      at(i, [&](Value index) {
        Value code = encodeE4m3(kb, kb.divf(kb.loadScalar(src, {index}), scale));
        kb.storeScalar(toI8(kb, code), codes, {index});
      });
    });
    break;
  }
  case plan::Quantization::None:
    break;
  }
  return success();
}

} // namespace m2c::ptx
