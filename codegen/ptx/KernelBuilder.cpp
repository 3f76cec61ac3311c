//===- KernelBuilder.cpp - Helpers for writing GPU kernels as MLIR --------===//

#include "codegen/ptx/KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

namespace m2c::ptx {

SmallVector<Value> KernelBuilder::beginKernel(StringRef name, ArrayRef<FuncParam> params,
                                              std::array<int64_t, 3> block,
                                              std::array<plan::GpuExtent, 3> grid,
                                              KernelBinary &binary) {
  SmallVector<Type> types;
  plan::GpuLaunch launch;
  launch.entry = name.str();
  launch.block = block;
  launch.grid = grid;
  for (const FuncParam &param : params) {
    types.push_back(param.type);
    launch.params.push_back(param.param);
  }
  binary.launches.push_back(std::move(launch));

  b.setInsertionPointToEnd(module_.getBody());
  auto func = gpu::GPUFuncOp::create(b, name, b.getFunctionType(types, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr(
      {static_cast<int32_t>(block[0]), static_cast<int32_t>(block[1]),
       static_cast<int32_t>(block[2])}));
  Block &entry = func.getBody().front();
  b.setInsertionPointToEnd(&entry);
  auto ret = gpu::ReturnOp::create(b);
  b.setInsertionPoint(ret);
  if (gridDependencyControl_) {
    // Launched with programmatic dependent launch, a grid may start while
    // the one before it still runs: wait for it (and its memory) before
    // touching anything, then let the next grid be scheduled, so its launch
    // overlaps this grid's last wave.
    // Inline PTX with a memory clobber, not the NVVM intrinsics: those are
    // IntrNoMem, which would let LLVM move a load above the wait.
    LLVM::InlineAsmOp::create(b, TypeRange{}, ValueRange{},
                              "griddepcontrol.wait;\n\tgriddepcontrol.launch_dependents;",
                              "~{memory}", /*has_side_effects=*/true, /*is_align_stack=*/false,
                              LLVM::tailcallkind::TailCallKind::None, LLVM::AsmDialectAttr(),
                              ArrayAttr());
  }
  return SmallVector<Value>(entry.getArguments().begin(), entry.getArguments().end());
}

Type KernelBuilder::elementType(MLIRContext *context, plan::ElementType type) {
  Builder builder(context);
  switch (type) {
  case plan::ElementType::F32:
    return builder.getF32Type();
  case plan::ElementType::I32:
    return builder.getI32Type();
  case plan::ElementType::BF16:
    return builder.getBF16Type();
  case plan::ElementType::F16:
    return builder.getF16Type();
  }
  return builder.getF32Type();
}

MemRefType KernelBuilder::memref(ArrayRef<int64_t> shape, plan::ElementType type) {
  return MemRefType::get(shape, elementType(b.getContext(), type));
}

Value KernelBuilder::idx(int64_t value) {
  return arith::ConstantIndexOp::create(b, value);
}

Value KernelBuilder::ci32(int64_t value) {
  return arith::ConstantIntOp::create(b, value, 32);
}

Value KernelBuilder::cf32(double value) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(static_cast<float>(value)));
}

Value KernelBuilder::zeros(VectorType type) {
  return arith::ConstantOp::create(b, DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
}

Value KernelBuilder::add(Value a, Value c) { return b.createOrFold<arith::AddIOp>(a, c); }
Value KernelBuilder::sub(Value a, Value c) { return b.createOrFold<arith::SubIOp>(a, c); }
Value KernelBuilder::mul(Value a, Value c) { return b.createOrFold<arith::MulIOp>(a, c); }
Value KernelBuilder::divu(Value a, int64_t c) {
  return c == 1 ? a : b.createOrFold<arith::DivUIOp>(a, idx(c));
}
Value KernelBuilder::remu(Value a, int64_t c) {
  return b.createOrFold<arith::RemUIOp>(a, idx(c));
}
Value KernelBuilder::minu(Value a, Value c) { return b.createOrFold<arith::MinUIOp>(a, c); }
Value KernelBuilder::ult(Value a, Value c) {
  return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::ult, a, c);
}
Value KernelBuilder::eq(Value a, Value c) {
  return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::eq, a, c);
}
Value KernelBuilder::andi(Value a, Value c) { return b.createOrFold<arith::AndIOp>(a, c); }
Value KernelBuilder::select(Value cond, Value a, Value c) {
  return b.createOrFold<arith::SelectOp>(cond, a, c);
}
Value KernelBuilder::toIndex(Value value) {
  return b.createOrFold<arith::IndexCastOp>(b.getIndexType(), value);
}
Value KernelBuilder::toI32(Value value) {
  return b.createOrFold<arith::IndexCastOp>(b.getI32Type(), value);
}

