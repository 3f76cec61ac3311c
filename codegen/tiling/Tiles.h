//===- Tiles.h - Typed tile parameters of each kernel family ---*- C++ -*-===//
//
// One struct per kernel family (and variant) with its tile parameters; each
// lists them once in `fields`, with the name they have in tuning files and
// in `tile.<name>` plan attributes, their bounds, and whether a tuning file
// may set them (the others are fixed by the kernel's design). The default
// of every parameter is the cost model's rule below, used by the tiling
// pass (passes/TileKernels) and, for a plan that was not tiled, by the PTX
// family that reads it; the bounds are checked in one place (checkTile).
// m2c tune's candidates are in TileSpace.h.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_TILING_TILES_H
#define M2C_CODEGEN_TILING_TILES_H

#include "codegen/tiling/Target.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace m2c::tiling {

/// Parameters by name, as tuning files and `m2c.tile` attributes hold them.
using TileParams = std::map<std::string, int64_t>;

/// One parameter's name, bounds and role.
struct TileParamInfo {
  const char *name;
  int64_t min, max;
  bool powerOfTwo = false;
  /// False: the kernel's design fixes it at the cost model's value.
  bool tunable = false;
  int64_t multipleOf = 1;
};

/// Decode GEMV (linear, lm_head): `threads / 32` warps, each
/// `rowsPerWarp` output rows for `tokensPerBlock` tokens.
struct GemvTile {
  int64_t threads = 128, rowsPerWarp = 1, tokensPerBlock = 4;
  template <class F> void fields(F &&f) {
    f(threads, {"threads", 32, 1024, false, true, 32});
    f(rowsPerWarp, {"rows_per_warp", 1, 8, false, true});
    f(tokensPerBlock, {"tokens_per_block", 1, 8, false, true});
  }
};

/// Prefill GEMM on mma.sync m16n8k16: [tileM x tileN] per block.
struct GemmTile {
  int64_t tileM = 64, tileN = 128, tileK = 64, threads = 128;
  template <class F> void fields(F &&f) {
    f(tileM, {"tile_m", 64, 64});
    f(tileN, {"tile_n", 32, 256, true, true});
    f(tileK, {"tile_k", 32, 64, true, true});
    f(threads, {"threads", 128, 128});
  }
};

/// Prefill GEMM on sm_90a wgmma: [tileM x tileN] per block of 2
/// warpgroups, weight tiles through TMA `stages` deep.
struct WgmmaGemmTile {
  int64_t tileM = 128, tileN = 256, tileK = 64, threads = 256, stages = 4, wgmma = 1;
  template <class F> void fields(F &&f) {
    f(tileM, {"tile_m", 128, 128});
    f(tileN, {"tile_n", 64, 256, true, true});
    f(tileK, {"tile_k", 64, 64});
    f(threads, {"threads", 256, 256});
    f(stages, {"stages", 3, 8, false, true});
    f(wgmma, {"wgmma", 1, 1});
  }
};

/// Decode experts: grouped GEMVs over the selected experts, up to
/// `pairsPerGroup` token-expert pairs of one expert per weight read.
struct ExpertsGemvTile {
  int64_t threads = 128, pairsPerGroup = 4, upRowsPerWarp = 1, downRowsPerWarp = 2;
  template <class F> void fields(F &&f) {
    f(threads, {"threads", 128, 128});
    f(pairsPerGroup, {"pairs_per_group", 1, 8, false, true});
    f(upRowsPerWarp, {"up_rows_per_warp", 1, 8, false, true});
    f(downRowsPerWarp, {"down_rows_per_warp", 1, 8, false, true});
  }
};

/// Prefill experts: pairs sorted by expert, mma.sync tiles of tileM pairs.
struct ExpertsMmaTile {
  int64_t threads = 128, tileM = 64, upTileN = 64, downTileN = 128;
  template <class F> void fields(F &&f) {
    f(threads, {"threads", 128, 128});
    f(tileM, {"tile_m", 64, 64});
    f(upTileN, {"up_tile_n", 64, 64});
    f(downTileN, {"down_tile_n", 128, 128});
  }
};

