//===- CalibrationTest.cpp - Calibration prompt files ---------------------===//
//
// collectHessians and GPTQ on a real plan are covered by GoldenTest, which
// has the compiler to build one.
//
//===----------------------------------------------------------------------===//

#include "runtime/calibration/CalibrationPrompts.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace m2c;

namespace {

std::string writeFile(const std::string &name, const std::string &text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CalibrationPromptsTest, OnePromptPerLineWithCommasOrSpaces) {
  std::string path = writeFile("calib-good.ids", "# from m2c tokenize\n"
                                                 "1,2,3\n"
                                                 "\n"
                                                 "  4 5\t6 , 7\r\n"
                                                 "9\n");
  StatusOr<std::vector<std::vector<int32_t>>> prompts = readCalibrationPrompts(path, 10);
  ASSERT_TRUE(prompts) << prompts.status().message();
  EXPECT_EQ(*prompts, (std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5, 6, 7}, {9}}));
}

TEST(CalibrationPromptsTest, BadInputNamesTheFileAndLine) {
  struct Case {
    const char *text, *message;
  } cases[] = {
      {"1,2\n3,x4\n", "calib-bad.ids:2: 'x4' is not a token id"},
      {"1,2\n\n3,10\n", "calib-bad.ids:3: token id 10 is outside the vocabulary [0, 10)"},
      {"-1\n", "calib-bad.ids:1: '-1' is not a token id"},
      {"99999999999999999999\n", "calib-bad.ids:1: '99999999999999999999' is not a token id"},
      {"# nothing\n\n", "calib-bad.ids: no calibration prompt (one line of token ids per prompt)"},
      {"1\n , ,\n", "calib-bad.ids:2: no token id on the line"},
  };
  for (const Case &c : cases) {
    std::string path = writeFile("calib-bad.ids", c.text);
    StatusOr<std::vector<std::vector<int32_t>>> prompts = readCalibrationPrompts(path, 10);
    ASSERT_FALSE(prompts) << c.text;
    EXPECT_EQ(prompts.status().message(), ::testing::TempDir() + "/" + c.message) << c.text;
  }
  StatusOr<std::vector<std::vector<int32_t>>> missing =
      readCalibrationPrompts("/nonexistent/calib.ids", 10);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().message(), "/nonexistent/calib.ids: cannot open the calibration file");
}

} // namespace
