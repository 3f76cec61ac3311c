//===- Families.h - The kernel families of the PTX path -------*- C++ -*-===//
//
// One builder per plan kernel kind (or variant). Each appends its
// gpu.func(s) to the KernelBuilder's gpu.module, names the binary, and
// records every launch's geometry and parameter ABI. A builder that cannot
// lower a signature emits a diagnostic at the builder's location and fails.
// Internal to codegen/ptx; docs/ptx-codegen.md describes each design.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_FAMILIES_H
#define M2C_CODEGEN_PTX_FAMILIES_H

#include "codegen/ptx/KernelBuilder.h"
#include "codegen/ptx/KernelSpec.h"
#include "codegen/ptx/WeightOperand.h"

#include <functional>

namespace m2c::ptx {

/// Every kernel kind's builder, build<Kind> for each line of
/// runtime/plan/KernelKinds.def (buildFamily dispatches on it); where a kind
/// has variants, its builder picks one (buildLinear, buildMoeExperts).
#define M2C_KERNEL_KIND(Enum, ...)                                                               \
  mlir::LogicalResult build##Enum(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);
#include "runtime/plan/KernelKinds.def"

// Elementwise.cpp
/// RMSNorm, optionally fused with the residual add that feeds it:
/// inputs (x, weight) -> (y), or (x, residual, weight) -> (x + residual, y).
mlir::LogicalResult emitRmsNorm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out,
                                bool withResidual);

// Gemv.cpp
mlir::LogicalResult buildGemv(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);
/// The decode tail in three launches: the (add +) RMSNorm of each token's
/// row into the workspace; the lm_head GEMV over it and the logits, each
/// warp merging its best logit per token into an atomic key; and one that
/// turns each key into the token's id and zeroes it.
mlir::LogicalResult buildLmHead(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);

// Gemm.cpp
mlir::LogicalResult buildMmaGemm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);
/// Whether the mma.sync GEMM handles this linear's shapes.
bool mmaGemmSupports(const KernelSpec &spec);

// GemmWgmma.cpp
/// The sm_90a prefill GEMM: wgmma tiles, weights through TMA.
mlir::LogicalResult buildWgmmaGemm(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);
/// Whether it handles this linear: f32 activations, an unpacked bf16
/// weight, K a multiple of 64.
bool wgmmaGemmSupports(const KernelSpec &spec);

// TopCandidates.cpp
/// An order-preserving u32 of an f32: -0 as +0, NaN above +inf (or below
/// -inf, by its sign); the high half of sampling::candidateKey.
mlir::Value orderedFloatBits(KernelBuilder &kb, mlir::Value value);
/// The lm_head's launches `name`_chunks and `name`: each row of `logits`
/// (output `logitsOutput`; `rows` rows, at most `maxRows`) gets its K best
/// values and ids, best first, in outputs logitsOutput + 2 (ids) and + 3
/// (values). They use topCandidatesWorkspace() bytes of the workspace from
/// `workspaceOffset`.
mlir::LogicalResult emitTopCandidates(KernelBuilder &kb, const std::string &name,
                                      const TensorInfo &logits, int64_t logitsOutput,
                                      const TensorInfo &ids, const TensorInfo &values,
                                      plan::GpuExtent rows, int64_t maxRows,
                                      int64_t workspaceOffset, KernelBinary &out);
int64_t topCandidatesWorkspace(int64_t rows, int64_t vocab, int64_t count);

// Attention.cpp
mlir::LogicalResult buildAttention(KernelBuilder &kb, const KernelSpec &spec, KernelBinary &out);

// Moe.cpp
/// Decode experts: per-pair grouped GEMVs.
mlir::LogicalResult buildMoeExpertsGemv(KernelBuilder &kb, const KernelSpec &spec,
                                        KernelBinary &out);

// MoeGrouped.cpp
mlir::LogicalResult buildMoeExpertsGrouped(KernelBuilder &kb, const KernelSpec &spec,
                                           KernelBinary &out);