Value KernelBuilder::addf(Value a, Value c) { return arith::AddFOp::create(b, a, c); }
Value KernelBuilder::subf(Value a, Value c) { return arith::SubFOp::create(b, a, c); }
Value KernelBuilder::mulf(Value a, Value c) { return arith::MulFOp::create(b, a, c); }
Value KernelBuilder::divf(Value a, Value c) { return arith::DivFOp::create(b, a, c); }
Value KernelBuilder::maxf(Value a, Value c) { return arith::MaximumFOp::create(b, a, c); }
Value KernelBuilder::fma(Value a, Value c, Value acc) { return math::FmaOp::create(b, a, c, acc); }
Value KernelBuilder::exp(Value a) { return math::ExpOp::create(b, a); }

Value KernelBuilder::splat(Value scalar, int64_t n) {
  return vector::BroadcastOp::create(b, vec(n, scalar.getType()), scalar);
}

Value KernelBuilder::extract(Value vector, int64_t position) {
  return vector::ExtractOp::create(b, vector, ArrayRef<int64_t>{position});
}

Value KernelBuilder::reduceAdd(Value vector) {
  auto type = cast<VectorType>(vector.getType());
  SmallVector<Value> parts;
  for (int64_t i = 0; i < type.getNumElements(); ++i)
    parts.push_back(extract(vector, i));
  // A pairwise tree: shorter dependency chains than a sequential sum.
  while (parts.size() > 1) {
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < parts.size(); i += 2)
      next.push_back(addf(parts[i], parts[i + 1]));
    if (parts.size() % 2)
      next.push_back(parts.back());
    parts = std::move(next);
  }
  return parts.front();
}

Value KernelBuilder::threadId() { return gpu::ThreadIdOp::create(b, gpu::Dimension::x); }
Value KernelBuilder::blockId(gpu::Dimension dim) { return gpu::BlockIdOp::create(b, dim); }

Value KernelBuilder::load(Value memref, ValueRange indices, int64_t n, int64_t maxAlign) {
  auto type = cast<MemRefType>(memref.getType());
  Type element = type.getElementType();
  int64_t bytes = n * element.getIntOrFloatBitWidth() / 8;
  int64_t align = 1;
  while (align < maxAlign && bytes % (align * 2) == 0)
    align *= 2;
  return vector::LoadOp::create(b, vec(n, element), memref, indices, /*nontemporal=*/false,
                                llvm::MaybeAlign(align));
}

void KernelBuilder::store(Value value, Value memref, ValueRange indices) {
  auto type = cast<VectorType>(value.getType());
  int64_t bytes = type.getNumElements() * type.getElementTypeBitWidth() / 8;
  int64_t align = 1;
  while (align < 16 && bytes % (align * 2) == 0)
    align *= 2;
  vector::StoreOp::create(b, value, memref, indices, /*nontemporal=*/false,
                          llvm::MaybeAlign(align));
}

Value KernelBuilder::loadScalar(Value memref, ValueRange indices) {
  return memref::LoadOp::create(b, memref, indices);
}

void KernelBuilder::storeScalar(Value value, Value memref, ValueRange indices) {
  memref::StoreOp::create(b, value, memref, indices);
}

Value KernelBuilder::toF32(Value vector) {
  auto type = cast<VectorType>(vector.getType());
  Type element = type.getElementType();
  int64_t n = type.getNumElements();
  if (element.isF32())
    return vector;
  if (element.isBF16() && n % 2 == 0) {
    // bf16 pairs as i32: the even element is the low half. Widening is a
    // shift (even) or a mask (odd), exactly like cvt.f32.bf16.
    Value bits = vector::BitCastOp::create(b, vec(n / 2, i32()), vector);
    Value sixteen = arith::ConstantOp::create(
        b, DenseElementsAttr::get(vec(n / 2, i32()), b.getI32IntegerAttr(16)));
    Value highMask = arith::ConstantOp::create(
        b, DenseElementsAttr::get(vec(n / 2, i32()),
                                  b.getI32IntegerAttr(static_cast<int32_t>(0xFFFF0000u))));
    Value even = vector::BitCastOp::create(b, vec(n / 2, f32()),
                                           arith::ShLIOp::create(b, bits, sixteen));
    Value odd = vector::BitCastOp::create(b, vec(n / 2, f32()),
                                          arith::AndIOp::create(b, bits, highMask));
    SmallVector<int64_t> order;
    for (int64_t i = 0; i < n / 2; ++i) {
      order.push_back(i);
      order.push_back(n / 2 + i);
    }
    return vector::ShuffleOp::create(b, even, odd, order);
  }
  return arith::ExtFOp::create(b, vec(n, f32()), vector);
}

