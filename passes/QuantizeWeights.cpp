//===- QuantizeWeights.cpp - Quantized storage formats per module class ---===//

#include "passes/Passes.h"
#include "runtime/plan/Quantization.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinAttributes.h"

namespace m2c {
#define GEN_PASS_DEF_QUANTIZEWEIGHTS
#include "passes/Passes.h.inc"
} // namespace m2c

using namespace mlir;

namespace {

/// Option spelling -> the plan's format name (empty for none).
FailureOr<StringRef> formatFor(StringRef option) {
  m2c::StatusOr<m2c::plan::Quantization> q = m2c::plan::parseQuantizationOption(option.str());
  if (!q)
    return failure();
  if (*q == m2c::plan::Quantization::None)
    return StringRef();
  return StringRef(m2c::plan::quantFormat(*q).name);
}

/// True when `module` is a whole dotted component run of `name`.
bool namesModule(StringRef name, StringRef module) {
  size_t pos = 0;
  while ((pos = name.find(module, pos)) != StringRef::npos) {
    size_t end = pos + module.size();
    if ((pos == 0 || name[pos - 1] == '.') && (end == name.size() || name[end] == '.'))
      return true;
    pos = end;
  }
  return false;
}

struct QuantizeWeightsPass : public m2c::impl::QuantizeWeightsBase<QuantizeWeightsPass> {
  using QuantizeWeightsBase::QuantizeWeightsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    struct Class {
      const char *option;
      std::string value;
      FailureOr<StringRef> format;
    };
    Class classes[] = {{"attn", attn, formatFor(attn)},
                       {"experts", experts, formatFor(experts)},
                       {"lm-head", lmHead, formatFor(lmHead)}};
    for (Class &c : classes)
      if (failed(c.format)) {
        module.emitError("m2c-quantize-weights: option ")
            << c.option << "=" << c.value << " is not one of "
            << m2c::plan::quantizationOptions();
        return signalPassFailure();
      }
    SmallVector<StringRef> keep;
    if (auto list = module->getAttrOfType<ArrayAttr>("m2c.modules_to_not_convert"))
      for (Attribute item : list)
        if (auto name = dyn_cast<StringAttr>(item))
          keep.push_back(name.getValue());

    for (auto global : module.getOps<ml_program::GlobalOp>()) {
      StringRef symbol = global.getSymName();
      auto binding = global->getAttrOfType<StringAttr>("m2c.checkpoint");
      StringRef name = binding ? binding.getValue() : symbol;
      int cls = -1;
      if (symbol.contains(".self_attn.") && symbol.ends_with("_proj.weight"))
        cls = 0;
      else if (symbol.contains(".block_sparse_moe.experts."))
        cls = 1;
      else if (symbol == "lm_head.weight")
        cls = 2;
      if (cls < 0 || classes[cls].format->empty())
        continue;
      if (llvm::any_of(keep, [&](StringRef module) { return namesModule(name, module); })) {
        ++numKept;
        continue;
      }
      global->setAttr("m2c.quantization", StringAttr::get(&getContext(), *classes[cls].format));
      ++numQuantized;
    }
  }
};

} // namespace
