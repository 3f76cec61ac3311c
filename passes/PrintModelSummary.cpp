//===- PrintModelSummary.cpp - Size and op counts of a model module -------===//

#include "passes/Passes.h"
#include "runtime/support/HumanBytes.h"

#include "dialects/attn/AttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace m2c {
#define GEN_PASS_DEF_PRINTMODELSUMMARY
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

std::string humanCount(double count) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (count >= 1e9)
    os << llvm::format("%.2fB", count / 1e9);
  else if (count >= 1e6)
    os << llvm::format("%.2fM", count / 1e6);
  else
    os << llvm::format("%.0f", count);
  return text;
}

struct PrintModelSummaryPass
    : public m2c::impl::PrintModelSummaryBase<PrintModelSummaryPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::raw_ostream &os = llvm::outs();
    double params = 0, bytes = 0;
    int64_t weights = 0, entries = 0;
    module.walk([&](ml_program::GlobalOp global) {
      auto type = dyn_cast<RankedTensorType>(global.getType());
      if (!type || !type.hasStaticShape())
        return;
      ++weights;
      double elements = static_cast<double>(type.getNumElements());
      params += elements;
      bytes += elements * type.getElementTypeBitWidth() / 8.0;
    });
    if (auto modelType = module->getAttrOfType<StringAttr>("m2c.model_type"))
      os << "model: " << modelType.getValue() << "\n";
    os << "weights: " << weights << " symbols, " << humanCount(params) << " parameters, "
       << m2c::humanBytes(bytes) << "\n";

    for (auto func : module.getOps<func::FuncOp>()) {
      if (!func->hasAttr("m2c.entry"))
        continue;
      ++entries;
      llvm::MapVector<StringRef, int64_t> counts;
      for (StringRef name : {"attn.gqa", "moe.route", "moe.norm_route", "moe.experts", "norm.rms",
                             "norm.add_rms", "norm.rms_logits", "linalg.matmul", "tensor.gather"})
        counts[name] = 0;
      m2c::attn::KvCacheType cache;
      func.walk([&](Operation *op) {
        StringRef name = op->getName().getStringRef();
        if (counts.count(name))
          ++counts[name];
        if (auto gqa = dyn_cast<m2c::attn::GqaOp>(op))
          cache = gqa.getCache().getType();
      });
      os << "entry @" << func.getSymName() << ":";
      for (auto &[name, count] : counts)
        os << " " << name << "=" << count;
      os << "\n";
      if (cache && entries == 1) {
        double perToken = 2.0 * cache.getLayers() * cache.getKvHeads() * cache.getHeadDim() *
                          cache.getDtype().getIntOrFloatBitWidth() / 8.0;
        os << "kv cache: " << llvm::format("%.1f KiB", perToken / 1024.0) << " per token ("
           << cache.getDtype() << ", block size " << cache.getBlockSize() << ")\n";
      }
    }
    numWeights = weights;
    numEntries = entries;
    markAllAnalysesPreserved();
  }
};

} // namespace