Value KernelBuilder::loadF32(Value memref, ValueRange indices, int64_t n) {
  return toF32(load(memref, indices, n));
}

Value KernelBuilder::fromF32(Value vector, Type type) {
  if (type.isF32())
    return vector;
  auto vtype = cast<VectorType>(vector.getType());
  return arith::TruncFOp::create(b, vec(vtype.getNumElements(), type), vector);
}

Value KernelBuilder::shared(StringRef name, ArrayRef<int64_t> shape, Type element) {
  auto space = gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto type = MemRefType::get(shape, element, MemRefLayoutAttrInterface{}, space);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module_.getBody());
    memref::GlobalOp::create(b, b.getStringAttr(name), b.getStringAttr("private"),
                             TypeAttr::get(type), b.getUnitAttr(), UnitAttr{},
                             b.getI64IntegerAttr(16));
  }
  return memref::GetGlobalOp::create(b, type, name);
}

Value KernelBuilder::constantTable(StringRef name, ArrayRef<float> values) {
  auto type = MemRefType::get({static_cast<int64_t>(values.size())}, f32());
  auto tensorType = RankedTensorType::get({static_cast<int64_t>(values.size())}, f32());
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module_.getBody());
    memref::GlobalOp::create(b, b.getStringAttr(name), b.getStringAttr("private"),
                             TypeAttr::get(type), DenseElementsAttr::get(tensorType, values),
                             b.getUnitAttr(), b.getI64IntegerAttr(16));
  }
  return memref::GetGlobalOp::create(b, type, name);
}

void KernelBuilder::barrier() { gpu::BarrierOp::create(b); }

SmallVector<Value> KernelBuilder::loop(Value lb, Value ub, Value step, ValueRange init,
                                       LoopBody body) {
  auto forOp = scf::ForOp::create(
      b, lb, ub, step, init, [&](OpBuilder &nested, Location, Value iv, ValueRange iter) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
        SmallVector<Value> results = body(iv, iter);
        scf::YieldOp::create(b, results);
      });
  return SmallVector<Value>(forOp.getResults().begin(), forOp.getResults().end());
}

void KernelBuilder::loop(Value lb, Value ub, Value step, llvm::function_ref<void(Value)> body) {
  loop(lb, ub, step, ValueRange{}, [&](Value iv, ValueRange) -> SmallVector<Value> {
    body(iv);
    return {};
  });
}

void KernelBuilder::ifThen(Value cond, llvm::function_ref<void()> then) {
  scf::IfOp::create(b, cond, [&](OpBuilder &nested, Location) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
    then();
    scf::YieldOp::create(b);
  });
}

SmallVector<Value> KernelBuilder::ifElse(Value cond, TypeRange types,
                                         llvm::function_ref<SmallVector<Value>()> then,
                                         llvm::function_ref<SmallVector<Value>()> otherwise) {
  auto ifOp = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    SmallVector<Value> results = then();
    scf::YieldOp::create(b, results);
  }
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.elseBlock());
    SmallVector<Value> results = otherwise();
    scf::YieldOp::create(b, results);
  }
  return SmallVector<Value>(ifOp.getResults().begin(), ifOp.getResults().end());
}

Value KernelBuilder::shuffleXor(Value value, int64_t offset) {
  return gpu::ShuffleOp::create(b, value, static_cast<int32_t>(offset), 32,
                                gpu::ShuffleMode::XOR)
      .getShuffleResult();
}

Value KernelBuilder::shuffleIdx(Value value, Value lane) {
  return gpu::ShuffleOp::create(b, value, toI32(lane), ci32(32), gpu::ShuffleMode::IDX)
      .getShuffleResult();
}

Value KernelBuilder::warpSum(Value value, int64_t width) {
  for (int64_t offset = width / 2; offset >= 1; offset /= 2)
    value = addf(value, shuffleXor(value, offset));
  return value;
}

Value KernelBuilder::warpMax(Value value, int64_t width) {
  for (int64_t offset = width / 2; offset >= 1; offset /= 2)
    value = maxf(value, shuffleXor(value, offset));
  return value;
}

Value KernelBuilder::blockReduce(Value value, Value scratch, int64_t numWarps, bool max) {
  Value partial = max ? warpMax(value) : warpSum(value);
  if (numWarps == 1)
    return partial;
  Value warp = warpId();
  ifThen(eq(laneId(), idx(0)), [&] { storeScalar(partial, scratch, {warp}); });
  barrier();
  Value total = loadScalar(scratch, {idx(0)});
  for (int64_t w = 1; w < numWarps; ++w) {
    Value next = loadScalar(scratch, {idx(w)});
    total = max ? maxf(total, next) : addf(total, next);
  }
  // The scratch may be reused right after.
  barrier();
  return total;
}

} // namespace m2c::ptx