/// Prefill experts on sm_90a wgmma: 64 pairs x 256 columns, 2 warpgroups.
struct ExpertsWgmmaTile {
  int64_t threads = 256, tileM = 64, upTileN = 256, downTileN = 256, wgmma = 1;
  template <class F> void fields(F &&f) {
    f(threads, {"threads", 256, 256});
    f(tileM, {"tile_m", 64, 64});
    f(upTileN, {"up_tile_n", 256, 256});
    f(downTileN, {"down_tile_n", 256, 256});
    f(wgmma, {"wgmma", 1, 1});
  }
};

/// Decode attention (flash-decoding): blocks per (token, KV head, split);
/// a context of n positions uses ceil(n / minSplit) of the `splits`.
struct AttentionDecodeTile {
  int64_t threads = 128, splits = 32, minSplit = 64;
  template <class F> void fields(F &&f) {
    f(threads, {"threads", 128, 128});
    f(splits, {"splits", 1, 64, false, true});
    f(minSplit, {"min_split", 1, 1 << 20, false, true});
  }
};

/// Kernels whose only parameter is their block size, fixed by design:
/// prefill attention, the router, the norms.
struct ThreadsTile {
  int64_t threads = 128;
  template <class F> void fields(F &&f) { f(threads, {"threads", 32, 1024, false, false, 32}); }
};

//===----------------------------------------------------------------------===//
// The cost model's choices (the defaults)
//===----------------------------------------------------------------------===//

/// More rows per warp reuse each x load, but the blocks must still cover
/// every SM about twice; 4 tokens' accumulators leave registers for 2 rows.
GemvTile gemvTile(const TargetInfo &target, int64_t n, bool tokenRows);
/// k-tiles of 64 where the weight's loads fit the prefetch registers (at
/// most 2 bytes per element) and K allows, else 32.
GemmTile gemmTile(int64_t k, int64_t weightBytes);
/// The narrowest tile_n in [64, 256] that covers n.
WgmmaGemmTile wgmmaGemmTile(int64_t n);
/// A packed chunk dequantizes to 16-32 f32 per row, leaving registers for
/// one pair and more rows.
ExpertsGemvTile expertsGemvTile(bool packedWeights);
ExpertsMmaTile expertsMmaTile();
ExpertsWgmmaTile expertsWgmmaTile();
AttentionDecodeTile attentionDecodeTile();
/// Prefill attention: 4 warps.
ThreadsTile attentionPrefillTile();
/// The router: 8 warps, one group of 4 experts per warp.
ThreadsTile routeTile();
/// RMSNorm: one 16-byte (or narrower) load per thread, at most 512.
ThreadsTile normTile(int64_t cols);

//===----------------------------------------------------------------------===//
// Typed <-> named
//===----------------------------------------------------------------------===//

template <class T> TileParams toParams(const T &tile) {
  TileParams params;
  T copy = tile;
  copy.fields([&](int64_t &value, const TileParamInfo &info) { params[info.name] = value; });
  return params;
}

/// `defaults` with every parameter `params` names replaced.
template <class T> T fromParams(const TileParams &params, T defaults) {
  defaults.fields([&](int64_t &value, const TileParamInfo &info) {
    if (auto it = params.find(info.name); it != params.end())
      value = it->second;
  });
  return defaults;
}

/// Every parameter's info, in field order.
template <class T> std::vector<TileParamInfo> paramInfos() {
  std::vector<TileParamInfo> infos;
  T tile;
  tile.fields([&](int64_t &, const TileParamInfo &info) { infos.push_back(info); });
  return infos;
}

/// Why one value cannot be built ("" when it can): "tile parameter NAME =
/// V must be in [lo, hi]", or "... is fixed at F, got V".
std::string checkTileParam(const TileParamInfo &info, int64_t value, int64_t fixedValue);

/// Why `tile` cannot be built ("" when it can): a value outside its bounds,
/// or a fixed parameter that differs from the cost model's `defaults`.
template <class T> std::string checkTile(const T &tile, const T &defaults) {
  std::string why;
  T copy = tile, fixed = defaults;
  std::vector<int64_t> wanted;
  fixed.fields([&](int64_t &value, const TileParamInfo &) { wanted.push_back(value); });
  size_t i = 0;
  copy.fields([&](int64_t &value, const TileParamInfo &info) {
    if (why.empty())
      why = checkTileParam(info, value, wanted[i]);
    ++i;
  });
  return why;
}

} // namespace m2c::tiling

#endif // M2C_CODEGEN_TILING_TILES_H
