//===- Wgmma.h - The sm_90a wgmma + TMA tile machinery --------*- C++ -*-===//
//
// A block computes [64 * warpgroupsM, warpgroupN * warpgroupsN] tiles of
// A[M, K] B[N, K]^T for one or two B operands (the experts' gate and up
// projections share their A tile), with warpgroupsM * warpgroupsN
// warpgroups of 128 threads, each owning 64 rows x warpgroupN columns:
//   - B tiles come through TMA (cp.async.bulk.tensor.2d from a tensor map,
//     128-byte swizzle), thread 0 issuing them stages - 2 k-tiles ahead,
//     each stage completing on its mbarrier;
//   - A rows are loaded by all threads (16-byte loads, one k-tile ahead in
//     registers), rounded to bf16 and stored in the same swizzle, then
//     fenced for the async proxy;
//   - wgmma.mma_async.m64n<warpgroupN>k16 from shared-memory descriptors,
//     one group in flight while the next tile is staged.
// Rows of A are given by an address callback, so the same loop serves
// plain and gathered (sorted token-expert pairs) operands.
// Internal to codegen/ptx; docs/ptx-codegen.md describes the design.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_WGMMA_H
#define M2C_CODEGEN_PTX_WGMMA_H

#include "codegen/ptx/KernelBuilder.h"

namespace m2c::ptx::wgmma {

constexpr int64_t kWarpgroupRows = 64; ///< wgmma's m
constexpr int64_t kBlockK = 64;        ///< bf16 per 128-byte swizzle row
/// The largest dynamic shared memory a block may have on sm_90.
constexpr int64_t kMaxShared = 227 * 1024;

struct Tile {
  int64_t warpgroupsM = 2, warpgroupsN = 1;
  int64_t warpgroupN = 256; ///< wgmma's n: columns of each B per warpgroup
  int64_t numB = 1;
  int64_t stages = 4;
  int64_t threads() const { return 128 * warpgroupsM * warpgroupsN; }
  int64_t blockM() const { return kWarpgroupRows * warpgroupsM; }
  int64_t blockN() const { return warpgroupN * warpgroupsN; }
  /// Dynamic shared memory: the stages, their mbarriers, 1 KB to align.
  int64_t sharedBytes() const;
  /// f32 accumulators per thread and B operand.
  int64_t accumulators() const { return warpgroupN / 2; }
};

/// The memref indices of row `rowInTile` of A, without the k index.
using RowAddress = llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value rowInTile)>;

struct Operands {
  mlir::Value a;       ///< f32 or bf16 memref A is read from
  int64_t aElementBytes = 4;
  RowAddress aRow;
  /// Per B operand: its tensor map (a kernel parameter) and the map row of
  /// the tile's first B row (i32).
  llvm::SmallVector<mlir::Value, 2> maps, mapRows;
};

/// A weight B can come from through a tensor map: unpacked bf16, its rows
/// (the last dimension) a multiple of kBlockK.
bool weightSupported(const TensorInfo &w);
/// A tensor_map parameter over kernel input `input`: boxes of `boxRows`
/// rows of kBlockK columns.
FuncParam tensorMapParam(KernelBuilder &kb, int64_t input, int64_t boxRows);

/// Checks the tile against wgmma's shapes and shared memory; a diagnostic
/// naming `kernel` otherwise.
mlir::LogicalResult checkTile(KernelBuilder &kb, llvm::StringRef kernel, const Tile &tile);

/// The k loop over K (a multiple of kBlockK) in dynamic shared memory named
/// `symbol`: returns, per B operand, this thread's accumulators.
llvm::SmallVector<llvm::SmallVector<mlir::Value>>
emitMainLoop(KernelBuilder &kb, const Tile &tile, int64_t K, const Operands &operands,
             llvm::StringRef symbol);

/// Calls fn(row, col, index) for each pair of adjacent accumulators of this
/// thread: block-relative row and (even) column; accumulators[index] and
/// [index + 1] hold columns col and col + 1.
void forEachPair(KernelBuilder &kb, const Tile &tile,
                 llvm::function_ref<void(mlir::Value row, mlir::Value col, int64_t index)> fn);

} // namespace m2c::ptx::wgmma

#endif // M2C_CODEGEN_PTX_WGMMA_H
