//===- TopCandidates.cpp - Each logits row's K best, for sampling ---------===//
//
// The lm_head's last launch: one block per token finds the row's K best
// logits by radix select over an order-preserving u32 of each value (three
// passes of 11, 11 and 10 bits over the row, histograms in shared memory),
// breaks a tie at the threshold by the lowest indices (three more passes
// over the complemented index, only when the threshold's value is shared),
// collects the K in shared memory and writes them best first, ranked by
// counting. The order is sampling::candidateKey's, so the CPU backend's
// topCandidates gives the same ids.
//
//===----------------------------------------------------------------------===//

#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

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
constexpr int64_t kWarps = kThreads / 32;
/// Digit widths of the three passes over a 32-bit key, high bits first.
constexpr int64_t kDigitBits[3] = {11, 11, 10};
constexpr int64_t kMaxBins = 1 << 11;

Value cmpu(KernelBuilder &kb, arith::CmpIPredicate predicate, Value a, Value c) {
  return arith::CmpIOp::create(kb.b, predicate, a, c);
}

/// Radix select state, uniform over the block: the bits chosen so far
/// (`prefix` under `mask`) and how many keys are still to be taken at or
/// below them.
struct Selection {
  Value prefix, mask, remaining; // i32
  Value lastBinCount;            // i32: keys equal to the final prefix
};

/// Three passes over the first `extent` elements of the row narrowing `sel`
/// to the exact remaining-th largest key among those `keyOf` admits.
/// keyOf(i) returns the key and whether element i competes (i1). With an
/// extent of 0 the passes count nothing and the result is meaningless.
Selection radixSelect(KernelBuilder &kb, Value hist, Value picked, Value extent, Selection sel,
                      llvm::function_ref<std::pair<Value, Value>(Value i)> keyOf) {
  Value tid = kb.threadId();
  Value lane = kb.laneId();
  int64_t shift = 32;
  for (int64_t bits : kDigitBits) {
    shift -= bits;
    const int64_t bins = int64_t(1) << bits, perLane = bins / 32;
    const int64_t digitMask = bins - 1;
    kb.loop(tid, kb.idx(bins), kb.idx(kThreads),
            [&](Value b) { kb.storeScalar(kb.ci32(0), hist, {b}); });
    kb.barrier();
    Value prefix = sel.prefix, mask = sel.mask;
    kb.loop(tid, extent, kb.idx(kThreads), [&](Value i) {
      auto [key, competes] = keyOf(i);
      Value matches = kb.andi(competes, cmpu(kb, arith::CmpIPredicate::eq,
                                             arith::AndIOp::create(kb.b, key, mask), prefix));
      kb.ifThen(matches, [&] {
        Value digit = arith::AndIOp::create(
            kb.b, arith::ShRUIOp::create(kb.b, key, kb.ci32(shift)), kb.ci32(digitMask));
        memref::AtomicRMWOp::create(
            kb.b, arith::AtomicRMWKindAttr::get(kb.b.getContext(), arith::AtomicRMWKind::addi),
            kb.ci32(1), hist, ValueRange{arith::IndexCastUIOp::create(kb.b, kb.indexType(), digit)});
      });
    });
    kb.barrier();
    // Warp 0 finds the bin holding the remaining-th largest key: lane l
    // owns bins [l * perLane, (l + 1) * perLane), and a suffix sum over the
    // lanes counts the keys in higher bins.
    kb.ifThen(kb.ult(kb.threadId(), 32), [&] {
      Value first = kb.mul(lane, perLane);
      Value mine = kb.loop(kb.idx(0), kb.idx(perLane), kb.idx(1), {kb.ci32(0)},
                           [&](Value j, ValueRange acc) -> SmallVector<Value> {
                             Value c = kb.loadScalar(hist, {kb.add(first, j)});
                             return {arith::AddIOp::create(kb.b, acc[0], c)};
                           })[0];
      Value suffix = mine;
      for (int64_t offset = 1; offset < 32; offset *= 2) {
        auto shuffle = gpu::ShuffleOp::create(kb.b, suffix, kb.ci32(offset), kb.ci32(32),
                                              gpu::ShuffleMode::DOWN);
        suffix = kb.select(shuffle.getValid(),
                           arith::AddIOp::create(kb.b, suffix, shuffle.getShuffleResult()),
                           suffix);
      }
      Value above = arith::SubIOp::create(kb.b, suffix, mine);
      Value here = kb.andi(cmpu(kb, arith::CmpIPredicate::slt, above, sel.remaining),
                           cmpu(kb, arith::CmpIPredicate::sle, sel.remaining, suffix));
      kb.ifThen(here, [&] {
        // Walk this lane's bins from the top; the first that reaches the
        // remaining count is the digit. State: keys in higher bins, the
        // digit, keys above it, keys in it (all i32: predicates carried
        // through a loop made sm_80's ptxas spill).
        SmallVector<Value> walk = kb.loop(
            kb.idx(0), kb.idx(perLane), kb.idx(1), {above, kb.ci32(-1), kb.ci32(0), kb.ci32(0)},
            [&](Value j, ValueRange s) -> SmallVector<Value> {
              Value bin = kb.sub(kb.add(first, perLane - 1), j);
              Value c = kb.loadScalar(hist, {bin});
              Value total = arith::AddIOp::create(kb.b, s[0], c);
              Value hit = kb.andi(cmpu(kb, arith::CmpIPredicate::slt, s[1], kb.ci32(0)),
                                  cmpu(kb, arith::CmpIPredicate::sle, sel.remaining, total));
              return {total, kb.select(hit, kb.toI32(bin), s[1]), kb.select(hit, s[0], s[2]),
                      kb.select(hit, c, s[3])};
            });
        kb.storeScalar(walk[1], picked, {kb.idx(0)}); // digit
        kb.storeScalar(walk[2], picked, {kb.idx(1)}); // keys in higher bins
        kb.storeScalar(walk[3], picked, {kb.idx(2)}); // keys in the bin
      });
    });
    kb.barrier();
    Value digit = kb.loadScalar(picked, {kb.idx(0)});
    Value higher = kb.loadScalar(picked, {kb.idx(1)});
    sel.lastBinCount = kb.loadScalar(picked, {kb.idx(2)});
    sel.remaining = arith::SubIOp::create(kb.b, sel.remaining, higher);
    sel.prefix = arith::OrIOp::create(kb.b, sel.prefix,
                                      arith::ShLIOp::create(kb.b, digit, kb.ci32(shift)));
    sel.mask = arith::OrIOp::create(kb.b, sel.mask, kb.ci32(digitMask << shift));
    // `picked` is rewritten by the next pass's warp 0 only after its own
    // two barriers, which every thread reaches after reading it here.
  }
  return sel;
}

} // namespace

