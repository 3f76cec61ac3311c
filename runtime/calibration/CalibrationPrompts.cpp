//===- CalibrationPrompts.cpp - Calibration prompt files ------------------===//

#include "runtime/calibration/CalibrationPrompts.h"

#include <cerrno>
#include <cstdlib>
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
    std::vector<int32_t> ids;
    size_t start = first;
    while (start < line.size()) {
      size_t end = line.find_first_of(", \t\r", start);
      std::string item = line.substr(start, end == std::string::npos ? std::string::npos
                                                                     : end - start);
      start = end == std::string::npos ? line.size() : end + 1;
      if (item.empty())
        continue;
      char *stop = nullptr;
      errno = 0;
      long long value = std::strtoll(item.c_str(), &stop, 10);
      std::string where = name + ":" + std::to_string(lineNo) + ": ";
      if (*stop != '\0' || errno != 0)
        return Status::error(where + "'" + item + "' is not a token id");
      if (value < 0 || value >= vocabSize)
        return Status::error(where + "token id " + item + " is outside the vocabulary [0, " +
                             std::to_string(vocabSize) + ")");
      ids.push_back(static_cast<int32_t>(value));
    }
    if (ids.empty())
      return Status::error(name + ":" + std::to_string(lineNo) + ": no token id on the line");
    prompts.push_back(std::move(ids));
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
