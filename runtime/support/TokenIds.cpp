//===- TokenIds.cpp - Token id lists as users type them -------------------===//

#include "runtime/support/TokenIds.h"

#include <cerrno>
#include <climits>
#include <cstdlib>

namespace m2c {

StatusOr<std::vector<int32_t>> parseTokenIds(const std::string &text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of(", \t\r\n", start);
    std::string item =
        text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (item.empty())
      continue;
    char *stop = nullptr;
    errno = 0;
    long long value = std::strtoll(item.c_str(), &stop, 10);
    if (*stop != '\0' || errno != 0 || value < 0 || value > INT32_MAX)
      return Status::error("'" + item + "' is not a token id");
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

} // namespace m2c
