//===- Elementwise.cpp - Embedding, add, last row, RMSNorm ----------------===//
//
// Row-parallel kernels: one block per row (embedding, RMSNorm) or a 2-D
// grid of (column block, row) (add, last row), 16-byte accesses, and for
// RMSNorm the row held in registers between the sum of squares and the
// scaling so that x is read from memory once.
//
//===----------------------------------------------------------------------===//
#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;

namespace m2c::ptx {
namespace {

/// Threads for `chunks` units of work: whole warps, at most `maxThreads`.
int64_t threadsFor(int64_t chunks, int64_t maxThreads = 256) {
  return std::min<int64_t>(maxThreads, ceilDiv(chunks, 32) * 32);
}

Type typeOf(KernelBuilder &kb, plan::ElementType type) {
  return KernelBuilder::elementType(kb.b.getContext(), type);
}

} // namespace

LogicalResult buildEmbedding(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &table = spec.inputs[1], &y = spec.outputs[0];
  const int64_t vocab = table.shape[0], H = table.shape[1];
  const int64_t width = vectorWidth(H, byteSize(table.type));
  const int64_t chunks = H / width, threads = threadsFor(chunks);
  out.name = "m2c_embedding_" + std::string(shortTypeName(table.type)) + "_v" +
             std::to_string(vocab) + "_h" + std::to_string(H);

  SmallVector<FuncParam> params = {inputParam(kb, spec.inputs[0], 0),
                                   inputParam(kb, table, 1), outputParam(kb, y, 0)};
  SmallVector<Value> args =
      kb.beginKernel(out.name, params, {threads, 1, 1},
                     {rowsExtent(y), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
  Value ids = args[0], tab = args[1], ys = args[2];
  Value token = kb.blockId(gpu::Dimension::x);
  Value id = kb.toIndex(kb.loadScalar(ids, {token}));
  // An id outside the table (the runtime validates ids first) reads row 0
  // and writes zeros instead of reading out of bounds.
  Value valid = kb.ult(id, vocab);
  Value row = kb.select(valid, id, kb.idx(0));
  Value tid = kb.threadId();
  Type yType = typeOf(kb, y.type);
  kb.loop(kb.idx(0), kb.idx(chunks), kb.idx(threads), [&](Value base) {
    Value chunk = kb.add(base, tid);
    kb.ifThen(kb.ult(chunk, chunks), [&] {
      Value k = kb.mul(chunk, width);
      Value v = kb.loadF32(tab, {row, k}, width);
      v = kb.select(valid, v, kb.zeros(kb.vec(width, kb.f32())));
      kb.store(kb.fromF32(v, yType), ys, {token, k});
    });
  });
  return success();
}

LogicalResult buildAdd(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &a = spec.inputs[0], &c = spec.inputs[1], &y = spec.outputs[0];
  const int64_t C = y.shape[1];
  const int64_t width = vectorWidth(C, 4);
  const int64_t chunks = C / width, threads = threadsFor(chunks);
  const int64_t colBlocks = ceilDiv(chunks, threads);
  out.name = "m2c_add_c" + std::to_string(C);

  SmallVector<FuncParam> params = {inputParam(kb, a, 0), inputParam(kb, c, 1),
                                   outputParam(kb, y, 0)};
  SmallVector<Value> args = kb.beginKernel(
      out.name, params, {threads, 1, 1},
      {plan::GpuExtent::fixed(colBlocks), rowsExtent(y), plan::GpuExtent::fixed(1)}, out);
  Value as = args[0], cs = args[1], ys = args[2];
  Value row = kb.blockId(gpu::Dimension::y);
  Value chunk = kb.add(kb.mul(kb.blockId(gpu::Dimension::x), threads), kb.threadId());
  auto body = [&] {
    Value k = kb.mul(chunk, width);
    Value sum = kb.addf(kb.loadF32(as, {row, k}, width), kb.loadF32(cs, {row, k}, width));
    kb.store(kb.fromF32(sum, typeOf(kb, y.type)), ys, {row, k});
  };
  if (chunks % threads)
    kb.ifThen(kb.ult(chunk, chunks), body);
  else
    body();
  return success();
}

LogicalResult buildTakeLastRow(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  const TensorInfo &x = spec.inputs[0], &y = spec.outputs[0];
  const int64_t C = y.shape[1];
  const int64_t width = vectorWidth(C, byteSize(x.type));
  const int64_t chunks = C / width, threads = threadsFor(chunks);
  out.name = "m2c_take_last_row_c" + std::to_string(C);

  SmallVector<FuncParam> params = {inputParam(kb, x, 0), outputParam(kb, y, 0)};
  if (x.tokenRows)
    params.push_back(tokensParam(kb));
  SmallVector<Value> args = kb.beginKernel(
      out.name, params, {threads, 1, 1},
      {plan::GpuExtent::fixed(ceilDiv(chunks, threads)), plan::GpuExtent::fixed(1),
       plan::GpuExtent::fixed(1)},
      out);
  Value xs = args[0], ys = args[1];
  Value last = kb.sub(rowCount(kb, x, x.tokenRows ? args[2] : Value()), kb.idx(1));
  Value chunk = kb.add(kb.mul(kb.blockId(gpu::Dimension::x), threads), kb.threadId());
  auto body = [&] {
    Value k = kb.mul(chunk, width);
    kb.store(kb.load(xs, {last, k}, width), ys, {kb.idx(0), k});
  };
  if (chunks % threads)
    kb.ifThen(kb.ult(chunk, chunks), body);
  else
    body();
  return success();
}

namespace {
Value rmsScale(KernelBuilder &kb, Value sumSq, int64_t cols, double eps) {
  // (float)(1 / sqrt(mean + eps)) with the last steps in f64, as the
  // reference does (and out of reach of the 1/sqrt -> rsqrt.approx rewrite).
  Type f64 = kb.b.getF64Type();
  Value mean =
      arith::ExtFOp::create(kb.b, f64, kb.divf(sumSq, kb.cf32(static_cast<double>(cols))));
  Value root = math::SqrtOp::create(
      kb.b, kb.addf(mean, arith::ConstantOp::create(kb.b, kb.b.getF64FloatAttr(eps))));
  return arith::TruncFOp::create(
      kb.b, kb.f32(), kb.divf(arith::ConstantOp::create(kb.b, kb.b.getF64FloatAttr(1.0)), root));
}
} // namespace

void emitRmsNormRow(KernelBuilder &kb, const RmsNormRow &r) {
  const int64_t width = vectorWidth(r.cols, 4);
  const int64_t chunks = r.cols / width;
  const int64_t perThread = ceilDiv(chunks, r.threads), warps = r.threads / 32;
  const bool ragged = chunks % r.threads != 0;
  Value scratch = kb.shared(r.scratchName, {warps}, kb.f32());
  Value tid = kb.threadId();
  VectorType vtype = kb.vec(width, kb.f32());
  auto whenWriting = [&](llvm::function_ref<void()> write) {
    if (r.writeOutputs)
      kb.ifThen(r.writeOutputs, write);
    else
      write();
  };

  // The row stays in registers: perThread chunks per thread, unrolled so
  // that no register array is indexed dynamically.
  SmallVector<Value> chunkIds, values;
  Value sumSq = kb.cf32(0.0);
  for (int64_t i = 0; i < perThread; ++i) {
    Value chunk = kb.add(tid, i * r.threads);
    chunkIds.push_back(chunk);
    bool mayBeOut = ragged && i == perThread - 1;
    auto loadChunk = [&]() -> SmallVector<Value> {
      Value k = kb.mul(chunk, width);
      Value v = kb.load(r.x, {r.row, k}, width);
      if (r.residual) {
        v = kb.addf(v, kb.load(r.residual, {r.row, k}, width));
        if (r.sums)
          whenWriting([&] { kb.store(v, r.sums, {r.row, k}); });
      }
      return {v};
    };
    Value v = mayBeOut ? kb.ifElse(kb.ult(chunk, chunks), {vtype}, loadChunk,
                                   [&]() -> SmallVector<Value> { return {kb.zeros(vtype)}; })[0]
                       : loadChunk()[0];
    values.push_back(v);
    sumSq = kb.addf(sumSq, kb.reduceAdd(kb.mulf(v, v)));
  }
  Value scale = rmsScale(kb, kb.blockSum(sumSq, scratch, warps), r.cols, r.eps);
  Value scaleVec = kb.splat(scale, width);
  for (int64_t i = 0; i < perThread; ++i) {
    bool mayBeOut = ragged && i == perThread - 1;
    auto write = [&] {
      Value k = kb.mul(chunkIds[i], width);
      // The reference's order: (x * s) * weight, in f32.
      Value v = kb.mulf(kb.mulf(values[i], scaleVec), kb.loadF32(r.weight, {k}, width));
      if (r.rowCopy)
        kb.store(v, r.rowCopy, {k});
      whenWriting([&] { kb.store(kb.fromF32(v, typeOf(kb, r.yType)), r.ys, {r.row, k}); });
    };
    if (mayBeOut)
      kb.ifThen(kb.ult(chunkIds[i], chunks), write);
    else
      write();
  }
}

int64_t rmsNormThreads(int64_t cols) { return tiling::normTile(cols).threads; }

LogicalResult buildRmsNorm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  return emitRmsNorm(kb, spec, out, /*withResidual=*/false);
}

LogicalResult buildAddRmsNorm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out) {
  return emitRmsNorm(kb, spec, out, /*withResidual=*/true);
}

LogicalResult emitRmsNorm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out,
                          bool withResidual) {
  const TensorInfo &x = spec.inputs[0];
  const TensorInfo &w = spec.inputs[withResidual ? 2 : 1];
  const TensorInfo &y = spec.outputs[withResidual ? 1 : 0];
  const int64_t C = x.shape[1];
  if (x.type != plan::ElementType::F32)
    return unsupported(kb, "rms_norm expects f32 activations");
  const tiling::ThreadsTile tile = tiling::normTile(C);
  const int64_t threads = tile.threads;
  if (failed(checkTile(kb, "rms_norm", spec.tile(tile), tile)))
    return failure();
  out.name = std::string(withResidual ? "m2c_add_rms_norm_h" : "m2c_rms_norm_h") +
             std::to_string(C);
  if (w.type != plan::ElementType::BF16)
    out.name += std::string("_w") + shortTypeName(w.type);

  SmallVector<FuncParam> params = {inputParam(kb, x, 0)};
  if (withResidual)
    params.push_back(inputParam(kb, spec.inputs[1], 1));
  params.push_back(inputParam(kb, w, withResidual ? 2 : 1));
  if (withResidual)
    params.push_back(outputParam(kb, spec.outputs[0], 0));
  params.push_back(outputParam(kb, y, withResidual ? 1 : 0));
  SmallVector<Value> args =
      kb.beginKernel(out.name, params, {threads, 1, 1},
                     {rowsExtent(x), plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
  RmsNormRow row;
  row.x = args[0];
  row.residual = withResidual ? args[1] : Value();
  row.weight = args[withResidual ? 2 : 1];
  row.sums = withResidual ? args[3] : Value();
  row.ys = args.back();
  row.yType = y.type;
  row.row = kb.blockId(gpu::Dimension::x);
  row.cols = C;
  row.threads = threads;
  row.eps = spec.typedAttrs<plan::NormAttrs>().eps;
  row.scratchName = out.name + "_partials";
  emitRmsNormRow(kb, row);
  return success();
}

} // namespace m2c::ptx