LogicalResult emitTopCandidates(KernelBuilder &kb, const std::string &name,
                                const TensorInfo &logits, int64_t logitsOutput,
                                const TensorInfo &ids, const TensorInfo &values,
                                LaunchExtent rows, KernelBinary &out) {
  const int64_t V = logits.shape[1], K = ids.shape[1];
  if (K < 1 || K > kThreads || K > V || values.shape[1] != K ||
      ids.type != plan::ElementType::I32 || values.type != plan::ElementType::F32)
    return unsupported(kb, "lm_head candidates must be i32 ids and f32 values [T, K] with "
                           "1 <= K <= min(vocab, " + llvm::Twine(kThreads) + "), got K = " +
                               llvm::Twine(K));
  SmallVector<FuncParam> params = {outputParam(kb, logits, logitsOutput),
                                   outputParam(kb, ids, logitsOutput + 2),
                                   outputParam(kb, values, logitsOutput + 3)};
  SmallVector<Value> args =
      kb.beginKernel(name, params, {kThreads, 1, 1}, {rows, LaunchExtent::fixed(1),
                                                      LaunchExtent::fixed(1)}, out);
  Value row = args[0], outIds = args[1], outValues = args[2];
  Value token = kb.blockId(gpu::Dimension::x);
  Value hist = kb.shared(name + "_hist", {kMaxBins}, kb.i32());
  Value picked = kb.shared(name + "_picked", {4}, kb.i32());
  Value counter = kb.shared(name + "_count", {1}, kb.i32());
  Value best = kb.shared(name + "_best", {K}, kb.b.getI64Type());
  Value tid = kb.threadId();
  kb.ifThen(kb.eq(tid, kb.idx(0)), [&] { kb.storeScalar(kb.ci32(0), counter, {kb.idx(0)}); });

  Value yes = arith::ConstantIntOp::create(kb.b, kb.b.getI1Type(), 1);
  auto valueKey = [&](Value i) { return orderedFloatBits(kb, kb.loadScalar(row, {token, i})); };
  auto indexKey = [&](Value i) { // larger for lower indices
    return arith::XOrIOp::create(kb.b, kb.toI32(i), kb.ci32(-1)).getResult();
  };

  // The K-th largest value key.
  Selection byValue = radixSelect(kb, hist, picked, kb.idx(V), {kb.ci32(0), kb.ci32(0), kb.ci32(K), {}},
                                  [&](Value i) { return std::make_pair(valueKey(i), yes); });
  Value threshold = byValue.prefix;
  // Ties at the threshold: the `remaining` lowest indices among them. With
  // no surplus tie every one is taken (index key threshold 0).
  Value surplus = cmpu(kb, arith::CmpIPredicate::sgt, byValue.lastBinCount, byValue.remaining);
  // The passes run over an empty extent when there is none: a branch
  // around them made sm_80's ptxas spill (nested divergent loops).
  Selection byIndex = radixSelect(
      kb, hist, picked, kb.select(surplus, kb.idx(V), kb.idx(0)),
      {kb.ci32(0), kb.ci32(0), byValue.remaining, {}}, [&](Value i) {
        Value tied = cmpu(kb, arith::CmpIPredicate::eq, valueKey(i), threshold);
        return std::make_pair(indexKey(i), tied);
      });
  Value indexThreshold = kb.select(surplus, byIndex.prefix, kb.ci32(0));

  // Collect the K in shared memory, in atomic order, as u64 keys (value key
  // above the index key: unique, and ordered as candidateKey).
  Type i64 = kb.b.getI64Type();
  kb.loop(tid, kb.idx(V), kb.idx(kThreads), [&](Value i) {
    Value key = valueKey(i);
    Value inKey = indexKey(i);
    Value take = arith::OrIOp::create(
        kb.b, cmpu(kb, arith::CmpIPredicate::ugt, key, threshold),
        kb.andi(cmpu(kb, arith::CmpIPredicate::eq, key, threshold),
                cmpu(kb, arith::CmpIPredicate::uge, inKey, indexThreshold)));
    kb.ifThen(take, [&] {
      Value slot = memref::AtomicRMWOp::create(
          kb.b, arith::AtomicRMWKindAttr::get(kb.b.getContext(), arith::AtomicRMWKind::addi),
          kb.ci32(1), counter, ValueRange{kb.idx(0)});
      Value wide = arith::OrIOp::create(
          kb.b,
          arith::ShLIOp::create(kb.b, arith::ExtUIOp::create(kb.b, i64, key),
                                arith::ConstantIntOp::create(kb.b, i64, 32)),
          arith::ExtUIOp::create(kb.b, i64, inKey));
      kb.ifThen(cmpu(kb, arith::CmpIPredicate::slt, slot, kb.ci32(K)),
                [&] { kb.storeScalar(wide, best, {kb.toIndex(slot)}); });
    });
  });
  kb.barrier();
  // Thread c < K ranks its candidate by counting the larger keys, and
  // writes it there; the value is re-read from the row (the key folds -0).
  kb.ifThen(kb.ult(tid, K), [&] {
    Value mine = kb.loadScalar(best, {tid});
    Value rank = kb.loop(kb.idx(0), kb.idx(K), kb.idx(1), {kb.ci32(0)},
                         [&](Value j, ValueRange acc) -> SmallVector<Value> {
                           Value other = kb.loadScalar(best, {j});
                           Value larger = arith::ExtUIOp::create(
                               kb.b, kb.i32(), cmpu(kb, arith::CmpIPredicate::ugt, other, mine));
                           return {arith::AddIOp::create(kb.b, acc[0], larger)};
                         })[0];
    Value id = arith::XOrIOp::create(kb.b, arith::TruncIOp::create(kb.b, kb.i32(), mine),
                                     kb.ci32(-1));
    Value at = kb.toIndex(rank);
    kb.storeScalar(id, outIds, {token, at});
    kb.storeScalar(kb.loadScalar(row, {token, kb.toIndex(id)}), outValues, {token, at});
  });
  return success();
}

} // namespace m2c::ptx
