//===- TileSpace.h - What m2c tune may set and which candidates it tries -===//
//
// A tiled op's parameters name the tile struct they came from (Tiles.h: each
// struct has its own set of names); its fields say which parameters a
// tuning file may set, and this file lists the alternatives `m2c tune`
// measures for each. Keys are `<entry>/<family>/<shape>`.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_TILING_TILESPACE_H
#define M2C_CODEGEN_TILING_TILESPACE_H

#include "codegen/tiling/Tiles.h"

#include <string>
#include <vector>

namespace m2c::tiling {

/// The family of a tiling key: "linear" for "decode/linear/6144x3072".
std::string tileFamily(const std::string &key);

/// Whether a tuning file may set `param` of an op tiled with `params`.
bool isTunable(const TileParams &params, const std::string &param);

/// The candidates `m2c tune` measures for one op: tunable parameters only,
/// the cost model's own choice first, no duplicates. One entry when the
/// op has nothing to tune.
std::vector<TileParams> tuningCandidates(const TileParams &params);

} // namespace m2c::tiling

#endif // M2C_CODEGEN_TILING_TILESPACE_H
