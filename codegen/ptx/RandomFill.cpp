//===- RandomFill.cpp - The random-weight stream, generated on the GPU ----===//
//
// `--random-weights` on the GPU writes each weight where it lives instead of
// generating it on the host and copying it up. The values are the host's
// (randomWeightF32 in runtime/weights/Weights.cpp): splitmix64 is a counter,
// so thread p computes elements 2p and 2p+1 from draws 2p and 2p+1, i.e.
// from state + (2p+1) * gamma and state + (2p+2) * gamma, then Box-Muller in
// f64 (libdevice log, sqrt, cos, sin), `n * scale + shift`, rounded to f32,
// then to the logical type, then stored in the storage type.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;

namespace m2c::ptx {

namespace {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;

/// splitmix64's output for a state already advanced by gamma.
Value mix(KernelBuilder &kb, Value z) {
  ImplicitLocOpBuilder &b = kb.b;
  Type i64 = b.getI64Type();
  auto c = [&](uint64_t v) {
    return arith::ConstantOp::create(b, IntegerAttr::get(i64, static_cast<int64_t>(v)));
  };
  auto xorShift = [&](Value x, int64_t s) {
    return arith::XOrIOp::create(b, x, arith::ShRUIOp::create(b, x, c(s)));
  };
  z = arith::MulIOp::create(b, xorShift(z, 30), c(0xbf58476d1ce4e5b9ull));
  z = arith::MulIOp::create(b, xorShift(z, 27), c(0x94d049bb133111ebull));
  return xorShift(z, 31);
}

} // namespace

LogicalResult buildRandomFill(KernelBuilder &kb, plan::ElementType logical,
                              plan::ElementType storage, int64_t block, KernelBinary &out) {
  if ((logical != plan::ElementType::F32 && logical != plan::ElementType::BF16) ||
      (storage != plan::ElementType::F32 && storage != plan::ElementType::BF16))
    return emitError(kb.b.getLoc(), "random fill: f32 and bf16 only");
  ImplicitLocOpBuilder &b = kb.b;
  Type i64 = b.getI64Type(), f64 = b.getF64Type();
  out.name = std::string("m2c_random_fill_") + plan::elementTypeName(logical) + "_" +
             plan::elementTypeName(storage);
  // The ABI is the program's GpuRandomFill one; these plan::GpuParam kinds are
  // placeholders the runtime does not read.
  SmallVector<FuncParam> params = {
      {kb.memref({int64_t(1) << 40}, storage), {plan::GpuParam::Kind::Output, 0}},
      {i64, {plan::GpuParam::Kind::NumTokens, 0}},
      {i64, {plan::GpuParam::Kind::NumTokens, 0}},
      {f64, {plan::GpuParam::Kind::NumTokens, 0}},
      {f64, {plan::GpuParam::Kind::NumTokens, 0}}};
  SmallVector<Value> args = kb.beginKernel(out.name, params, {block, 1, 1},
                                           {plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1),
                                            plan::GpuExtent::fixed(1)},
                                           out);
  Value dst = args[0], count = args[1], state = args[2], scale = args[3], shift = args[4];
  auto c64 = [&](uint64_t v) {
    return arith::ConstantOp::create(b, IntegerAttr::get(i64, static_cast<int64_t>(v)));
  };
  auto cf64 = [&](double v) { return arith::ConstantOp::create(b, FloatAttr::get(f64, v)); };

  Value pair = kb.add(kb.mul(kb.blockId(gpu::Dimension::x), block), kb.threadId());
  Value pair64 = arith::IndexCastUIOp::create(b, i64, pair);
  Value first = arith::MulIOp::create(b, pair64, c64(2));
  Value inRange = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, first, count);
  kb.ifThen(inRange, [&] {
    // Draw k (0-based) mixes state + (k + 1) * gamma.
    Value base = arith::AddIOp::create(b, state, arith::MulIOp::create(b, first, c64(kGamma)));
    Value z1 = mix(kb, arith::AddIOp::create(b, base, c64(kGamma)));
    Value z2 = mix(kb, arith::AddIOp::create(b, base, c64(2 * kGamma)));
    auto top53 = [&](Value z) {
      return arith::UIToFPOp::create(b, f64, arith::ShRUIOp::create(b, z, c64(11)));
    };
    Value u1 = arith::MulFOp::create(b, arith::AddFOp::create(b, top53(z1), cf64(1.0)),
                                     cf64(0x1.0p-53));
    Value u2 = arith::MulFOp::create(b, top53(z2), cf64(0x1.0p-53));
    Value radius = math::SqrtOp::create(
        b, arith::MulFOp::create(b, cf64(-2.0), math::LogOp::create(b, u1)));
    Value angle = arith::MulFOp::create(b, cf64(2 * M_PI), u2);
    Value normals[2] = {arith::MulFOp::create(b, radius, math::CosOp::create(b, angle)),
                        arith::MulFOp::create(b, radius, math::SinOp::create(b, angle))};
    Type logicalType = KernelBuilder::elementType(b.getContext(), logical);
    Type storageType = KernelBuilder::elementType(b.getContext(), storage);
    for (int j = 0; j < 2; ++j) {
      Value index64 = arith::AddIOp::create(b, first, c64(j));
      auto write = [&] {
        Value value = arith::AddFOp::create(b, arith::MulFOp::create(b, normals[j], scale), shift);
        Value f = arith::TruncFOp::create(b, kb.f32(), value);
        if (logicalType != f.getType())
          f = arith::TruncFOp::create(b, logicalType, f);
        if (storageType != f.getType())
          f = arith::ExtFOp::create(b, storageType, f);
        kb.storeScalar(f, dst, {arith::IndexCastUIOp::create(b, b.getIndexType(), index64)});
      };
      if (j == 0)
        write();
      else
        kb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, index64, count), write);
    }
  });
  return success();
}

} // namespace m2c::ptx