/// Whether the grouped tensor-core experts handle these shapes.
bool moeGroupedSupports(const KernelSpec &spec);
/// And whether their GEMMs can run on wgmma + TMA (sm_90a, tile.wgmma = 1):
/// unpacked bf16 weights, hidden and intermediate sizes multiples of 64.
bool moeWgmmaSupports(const KernelSpec &spec);
/// m2c_moe_combine: out[t] = sum_j w[t, j] y[yRow(t, j)] (+ the residual
/// input 6), j in slot order, so the result never depends on where the
/// pairs' rows were computed. Parameters: the route weights, `extraParams`
/// (handed to yRow), y, the residual, the output.
void emitMoeCombine(KernelBuilder &kb, const KernelSpec &spec, const std::string &shape,
                    llvm::ArrayRef<FuncParam> extraParams, const FuncParam &yParam,
                    KernelBinary &out,
                    llvm::function_ref<mlir::Value(mlir::ValueRange extra, mlir::Value token,
                                                   int64_t j)>
                        yRow);

// RandomFill.cpp
/// The seeded random-weight stream written on the GPU (plan::GpuRandomFill).
mlir::LogicalResult buildRandomFill(KernelBuilder &kb, plan::ElementType logical,
                                    plan::ElementType storage, int64_t block, KernelBinary &out);

// PackWeights.cpp
/// Packs one f32 matrix into a quantized format on the GPU (plan::GpuPackKernel).
mlir::LogicalResult buildPackKernel(KernelBuilder &kb, plan::Quantization q, KernelBinary &out);
/// Threads per block of the format's pack kernel.
int64_t packKernelBlock(plan::Quantization q);

//===----------------------------------------------------------------------===//
// Shared by the families
//===----------------------------------------------------------------------===//

/// Grid extent covering a buffer's rows.
inline plan::GpuExtent rowsExtent(const TensorInfo &tensor) {
  return tensor.tokenRows ? plan::GpuExtent::tokens() : plan::GpuExtent::fixed(tensor.shape[0]);
}

/// The widest vector (in elements, at most maxBytes) whose byte size is a
/// power of two and whose element count divides n.
int64_t vectorWidth(int64_t n, int64_t elementBytes, int64_t maxBytes = 16);

/// The row count of `tensor` as an index: the NumTokens argument when its
/// rows scale with the step.
mlir::Value rowCount(KernelBuilder &kb, const TensorInfo &tensor, mlir::Value numTokens);

/// Parameter helpers.
inline FuncParam inputParam(KernelBuilder &kb, const TensorInfo &tensor, int64_t index) {
  return {kb.memref(tensor), {plan::GpuParam::Kind::Input, index}};
}
inline FuncParam outputParam(KernelBuilder &kb, const TensorInfo &tensor, int64_t index) {
  return {kb.memref(tensor), {plan::GpuParam::Kind::Output, index}};
}
inline FuncParam tokensParam(KernelBuilder &kb) {
  return {kb.i32(), {plan::GpuParam::Kind::NumTokens, 0}};
}

/// One row of (add +) RMSNorm by a whole block of `threads` (rms_norm,
/// add_rms_norm and the router's prologue): y = rms(x [+ residual]) * w,
/// f32 math, the sum to `sums` when there is a residual. `writeOutputs`
/// (i1, optional) guards the global writes; `rowCopy` (optional, f32
/// [cols] in shared memory) receives the normalised row for the block.
/// `sums` may be null (the lm_head's norm keeps only the normalised row).
struct RmsNormRow {
  mlir::Value x, residual, weight, sums, ys, rowCopy, writeOutputs, row;
  plan::ElementType yType = plan::ElementType::F32;
  int64_t cols = 0, threads = 32;
  double eps = 1e-6;
  std::string scratchName;
};
void emitRmsNormRow(KernelBuilder &kb, const RmsNormRow &row);
/// The block size rms_norm and add_rms_norm use for a row of `cols`
/// (tiling::normTile's).
int64_t rmsNormThreads(int64_t cols);

