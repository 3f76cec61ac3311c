//===- Tiles.cpp - The cost model's tile choices and the bounds check -----===//

#include "codegen/tiling/Tiles.h"

#include <algorithm>

namespace m2c::tiling {
namespace {
int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t powerOf2Ceil(int64_t n) {
  int64_t p = 1;
  while (p < n)
    p *= 2;
  return p;
}
} // namespace

GemvTile gemvTile(const TargetInfo &target, int64_t n, bool tokenRows) {
  GemvTile tile;
  const int64_t warps = tile.threads / 32;
  tile.tokensPerBlock = tokenRows ? 4 : 1;
  tile.rowsPerWarp = 1;
  for (int64_t r : {tile.tokensPerBlock > 1 ? int64_t(2) : int64_t(4), int64_t(2)})
    if (ceilDiv(n, r * warps) >= 2 * target.smCount) {
      tile.rowsPerWarp = r;
      break;
    }
  return tile;
}

GemmTile gemmTile(int64_t k, int64_t weightBytes) {
  GemmTile tile;
  tile.tileK = weightBytes <= 2 && k % 64 == 0 ? 64 : 32;
  return tile;
}

WgmmaGemmTile wgmmaGemmTile(int64_t n) {
  WgmmaGemmTile tile;
  tile.tileN = std::clamp<int64_t>(powerOf2Ceil(n), 64, 256);
  return tile;
}

ExpertsGemvTile expertsGemvTile(bool packedWeights) {
  ExpertsGemvTile tile;
  if (packedWeights) {
    tile.pairsPerGroup = 1;
    tile.upRowsPerWarp = 2;
    tile.downRowsPerWarp = 4;
  }
  return tile;
}

ExpertsMmaTile expertsMmaTile() { return {}; }
ExpertsWgmmaTile expertsWgmmaTile() { return {}; }
AttentionDecodeTile attentionDecodeTile() { return {}; }
ThreadsTile attentionPrefillTile() { return {128}; }
ThreadsTile routeTile() { return {256}; }

ThreadsTile normTile(int64_t cols) {
  int64_t width = cols % 4 == 0 ? 4 : cols % 2 == 0 ? 2 : 1;
  return {std::min<int64_t>(512, ceilDiv(ceilDiv(cols, width), 32) * 32)};
}

std::string checkTileParam(const TileParamInfo &info, int64_t value, int64_t fixedValue) {
  const std::string name = std::string("tile parameter ") + info.name;
  if (!info.tunable) {
    if (value == fixedValue)
      return "";
    return name + " is fixed at " + std::to_string(fixedValue) + ", got " + std::to_string(value);
  }
  if (info.multipleOf > 1 && value % info.multipleOf != 0)
    return name + " = " + std::to_string(value) + " must be a multiple of " +
           std::to_string(info.multipleOf);
  if (value >= info.min && value <= info.max && (!info.powerOfTwo || (value & (value - 1)) == 0))
    return "";
  return name + " = " + std::to_string(value) + " must be " +
         (info.powerOfTwo ? "a power of two " : "") + "in [" + std::to_string(info.min) + ", " +
         std::to_string(info.max) + "]";
}

} // namespace m2c::tiling
