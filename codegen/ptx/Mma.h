//===- Mma.h - The mma.sync tile machinery shared by the GEMMs -*- C++ -*-===//
//
// A block computes a [64 x blockN] tile of A[M, K] B[N, K]^T for one or two
// B operands (the experts' gate and up projections share their A tile):
// 4 warps as 2 x 2, each warp [32 x blockN/2] as m16n8 tiles of
// mma.sync.m16n8k16 (bf16 in, f32 accumulate). Rows of A and B are given by
// address callbacks, so the same loop serves plain, gathered (sorted
// token-expert pairs) and per-expert (stacked weights) operands.
// Internal to codegen/ptx.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_MMA_H
#define M2C_CODEGEN_PTX_MMA_H

#include "codegen/ptx/KernelBuilder.h"
#include "codegen/ptx/WeightOperand.h"

namespace m2c::ptx::mma {

constexpr int64_t kBlockM = 64, kPad = 8;
constexpr int64_t kWarpsM = 2, kWarpsN = 2, kThreads = 32 * kWarpsM * kWarpsN;
constexpr int64_t kWarpM = kBlockM / kWarpsM, kTilesM = kWarpM / 16;
/// K must be a multiple of this (the smallest k-tile).
constexpr int64_t kMinBlockK = 32;

/// The memref indices of a tile row, without the k index: {row} for a
/// [rows, K] matrix, {expert, row} for stacked [E, N, K] weights.
using RowAddress = llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value rowInTile)>;

struct Tile {
  int64_t blockN = 128;
  /// 64 where the operands' prefetch registers allow (2-byte weights), else
  /// 32: a longer k-tile hides more of the global latency per barrier.
  int64_t blockK = 32;
  int64_t tilesN() const { return blockN / kWarpsN / 8; }
  int64_t accumulators() const { return kTilesM * tilesN() * 4; }
  /// Shared-memory row length: +8 bf16 so the 8 rows an ldmatrix phase
  /// reads start in distinct bank groups (80 or 144 bytes apart).
  int64_t sharedK() const { return blockK + kPad; }
};

/// ldmatrix.x4 (.trans with `transpose`) of four 8x8 bf16 matrices of a
/// shared tile, lane l addressing row (row, col) of matrix l / 8: the four
/// i32 registers (bf16 pairs, lower column in the low half).
llvm::SmallVector<mlir::Value> ldmatrixX4(KernelBuilder &kb, mlir::Value shared, mlir::Value row,
                                          mlir::Value col, bool transpose = false);

/// d = a b + c on mma.sync.m16n8k16.row.col (bf16 in, f32 accumulate): `a`
/// 4 i32 registers, `b` 2, `c` 4 f32; returns d's 4 f32.
llvm::SmallVector<mlir::Value> mmaBf16(KernelBuilder &kb, llvm::ArrayRef<mlir::Value> a,
                                       llvm::ArrayRef<mlir::Value> b,
                                       llvm::ArrayRef<mlir::Value> c);

/// The k-tile for a K and a weight element size.
int64_t chooseBlockK(int64_t K, int64_t weightBytes);

/// Moves [rows, blockK] k-slices of a row-major matrix through registers
/// into a bf16 shared-memory tile with 16-byte loads: row addresses are
/// computed once, loads are issued a k-tile ahead, stores convert (or
/// dequantize) to bf16.
class TileCopy {
public:
  /// An activation matrix of `elementBytes` elements; `address` gives {row}.
  TileCopy(KernelBuilder &kb, const Tile &tile, int64_t rows, int64_t elementBytes,
           mlir::Value tid, RowAddress address);
  /// A weight, packed or not; `address` gives {row} or {expert, row}.
  TileCopy(KernelBuilder &kb, const Tile &tile, int64_t rows, const WeightOperand &weight,
           mlir::Value tid, RowAddress address);

  /// The loop-carried values of one k-tile (`matrix` is unused for weights).
  llvm::SmallVector<mlir::Value> load(mlir::Value matrix, mlir::Value k0) const;
  void store(mlir::ValueRange values, mlir::Value shared) const;
  /// How many values load() returns.
  int64_t carried() const { return perThread_ * (withScales() ? 2 : 1); }

private:
  void init(const Tile &tile, int64_t rows, mlir::Value tid, RowAddress address);
  /// Packed chunks carry their scale unless the epilogue applies it.
  bool withScales() const {
    return weight_ && weight_->packed() && !weight_->scalesInEpilogue();
  }

  KernelBuilder &kb_;
  const WeightOperand *weight_ = nullptr;
  int64_t width_ = 0, perThread_ = 0;
  /// Whether the last round of chunks covers fewer than all threads.
  bool ragged_ = false;
  llvm::SmallVector<llvm::SmallVector<mlir::Value>> addresses_;
  llvm::SmallVector<mlir::Value> tileRows_, cols_, active_;
};

struct Operand {
  mlir::Value matrix;
  const TileCopy *copy;
  mlir::Value shared; ///< workgroup memref<rows x tile.sharedK() x bf16>
};

/// The k loop: returns, per B operand, the tile's accumulators (tilesM x
/// tilesN x 4 f32, c0..c3 of each m16n8 tile).
llvm::SmallVector<llvm::SmallVector<mlir::Value>>
emitMainLoop(KernelBuilder &kb, const Tile &tile, int64_t K, const Operand &a,
             llvm::ArrayRef<Operand> bs);

/// Calls fn(row, col, index) for each pair of adjacent accumulators of this
/// thread: tile-relative row and (even) column; accumulators[index] and
/// [index + 1] hold columns col and col + 1.
void forEachPair(KernelBuilder &kb, const Tile &tile,
                 llvm::function_ref<void(mlir::Value row, mlir::Value col, int64_t index)> fn);

} // namespace m2c::ptx::mma

#endif // M2C_CODEGEN_PTX_MMA_H