/// A linear kernel's outputs: one [T, N] buffer, or (a fused projection)
/// consecutive column ranges of the product, each in its own buffer.
class LinearOutputs {
public:
  explicit LinearOutputs(llvm::ArrayRef<TensorInfo> outputs);
  void appendParams(KernelBuilder &kb, llvm::SmallVectorImpl<FuncParam> &params) const;
  size_t numParams() const { return outputs_.size(); }
  void bind(mlir::ValueRange args) { memrefs_.assign(args.begin(), args.end()); }
  /// "" for one output, else "_split<N0>_<N1>...": part of the kernel name.
  std::string nameSuffix() const;
  /// The smallest column range: stores of `width` columns starting at a
  /// multiple of `width` never straddle two outputs when it divides this.
  int64_t minWidth() const;
  /// Stores `value` (a scalar, or a vector of columns inside one range) at
  /// [row, col] of the product.
  void store(KernelBuilder &kb, mlir::Value value, mlir::Value row, mlir::Value col) const;

private:
  llvm::SmallVector<TensorInfo> outputs_;
  llvm::SmallVector<int64_t> begins_;
  llvm::SmallVector<mlir::Value> memrefs_;
};

/// Fails with `message` at the builder's location.
mlir::LogicalResult unsupported(KernelBuilder &kb, const llvm::Twine &message);

/// Fails, naming `kernel`, when `tile` has a value outside its bounds or a
/// fixed parameter other than `defaults`' (codegen/tiling/Tiles.h).
template <class T>
mlir::LogicalResult checkTile(KernelBuilder &kb, llvm::StringRef kernel, const T &tile,
                              const T &defaults) {
  std::string why = tiling::checkTile(tile, defaults);
  if (why.empty())
    return mlir::success();
  return unsupported(kb, kernel + ": " + why);
}

/// The GEMV inner loop (Gemv.cpp): one warp's partial dot products of a few
/// weight rows with one or more K-vectors (the tokens of an expert group),
/// split across lanes in 16-byte chunks of the stored rows (lane l owns
/// chunks l, l + 32, ...), `unroll` chunks in flight. `loadXs[g](k, n)`
/// yields n f32 of vector g at k; rows must be valid (clamp them before).
/// Packed chunks stay packed until their math, so the loads in flight cost
/// 4 registers each. Returns one f32 vector accumulator of accWidth() lanes
/// per (row, vector), row-major: sum its lanes, then across the warp. Each
/// (row, vector) pair accumulates in the same order whatever the others,
/// so grouping vectors never changes a result.
struct WarpDot {
  int64_t K = 0;
  int64_t width = 0;  ///< elements per chunk
  int64_t unroll = 1; ///< chunk iterations per loop step
  int64_t accWidth() const { return std::min<int64_t>(width, 8); }
};
/// One row a WarpDot reads: `expert` is null for [N, K] weights.
struct WeightRow {
  const WeightOperand *weight;
  mlir::Value expert, row;
  /// Where the WarpDot's K range starts in the row (null: at 0).
  mlir::Value kOffset = {};
};
using LoadVector = std::function<mlir::Value(mlir::Value k, int64_t n)>;
/// `width`: elements per chunk (WeightOperand::chunkElements()); `rows` and
/// `vectors` per warp bound the unroll by the registers loads hold.
WarpDot planWarpDot(int64_t K, int64_t width, int64_t rows, int64_t vectors = 1);
llvm::SmallVector<mlir::Value> emitWarpDot(KernelBuilder &kb, const WarpDot &plan,
                                           mlir::Value lane, llvm::ArrayRef<LoadVector> loadXs,
                                           llvm::ArrayRef<WeightRow> rows);

} // namespace m2c::ptx

#endif // M2C_CODEGEN_PTX_FAMILIES_H
