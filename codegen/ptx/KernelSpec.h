//===- KernelSpec.h - A plan kernel's signature, resolved ------*- C++ -*-===//
//
// What a kernel family needs to know about one plan kernel, with the plan's
// indirections resolved: operand element types and static shapes, the
// attributes that change the code, and the variant chosen for it. Two plan
// kernels with equal KernelSpec keys share one compiled binary. Internal to
// codegen/ptx.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_KERNELSPEC_H
#define M2C_CODEGEN_PTX_KERNELSPEC_H

#include "codegen/tiling/Tiles.h"
#include "runtime/plan/Plan.h"

#include "mlir/Support/LLVM.h"

#include <map>
#include <string>
#include <vector>

namespace m2c::ptx {

/// One operand. Buffers are [rows, cols] with rows = plan.maxTokens when
/// they scale with the step (tokenRows); weights have their own shape; the
/// token-indexed entry inputs are [maxTokens] i32; block tables are a flat
/// i32 array whose row length is the MaxBlocks kernel parameter.
struct TensorInfo {
  plan::Operand::Kind kind = plan::Operand::Kind::Buffer;
  plan::ElementType type = plan::ElementType::F32;
  std::vector<int64_t> shape;
  bool tokenRows = false;
  plan::EntryInput input = plan::EntryInput::TokenIds; // kind == Input
  /// Weights only: packed in this format (then `type` is the logical type
  /// and the bytes are plan::Weight::storageBytes(); WeightOperand reads them).
  plan::Quantization quantization = plan::Quantization::None;

  std::string str() const;
};

/// How a linear layer is lowered.
enum class LinearVariant : uint8_t {
  Gemv, ///< decode: one warp per few output rows, 16-byte loads across K
  Mma,  ///< prefill: mma.sync m16n8k16 bf16 tiles
  Wgmma, ///< prefill on sm_90a: wgmma tiles, weights through TMA
};

struct KernelSpec {
  plan::KernelKind kind = plan::KernelKind::Add;
  std::vector<TensorInfo> inputs, outputs;
  /// The kernel's attributes minus "layer" (which only moves a pointer):
  /// part of the signature.
  plan::AttrMap attrs;
  int64_t maxTokens = 0;
  /// Attention only.
  plan::KvCacheSpec kvCache;
  /// Linear only.
  LinearVariant linear = LinearVariant::Gemv;
  /// The kernel runs in decode steps (few tokens, one per sequence).
  bool decode = false;
  /// moe_experts only: sorted pairs and grouped tensor-core GEMMs (prefill)
  /// rather than per-pair GEMVs (decode).
  bool moeGrouped = false;

  /// The kind's typed attributes (runtime/plan/KernelAttrs.h).
  template <class A> A typedAttrs() const { return plan::readAttrs<A>(attrs); }
  /// The target the kernel is built for (set when it is built; the cost
  /// model's defaults depend on it).
  tiling::TargetInfo target = *tiling::lookupTarget("sm_90");
  /// The kernel's tile of family T (codegen/tiling/Tiles.h): the tiling
  /// pass's "tile.<name>" attributes over `defaults`, the cost model's own
  /// choice, which a plan that was not tiled keeps.
  template <class T> T tile(const T &defaults) const {
    tiling::TileParams params;
    for (const auto &[key, value] : attrs)
      if (key.compare(0, 5, "tile.") == 0)
        params[key.substr(5)] = plan::attrToInt(value);
    return tiling::fromParams(params, defaults);
  }
  /// Whether the tiling pass chose the wgmma variant (sm_90a).
  bool wgmmaTile() const {
    auto it = attrs.find("tile.wgmma");
    return it != attrs.end() && it->second != 0;
  }
  std::string key() const;
};

/// Element type names used in kernel names: "f32", "bf16", ...
const char *shortTypeName(plan::ElementType type);
int64_t byteSize(plan::ElementType type);

} // namespace m2c::ptx

#endif // M2C_CODEGEN_PTX_KERNELSPEC_H
