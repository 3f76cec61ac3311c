//===- TileSpace.cpp - Tunable parameters and m2c tune's candidates -------===//

#include "codegen/tiling/TileSpace.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace m2c::tiling {
namespace {

/// The tunable names of tile struct T.
template <class T> std::vector<std::string> tunableNames() {
  std::vector<std::string> names;
  for (const TileParamInfo &info : paramInfos<T>())
    if (info.tunable)
      names.push_back(info.name);
  return names;
}

template <class T> bool sameNames(const TileParams &params) {
  std::set<std::string> names;
  for (const TileParamInfo &info : paramInfos<T>())
    names.insert(info.name);
  std::set<std::string> given;
  for (const auto &[name, value] : params)
    given.insert(name);
  return names == given;
}

/// Calls `f(T{})` with the tile struct whose names `params` has; false
/// when none has them.
template <class F> bool withTileOf(const TileParams &params, F &&f) {
  if (sameNames<GemvTile>(params))
    return f(GemvTile{}), true;
  if (sameNames<GemmTile>(params))
    return f(GemmTile{}), true;
  if (sameNames<WgmmaGemmTile>(params))
    return f(WgmmaGemmTile{}), true;
  if (sameNames<ExpertsGemvTile>(params))
    return f(ExpertsGemvTile{}), true;
  if (sameNames<ExpertsMmaTile>(params))
    return f(ExpertsMmaTile{}), true;
  if (sameNames<ExpertsWgmmaTile>(params))
    return f(ExpertsWgmmaTile{}), true;
  if (sameNames<AttentionDecodeTile>(params))
    return f(AttentionDecodeTile{}), true;
  if (sameNames<ThreadsTile>(params))
    return f(ThreadsTile{}), true;
  return false;
}

std::vector<std::string> tunableNames(const TileParams &params) {
  std::vector<std::string> names;
  withTileOf(params, [&](auto tile) { names = tunableNames<decltype(tile)>(); });
  return names;
}

TileParams tunableOf(const TileParams &params) {
  TileParams out;
  for (const std::string &name : tunableNames(params))
    if (auto it = params.find(name); it != params.end())
      out[name] = it->second;
  return out;
}

/// The alternatives of each tile struct, tunable parameters only.
std::vector<TileParams> alternatives(GemvTile, const TileParams &base) {
  // Rows per warp trade x reuse against blocks to fill the GPU; tokens per
  // block trade weight reuse against accumulator registers.
  std::vector<int64_t> tokens = base.at("tokens_per_block") > 1 ? std::vector<int64_t>{2, 4, 8}
                                                                : std::vector<int64_t>{1};
  std::vector<TileParams> out;
  for (int64_t rows : {1, 2, 4})
    for (int64_t t : tokens)
      out.push_back({{"threads", 128}, {"rows_per_warp", rows}, {"tokens_per_block", t}});
  return out;
}
std::vector<TileParams> alternatives(WgmmaGemmTile, const TileParams &) {
  // A wider tile reads each x tile for more columns; more stages keep more
  // weight tiles in flight (4 x 48 KB at tile_n 256 is the most shared
  // memory allows).
  std::vector<TileParams> out;
  for (auto [n, stages] : {std::pair<int64_t, int64_t>{128, 4}, {128, 6}, {256, 3}, {256, 4}})
    out.push_back({{"tile_n", n}, {"stages", stages}});
  return out;
}
std::vector<TileParams> alternatives(GemmTile, const TileParams &base) {
  // tile_k 64 only where the cost model allowed it (K and registers).
  std::vector<TileParams> out;
  for (int64_t n : {64, 128})
    for (int64_t k : {base.at("tile_k"), int64_t(32)})
      out.push_back({{"tile_n", n}, {"tile_k", k}});
  return out;
}
std::vector<TileParams> alternatives(ExpertsGemvTile, const TileParams &) {
  std::vector<TileParams> out;
  for (auto [group, up, down] : {std::tuple<int64_t, int64_t, int64_t>{4, 1, 2},
                                 {2, 2, 4},
                                 {8, 1, 1},
                                 {1, 2, 4},
                                 {1, 4, 8},
                                 {1, 1, 2},
                                 {4, 2, 2},
                                 {2, 1, 2}})
    out.push_back(
        {{"pairs_per_group", group}, {"up_rows_per_warp", up}, {"down_rows_per_warp", down}});
  return out;
}
std::vector<TileParams> alternatives(AttentionDecodeTile, const TileParams &) {
  std::vector<TileParams> out;
  for (auto [splits, minSplit] :
       {std::pair<int64_t, int64_t>{16, 64}, {32, 32}, {32, 128}, {64, 64}, {16, 256}})
    out.push_back({{"splits", splits}, {"min_split", minSplit}});
  return out;
}
/// Tiles whose every parameter is fixed.
template <class T> std::vector<TileParams> alternatives(T, const TileParams &) { return {}; }

} // namespace

std::string tileFamily(const std::string &key) {
  size_t first = key.find('/');
  if (first == std::string::npos)
    return "";
  size_t second = key.find('/', first + 1);
  return key.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
}

bool isTunable(const TileParams &params, const std::string &param) {
  std::vector<std::string> names = tunableNames(params);
  return std::find(names.begin(), names.end(), param) != names.end();
}

std::vector<TileParams> tuningCandidates(const TileParams &params) {
  const TileParams base = tunableOf(params);
  std::vector<TileParams> out = {base};
  withTileOf(params, [&](auto tile) {
    for (TileParams &candidate : alternatives(tile, base))
      if (std::find(out.begin(), out.end(), candidate) == out.end())
        out.push_back(std::move(candidate));
  });
  return out;
}

} // namespace m2c::tiling
