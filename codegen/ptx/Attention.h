//===- Attention.h - Pieces shared by the attention kernels ----*- C++ -*-===//
//
// The paged-cache addressing and shapes that Attention.cpp (RoPE + KV write,
// per-token attention, the decode combine) and AttentionMma.cpp (prefill
// attention on tensor cores) share. Internal to codegen/ptx.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_ATTENTION_H
#define M2C_CODEGEN_PTX_ATTENTION_H

#include "codegen/ptx/Families.h"

namespace m2c::ptx::attention {

struct Shape {
  int64_t H, KV, D, rotaryDim, half, group, blockSize;
  double theta;
  plan::ElementType cacheType;
  /// The fused QK-norm (inputs 6 and 7): RMSNorm of the whole q and k rows
  /// before RoPE, as the unfused norm.rms kernels would compute it.
  bool qkNorm = false;
  double qkEps = 1e-6;
};

/// A finite "minus infinity" for running maxima: exp(m - m') stays 0, never
/// NaN, when a lane has seen no position yet.
constexpr double kNoScore = -1e30;

/// Query rows per tile of the tensor-core prefill kernel.
constexpr int64_t kPrefillTile = 64;

/// Whether prefill attention runs on tensor cores for this shape: a bf16
/// cache (the tiles are bf16) and head_dim a multiple of 16 up to 128 (the
/// O accumulators' registers). Other prefills use the per-token kernel.
inline bool prefillOnTensorCores(const Shape &s) {
  return s.cacheType == plan::ElementType::BF16 && s.D % 16 == 0 && s.D <= 128;
}

/// The cache slot of (sequence, position): element offset of its K row.
mlir::Value slotBase(KernelBuilder &kb, const Shape &s, mlir::Value tables,
                     mlir::Value maxBlocks, mlir::Value seq, mlir::Value pos);

FuncParam kvLayerParam(KernelBuilder &kb, const Shape &s);
FuncParam maxBlocksParam(KernelBuilder &kb);

/// The roped (and QK-normed) bf16 queries the KV-write launch leaves for
/// the tensor-core kernel: [max_tokens, H * D] at workspace offset 0.
FuncParam queryWorkspaceParam(KernelBuilder &kb, const KernelSpec &spec, const Shape &s);

/// Whether the kPrefillTile tokens from `t0` are one sequence at
/// consecutive positions (tokens past the step's end do not count), as the
/// tensor-core kernel requires; the per-token kernel takes the other tiles.
/// Every thread of the block (at least kPrefillTile threads) must call it.
mlir::Value tileIsContiguous(KernelBuilder &kb, llvm::StringRef name, mlir::Value seqs,
                             mlir::Value positions, mlir::Value t0, mlir::Value numTokens);

/// m2c_attn_prefill_mma_*: flash attention of contiguous 64-token tiles on
/// mma.sync (AttentionMma.cpp).
void buildPrefillMma(KernelBuilder &kb, const KernelSpec &spec, const Shape &s, KernelBinary &out,
                     const std::string &suffix);

} // namespace m2c::ptx::attention

#endif // M2C_CODEGEN_PTX_ATTENTION_H
