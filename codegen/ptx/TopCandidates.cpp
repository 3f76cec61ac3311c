//===- TopCandidates.cpp - Each logits row's K best, for sampling ---------===//
//
// The lm_head's last two launches. Each logit becomes one u64 key, an
// order-preserving u32 of its value above its complemented index, so keys
// are unique and the largest ranks first exactly as sampling::candidateKey
// (larger value, then the lower index). Launch 1: one block per 4096-logit
// chunk of a row keeps the chunk's best K' (K rounded up to a power of two)
// in the workspace; launch 2: one block per row keeps the best K' of the
// chunks' and writes the first K, best first. Both are bitonic top-k
// networks in shared memory (no atomics): sort runs of K' with alternating
// directions, then halve repeatedly by taking the elementwise larger of a
// descending run and the ascending run after it and re-sorting that. A
// radix select in one block per row took about 370 us per row on the card,
// a full bitonic sort of each chunk 87 us at batch 1 and 457 us at batch 32
// (H200; docs/ptx-codegen.md).
//
//===----------------------------------------------------------------------===//

#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/Support/MathExtras.h"

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

/// One step of a bitonic network over the first 2 * `pairs` keys of `keys`
/// (workgroup memref<kSortSize x i64>): key i (bit lg of i clear) against
/// key i + 2^lg, put in descending order where bit dirLg of i is clear,
/// ascending where set. Ends with a barrier.
void exchangeStep(KernelBuilder &kb, Value keys, int64_t pairs, Value lg, Value dirLg) {
  Value one = kb.idx(1);
  Value stride = arith::ShLIOp::create(kb.b, one, lg);
  kb.loop(kb.threadId(), kb.idx(pairs), kb.idx(kThreads), [&](Value c) {
    // i = (c / stride) * 2 stride + c % stride.
    Value low = arith::AndIOp::create(kb.b, c, kb.sub(stride, one));
    Value high =
        arith::ShLIOp::create(kb.b, arith::ShRUIOp::create(kb.b, c, lg), kb.add(lg, 1));
    Value i = arith::OrIOp::create(kb.b, high, low);
    Value j = kb.add(i, stride);
    Value a = kb.loadScalar(keys, {i}), b = kb.loadScalar(keys, {j});
    Value descending =
        kb.eq(arith::AndIOp::create(kb.b, arith::ShRUIOp::create(kb.b, i, dirLg), one),
              kb.idx(0));
    Value swap = kb.select(descending,
                           arith::CmpIOp::create(kb.b, arith::CmpIPredicate::ult, a, b),
                           arith::CmpIOp::create(kb.b, arith::CmpIPredicate::ugt, a, b));
    kb.ifThen(swap, [&] {
      kb.storeScalar(b, keys, {i});
      kb.storeScalar(a, keys, {j});
    });
  });
  kb.barrier();
}

/// Sorts the first n keys into runs of `run` (a power of two) whose
/// directions alternate, descending first: the first stages of a bitonic
/// sort.
void sortRuns(KernelBuilder &kb, Value keys, int64_t n, int64_t run) {
  Value one = kb.idx(1);
  kb.loop(one, kb.idx(llvm::Log2_64(run) + 1), one, [&](Value stage) {
    kb.loop(kb.idx(0), stage, one, [&](Value step) {
      exchangeStep(kb, keys, n / 2, kb.sub(stage, kb.add(step, 1)), stage);
    });
  });
}

/// Keeps the best `run` of the first n keys, held as runs of `run` with
/// alternating directions, in keys [0, run) descending: each round takes
/// the elementwise larger of a descending run and the ascending run after
/// it (their best `run`, as a bitonic sequence) and re-sorts it, halving n.
void keepBestRun(KernelBuilder &kb, Value keys, int64_t n, int64_t run) {
  const int64_t lgRun = llvm::Log2_64(run);
  Value tid = kb.threadId();
  for (; n > run; n /= 2) {
    const int64_t half = n / 2, perThread = ceilDiv(half, kThreads);
    SmallVector<Value> larger;
    for (int64_t part = 0; part < perThread; ++part) {
      Value c = kb.add(tid, part * kThreads);
      larger.push_back(kb.ifElse(
          kb.ult(c, half), {kb.b.getI64Type()},
          [&]() -> SmallVector<Value> {
            // Pair p of runs (2p, 2p + 1), offset o: keys 2p run + o, and run after.
            Value o = arith::AndIOp::create(kb.b, c, kb.idx(run - 1));
            Value p = arith::ShRUIOp::create(kb.b, c, kb.idx(lgRun));
            Value a = arith::OrIOp::create(
                kb.b, arith::ShLIOp::create(kb.b, p, kb.idx(lgRun + 1)), o);
            Value x = kb.loadScalar(keys, {a}), y = kb.loadScalar(keys, {kb.add(a, run)});
            return {arith::MaxUIOp::create(kb.b, x, y)};
          },
          [&]() -> SmallVector<Value> { return {i64Const(kb, 0)}; })[0]);
    }
    kb.barrier();
    for (int64_t part = 0; part < perThread; ++part) {
      Value c = kb.add(tid, part * kThreads);
      kb.ifThen(kb.ult(c, half), [&] { kb.storeScalar(larger[part], keys, {c}); });
    }
    kb.barrier();
    Value one = kb.idx(1);
    kb.loop(kb.idx(0), kb.idx(lgRun), one, [&](Value step) {
      exchangeStep(kb, keys, half / 2, kb.sub(kb.idx(lgRun - 1), step), kb.idx(lgRun));
    });
  }
}

} // namespace

