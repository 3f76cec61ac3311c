//===- TileSpace.cpp - Which tile parameters a tuning file may set --------===//

#include "passes/TileSpace.h"

#include <algorithm>

namespace m2c {

namespace {

/// The tunable parameter names of an op tiled with `params`.
std::vector<std::string> tunableNames(llvm::StringRef key, const TileParams &params) {
  std::string family = tileFamily(key);
  // The lm_head (norm.rms_logits) is a GEMV with a prologue and epilogue.
  if (family == "lm_head")
    return {"threads", "rows_per_warp", "tokens_per_block"};
  if (family == "linear") {
    if (params.count("rows_per_warp"))
      return {"threads", "rows_per_warp", "tokens_per_block"};
    if (params.count("wgmma"))
      return {"tile_n", "stages"};
    return {"tile_n", "tile_k"};
  }
  if (family == "experts" && params.count("pairs_per_group"))
    return {"pairs_per_group", "up_rows_per_warp", "down_rows_per_warp"};
  if (family == "attention" && params.count("splits"))
    return {"splits", "min_split"};
  return {};
}

TileParams tunableOf(llvm::StringRef key, const TileParams &params) {
  TileParams out;
  for (const std::string &name : tunableNames(key, params))
    if (auto it = params.find(name); it != params.end())
      out[name] = it->second;
  return out;
}

} // namespace

std::string tileFamily(llvm::StringRef key) {
  auto [entry, rest] = key.split('/');
  return rest.split('/').first.str();
}

bool isTunable(llvm::StringRef key, const TileParams &params, llvm::StringRef param) {
  std::vector<std::string> names = tunableNames(key, params);
  return std::find(names.begin(), names.end(), param.str()) != names.end();
}

std::vector<TileParams> tuningCandidates(llvm::StringRef key, const TileParams &params) {
  const TileParams base = tunableOf(key, params);
  std::vector<TileParams> out = {base};
  auto add = [&](TileParams candidate) {
    if (std::find(out.begin(), out.end(), candidate) == out.end())
      out.push_back(std::move(candidate));
  };
  std::string family = tileFamily(key);
  if ((family == "linear" || family == "lm_head") && base.count("rows_per_warp")) {
    // Rows per warp trade x reuse against blocks to fill the GPU; tokens
    // per block trade weight reuse against accumulator registers.
    std::vector<int64_t> tokens = base.at("tokens_per_block") > 1
                                      ? std::vector<int64_t>{2, 4, 8}
                                      : std::vector<int64_t>{1};
    for (int64_t rows : {1, 2, 4})
      for (int64_t t : tokens)
        add({{"threads", 128}, {"rows_per_warp", rows}, {"tokens_per_block", t}});
  } else if (family == "linear" && base.count("stages")) {
    // wgmma: a wider tile reads each x tile for more columns; more stages
    // keep more weight tiles in flight (4 x 48 KB at tile_n 256 is the most
    // shared memory allows).
    for (auto [n, stages] : {std::pair<int64_t, int64_t>{128, 4}, {128, 6}, {256, 3}, {256, 4}})
      add({{"tile_n", n}, {"stages", stages}});
  } else if (family == "linear" && base.count("tile_n")) {
    // tile_k 64 only where the cost model allowed it (K and registers).
    for (int64_t n : {64, 128})
      for (int64_t k : {base.at("tile_k"), int64_t(32)})
        add({{"tile_n", n}, {"tile_k", k}});
  } else if (family == "experts" && base.count("pairs_per_group")) {
    for (auto [group, up, down] : {std::tuple<int64_t, int64_t, int64_t>{4, 1, 2},
                                   {2, 2, 4},
                                   {8, 1, 1},
                                   {1, 2, 4},
                                   {1, 4, 8},
                                   {1, 1, 2},
                                   {4, 2, 2},
                                   {2, 1, 2}})
      add({{"pairs_per_group", group}, {"up_rows_per_warp", up}, {"down_rows_per_warp", down}});
  } else if (family == "attention" && base.count("splits")) {
    for (auto [splits, minSplit] : {std::pair<int64_t, int64_t>{16, 64},
                                    {32, 32},
                                    {32, 128},
                                    {64, 64},
                                    {16, 256}})
      add({{"splits", splits}, {"min_split", minSplit}});
  }
  return out;
}

} // namespace m2c
