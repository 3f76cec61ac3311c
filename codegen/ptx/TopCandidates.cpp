//===- TopCandidates.cpp - Each logits row's K best, for sampling ---------===//
//
// The lm_head's last two launches. Each logit becomes one u64 key, an
// order-preserving u32 of its value above its complemented index, so keys
// are unique and the largest ranks first exactly as sampling::candidateKey
// (larger value, then the lower index). Launch 1: one block per 4096-logit
// chunk of a row sorts the chunk's keys in shared memory (bitonic, no
// atomics) and keeps its K best in the workspace. Launch 2: one block per
// row sorts the chunks' survivors and writes the K best, best first. A
// single block per row with a radix select over the whole row took 370 us
// per row on the card (H200; docs/ptx-codegen.md).
//
//===----------------------------------------------------------------------===//

#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

namespace m2c::ptx {

using namespace mlir;

Value orderedFloatBits(KernelBuilder &kb, Value value) {
  Value zero = kb.cf32(0.0);
  value = kb.select(arith::CmpFOp::create(kb.b, arith::CmpFPredicate::OEQ, value, zero), zero,
                    value); // -0 ranks as +0
  Value bits = arith::BitcastOp::create(kb.b, kb.i32(), value);
  Value negative = arith::CmpIOp::create(kb.b, arith::CmpIPredicate::slt, bits, kb.ci32(0));
  return kb.select(negative, arith::XOrIOp::create(kb.b, bits, kb.ci32(-1)),
                   arith::OrIOp::create(kb.b, bits, kb.ci32(INT32_MIN)));
}

namespace {

constexpr int64_t kThreads = 512;
/// Keys sorted per block: 32 KB of shared memory.
constexpr int64_t kSortSize = 4096;
constexpr int64_t kLogSortSize = 12;

Value i64Const(KernelBuilder &kb, int64_t value) {
  return arith::ConstantIntOp::create(kb.b, kb.b.getI64Type(), value);
}

/// The key of logit `value` at index `i` (index): unique, larger ranks first.
Value candidateKey(KernelBuilder &kb, Value value, Value i) {
  Type i64 = kb.b.getI64Type();
  Value high = arith::ShLIOp::create(
      kb.b, arith::ExtUIOp::create(kb.b, i64, orderedFloatBits(kb, value)), i64Const(kb, 32));
  Value low = arith::ExtUIOp::create(
      kb.b, i64, arith::XOrIOp::create(kb.b, kb.toI32(i), kb.ci32(-1)));
  return arith::OrIOp::create(kb.b, high, low);
}

Value indexOfKey(KernelBuilder &kb, Value key) {
  return arith::XOrIOp::create(kb.b, arith::TruncIOp::create(kb.b, kb.i32(), key), kb.ci32(-1));
}

/// Sorts the kSortSize keys of `keys` (workgroup memref<kSortSize x i64>)
/// in descending order: a bitonic network, one barrier per stage.
void sortDescending(KernelBuilder &kb, Value keys) {
  Value tid = kb.threadId();
  Value one = kb.idx(1);
  kb.loop(one, kb.idx(kLogSortSize + 1), one, [&](Value stage) {
    Value size = arith::ShLIOp::create(kb.b, one, stage); // sequences of `size` merge
    kb.loop(kb.idx(0), stage, one, [&](Value step) {
      // stride = size >> (step + 1) = 1 << lg
      Value lg = kb.sub(stage, kb.add(step, 1));
      Value stride = arith::ShLIOp::create(kb.b, one, lg);
      kb.loop(tid, kb.idx(kSortSize / 2), kb.idx(kThreads), [&](Value c) {
        // Comparator c joins i and i + stride, i = (c / stride) * 2 stride + c % stride.
        Value low = arith::AndIOp::create(kb.b, c, kb.sub(stride, one));
        Value high = arith::ShLIOp::create(kb.b, arith::ShRUIOp::create(kb.b, c, lg),
                                           kb.add(lg, 1));
        Value i = arith::OrIOp::create(kb.b, high, low);
        Value j = kb.add(i, stride);
        Value a = kb.loadScalar(keys, {i}), b = kb.loadScalar(keys, {j});
        // Descending where i's bit `size` is clear, ascending where set:
        // the merged whole ends descending.
        Value descending = kb.eq(arith::AndIOp::create(kb.b, i, size), kb.idx(0));
        Value outOfOrder =
            arith::CmpIOp::create(kb.b, arith::CmpIPredicate::ult, a, b); // a below b
        Value swap = kb.select(descending, outOfOrder,
                               arith::CmpIOp::create(kb.b, arith::CmpIPredicate::ugt, a, b));
        kb.ifThen(swap, [&] {
          kb.storeScalar(b, keys, {i});
          kb.storeScalar(a, keys, {j});
        });
      });
      kb.barrier();
    });
  });
}

} // namespace

int64_t topCandidatesWorkspace(int64_t rows, int64_t vocab, int64_t count) {
  return rows * ceilDiv(vocab, kSortSize) * count * 8;
}

LogicalResult emitTopCandidates(KernelBuilder &kb, const std::string &name,
                                const TensorInfo &logits, int64_t logitsOutput,
                                const TensorInfo &ids, const TensorInfo &values,
                                LaunchExtent rows, int64_t maxRows, int64_t workspaceOffset,
                                KernelBinary &out) {
  const int64_t V = logits.shape[1], K = ids.shape[1];
  const int64_t chunks = ceilDiv(V, kSortSize);
  if (K < 1 || K > V || chunks * K > kSortSize || values.shape[1] != K ||
      ids.type != plan::ElementType::I32 || values.type != plan::ElementType::F32)
    return unsupported(kb, "lm_head candidates must be i32 ids and f32 values [T, K] with 1 <= "
                           "K <= " + llvm::Twine(kSortSize) + " / ceil(vocab / " +
                               llvm::Twine(kSortSize) + ") (" +
                               llvm::Twine(kSortSize / chunks) + " here), got K = " +
                               llvm::Twine(K));
  Type i64 = kb.b.getI64Type();
  MLIRContext *context = kb.b.getContext();
  FuncParam survivors = {MemRefType::get({maxRows, chunks, K}, IntegerType::get(context, 64)),
                         {KernelParam::Kind::Workspace, workspaceOffset}};

  // Launch 1: chunk c of row t keeps its K best keys.
  {
    SmallVector<Value> args = kb.beginKernel(
        name + "_chunks", {outputParam(kb, logits, logitsOutput), survivors}, {kThreads, 1, 1},
        {LaunchExtent::fixed(chunks), rows, LaunchExtent::fixed(1)}, out);
    out.launches.back().forCandidates = true;
    Value row = args[0], kept = args[1];
    Value chunk = kb.blockId(gpu::Dimension::x), token = kb.blockId(gpu::Dimension::y);
    Value keys = kb.shared(name + "_chunk_keys", {kSortSize}, i64);
    Value first = kb.mul(chunk, kSortSize);
    Value tid = kb.threadId();
    kb.loop(tid, kb.idx(kSortSize), kb.idx(kThreads), [&](Value e) {
      Value i = kb.add(first, e);
      // Past the vocabulary: 0, below every key.
      Value key = kb.ifElse(
          kb.ult(i, V), {i64},
          [&]() -> SmallVector<Value> {
            return {candidateKey(kb, kb.loadScalar(row, {token, i}), i)};
          },
          [&]() -> SmallVector<Value> { return {i64Const(kb, 0)}; })[0];
      kb.storeScalar(key, keys, {e});
    });
    kb.barrier();
    sortDescending(kb, keys);
    kb.ifThen(kb.ult(tid, K), [&] {
      kb.storeScalar(kb.loadScalar(keys, {tid}), kept, {token, chunk, tid});
    });
  }

  // Launch 2: row t's K best of the chunks' survivors, best first.
  SmallVector<Value> args = kb.beginKernel(
      name, {survivors, outputParam(kb, logits, logitsOutput),
             outputParam(kb, ids, logitsOutput + 2), outputParam(kb, values, logitsOutput + 3)},
      {kThreads, 1, 1}, {rows, LaunchExtent::fixed(1), LaunchExtent::fixed(1)}, out);
  out.launches.back().forCandidates = true;
  Value kept = args[0], row = args[1], outIds = args[2], outValues = args[3];
  Value token = kb.blockId(gpu::Dimension::x);
  Value keys = kb.shared(name + "_keys", {kSortSize}, i64);
  Value tid = kb.threadId();
  kb.loop(tid, kb.idx(kSortSize), kb.idx(kThreads), [&](Value e) {
    Value key = kb.ifElse(
        kb.ult(e, chunks * K), {i64},
        [&]() -> SmallVector<Value> {
          return {kb.loadScalar(kept, {token, kb.divu(e, K), kb.remu(e, K)})};
        },
        [&]() -> SmallVector<Value> { return {i64Const(kb, 0)}; })[0];
    kb.storeScalar(key, keys, {e});
  });
  kb.barrier();
  sortDescending(kb, keys);
  // The value is re-read from the row: the key folds -0 into +0.
  kb.ifThen(kb.ult(tid, K), [&] {
    Value id = indexOfKey(kb, kb.loadScalar(keys, {tid}));
    kb.storeScalar(id, outIds, {token, tid});
    kb.storeScalar(kb.loadScalar(row, {token, kb.toIndex(id)}), outValues, {token, tid});
  });
  return success();
}

} // namespace m2c::ptx