/// Candidates kept per chunk: K rounded up to a power of two.
int64_t keptPerChunk(int64_t count) { return llvm::PowerOf2Ceil(count); }

int64_t topCandidatesWorkspace(int64_t rows, int64_t vocab, int64_t count) {
  return rows * ceilDiv(vocab, kSortSize) * keptPerChunk(count) * 8;
}

LogicalResult emitTopCandidates(KernelBuilder &kb, const std::string &name,
                                const TensorInfo &logits, int64_t logitsOutput,
                                const TensorInfo &ids, const TensorInfo &values,
                                plan::GpuExtent rows, int64_t maxRows, int64_t workspaceOffset,
                                KernelBinary &out) {
  const int64_t V = logits.shape[1], K = ids.shape[1];
  const int64_t chunks = ceilDiv(V, kSortSize), kept = keptPerChunk(K);
  const int64_t runs = llvm::PowerOf2Ceil(chunks); // chunks padded to a power of two
  if (K < 1 || K > V || runs * kept > kSortSize || values.shape[1] != K ||
      ids.type != plan::ElementType::I32 || values.type != plan::ElementType::F32)
    return unsupported(kb, "lm_head candidates must be i32 ids and f32 values [T, K] with K "
                           "<= vocab and pow2ceil(K) * pow2ceil(ceil(vocab / " +
                               llvm::Twine(kSortSize) + ")) <= " + llvm::Twine(kSortSize) +
                               ", got K = " + llvm::Twine(K) + " for a vocabulary of " +
                               llvm::Twine(V));
  Type i64 = kb.b.getI64Type();
  MLIRContext *context = kb.b.getContext();
  FuncParam survivors = {
      MemRefType::get({maxRows, chunks, kept}, IntegerType::get(context, 64)),
      {plan::GpuParam::Kind::Workspace, workspaceOffset}};

  // Launch 1: chunk c of row t keeps its best `kept` keys, descending.
  {
    SmallVector<Value> args = kb.beginKernel(
        name + "_chunks", {outputParam(kb, logits, logitsOutput), survivors}, {kThreads, 1, 1},
        {plan::GpuExtent::fixed(chunks), rows, plan::GpuExtent::fixed(1)}, out);
    out.launches.back().forCandidates = true;
    Value row = args[0], best = args[1];
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
    sortRuns(kb, keys, kSortSize, kept);
    keepBestRun(kb, keys, kSortSize, kept);
    kb.ifThen(kb.ult(tid, kept), [&] {
      kb.storeScalar(kb.loadScalar(keys, {tid}), best, {token, chunk, tid});
    });
  }

  // Launch 2: row t's K best of the chunks' survivors, best first. Odd
  // chunks load reversed, so the runs alternate as keepBestRun needs.
  SmallVector<Value> args = kb.beginKernel(
      name, {survivors, outputParam(kb, logits, logitsOutput),
             outputParam(kb, ids, logitsOutput + 2), outputParam(kb, values, logitsOutput + 3)},
      {kThreads, 1, 1}, {rows, plan::GpuExtent::fixed(1), plan::GpuExtent::fixed(1)}, out);
  out.launches.back().forCandidates = true;
  Value best = args[0], row = args[1], outIds = args[2], outValues = args[3];
  Value token = kb.blockId(gpu::Dimension::x);
  Value keys = kb.shared(name + "_keys", {kSortSize}, i64);
  Value tid = kb.threadId();
  kb.loop(tid, kb.idx(runs * kept), kb.idx(kThreads), [&](Value e) {
    Value r = kb.divu(e, kept), o = kb.remu(e, kept);
    Value key = kb.ifElse(
        kb.ult(r, chunks), {i64},
        [&]() -> SmallVector<Value> {
          Value odd = kb.eq(kb.remu(r, 2), kb.idx(1));
          Value at = kb.select(odd, kb.sub(kb.idx(kept - 1), o), o);
          return {kb.loadScalar(best, {token, r, at})};
        },
        [&]() -> SmallVector<Value> { return {i64Const(kb, 0)}; })[0];
    kb.storeScalar(key, keys, {e});
  });
  kb.barrier();
  keepBestRun(kb, keys, runs * kept, kept);
  // The value is re-read from the row: the key folds -0 into +0.
  kb.ifThen(kb.ult(tid, K), [&] {
    Value id = indexOfKey(kb, kb.loadScalar(keys, {tid}));
    kb.storeScalar(id, outIds, {token, tid});
    kb.storeScalar(kb.loadScalar(row, {token, kb.toIndex(id)}), outValues, {token, tid});
  });
  return success();
}

} // namespace m2c::ptx
