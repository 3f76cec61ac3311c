//===- TileSpace.h - Which tile parameters a tuning file may set -*- C++ -*-===//
//
// The tiling pass's parameters per kernel family, split into those the
// kernels let a tuning file set and those fixed by the kernel's design, and
// the alternatives `m2c tune` measures. Keys are `<entry>/<family>/<shape>`.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_PASSES_TILESPACE_H
#define M2C_PASSES_TILESPACE_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace m2c {

using TileParams = std::map<std::string, int64_t>;

/// The family of a tiling key: "linear" for "decode/linear/6144x3072".
std::string tileFamily(llvm::StringRef key);

/// Whether a tuning file may set `param` of an op tiled with `params`
/// (a family's variant shows in its parameters: a GEMV has rows_per_warp,
/// the mma.sync GEMM tile_n).
bool isTunable(llvm::StringRef key, const TileParams &params, llvm::StringRef param);

/// The candidates `m2c tune` measures for one op: tunable parameters only,
/// the cost model's own choice first, no duplicates. One entry when the
/// family has nothing to tune.
std::vector<TileParams> tuningCandidates(llvm::StringRef key, const TileParams &params);

} // namespace m2c

#endif // M2C_PASSES_TILESPACE_H
