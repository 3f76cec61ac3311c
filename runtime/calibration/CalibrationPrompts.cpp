//===- CalibrationPrompts.cpp - Calibration prompt files ------------------===//

#include "runtime/calibration/CalibrationPrompts.h"

#include "runtime/support/TokenIds.h"

#include <fstream>
#include <sstream>

namespace m2c {

StatusOr<std::vector<std::vector<int32_t>>> parseCalibrationPrompts(const std::string &text,
                                                                    const std::string &name,
                                                                    int64_t vocabSize) {
  std::vector<std::vector<int32_t>> prompts;
  std::istringstream in(text);
  std::string line;
  for (int64_t lineNo = 1; std::getline(in, line); ++lineNo) {
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    std::string where = name + ":" + std::to_string(lineNo) + ": ";
    StatusOr<std::vector<int32_t>> ids = parseTokenIds(line);
    if (!ids)
      return Status::error(where + ids.status().message());
    for (int32_t id : *ids)
      if (id >= vocabSize)
        return Status::error(where + "token id " + std::to_string(id) +
                             " is outside the vocabulary [0, " + std::to_string(vocabSize) + ")");
    if (ids->empty())
      return Status::error(where + "no token id on the line");
    prompts.push_back(ids.take());
  }
  if (prompts.empty())
    return Status::error(name + ": no calibration prompt (one line of token ids per prompt)");
  return prompts;
}

StatusOr<std::vector<std::vector<int32_t>>> readCalibrationPrompts(const std::string &path,
                                                                   int64_t vocabSize) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open the calibration file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return Status::error(path + ": read error");
  return parseCalibrationPrompts(text.str(), path, vocabSize);
}

} // namespace m2c
