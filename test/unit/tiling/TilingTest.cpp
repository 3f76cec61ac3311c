//===- TilingTest.cpp - Typed tile parameters, defaults, bounds, space ----===//

#include "codegen/tiling/TileSpace.h"

#include <gtest/gtest.h>

using namespace m2c::tiling;

namespace {

TEST(TilingTest, TilesRoundTripThroughTheirNames) {
  GemvTile tile;
  tile.threads = 256;
  tile.rowsPerWarp = 2;
  tile.tokensPerBlock = 8;
  TileParams params = toParams(tile);
  EXPECT_EQ(params, (TileParams{{"threads", 256}, {"rows_per_warp", 2}, {"tokens_per_block", 8}}));
  GemvTile back = fromParams(params, GemvTile{});
  EXPECT_EQ(back.threads, 256);
  EXPECT_EQ(back.rowsPerWarp, 2);
  // Names a plan does not give keep the cost model's value.
  GemvTile partial = fromParams({{"rows_per_warp", 4}}, tile);
  EXPECT_EQ(partial.rowsPerWarp, 4);
  EXPECT_EQ(partial.tokensPerBlock, 8);
}

TEST(TilingTest, TheGemvDefaultFollowsTheTargetsSmCount) {
  // 2 rows per warp only while the blocks (4 warps) still cover every SM
  // twice: n = 2048 makes 256 blocks, at least sm_80's 2 x 108 but under
  // sm_90's 2 x 132; n = 1024 makes 128, too few for either.
  TargetInfo sm80 = *lookupTarget("sm_80"), sm90 = *lookupTarget("sm_90");
  EXPECT_EQ(gemvTile(sm80, 1024, true).rowsPerWarp, 1);
  EXPECT_EQ(gemvTile(sm80, 2048, true).rowsPerWarp, 2);
  EXPECT_EQ(gemvTile(sm90, 2048, true).rowsPerWarp, 1);
  EXPECT_EQ(gemvTile(sm90, 6144, true).rowsPerWarp, 2);
  // One token (the prefill's last-row lm_head): 4 rows per warp when N allows.
  EXPECT_EQ(gemvTile(sm90, 200064, false).rowsPerWarp, 4);
  EXPECT_EQ(gemvTile(sm90, 200064, false).tokensPerBlock, 1);
  EXPECT_FALSE(lookupTarget("sm_70"));
}

TEST(TilingTest, CheckTileNamesTheBoundOrTheFixedValue) {
  GemvTile tile;
  EXPECT_EQ(checkTile(tile, tile), "");
  tile.rowsPerWarp = 16;
  EXPECT_EQ(checkTile(tile, GemvTile{}), "tile parameter rows_per_warp = 16 must be in [1, 8]");
  tile = GemvTile{};
  tile.threads = 100;
  EXPECT_EQ(checkTile(tile, GemvTile{}), "tile parameter threads = 100 must be a multiple of 32");
  GemmTile gemm;
  gemm.tileN = 96;
  EXPECT_EQ(checkTile(gemm, GemmTile{}),
            "tile parameter tile_n = 96 must be a power of two in [32, 256]");
  gemm = GemmTile{};
  gemm.threads = 256;
  EXPECT_EQ(checkTile(gemm, GemmTile{}), "tile parameter threads is fixed at 128, got 256");
}

TEST(TilingTest, TunableParametersAndCandidatesComeFromTheTile) {
  TileParams gemv = toParams(gemvTile(*lookupTarget("sm_90"), 128, true));
  EXPECT_TRUE(isTunable(gemv, "rows_per_warp"));
  EXPECT_TRUE(isTunable(gemv, "threads"));
  TileParams experts = toParams(expertsGemvTile(false));
  EXPECT_TRUE(isTunable(experts, "pairs_per_group"));
  EXPECT_FALSE(isTunable(experts, "threads"));
  EXPECT_FALSE(isTunable(toParams(expertsMmaTile()), "up_tile_n"));
  EXPECT_FALSE(isTunable(toParams(normTile(3072)), "threads"));

  std::vector<TileParams> candidates = tuningCandidates(gemv);
  ASSERT_EQ(candidates.size(), 9u); // the cost model's, then 3 x 3, one a duplicate
  EXPECT_EQ(candidates.front(), gemv);
  std::vector<TileParams> attention = tuningCandidates(toParams(attentionDecodeTile()));
  ASSERT_EQ(attention.size(), 6u);
  EXPECT_EQ(attention.front(), (TileParams{{"splits", 32}, {"min_split", 64}}));
  EXPECT_EQ(tuningCandidates(toParams(routeTile())), std::vector<TileParams>{TileParams{}});
  EXPECT_EQ(tileFamily("decode/linear/6144x3072"), "linear");
}

} // namespace
