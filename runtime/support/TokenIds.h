//===- TokenIds.h - Token id lists as users type them ----------*- C++ -*-===//
#ifndef M2C_RUNTIME_SUPPORT_TOKENIDS_H
#define M2C_RUNTIME_SUPPORT_TOKENIDS_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace m2c {

/// "1, 2 3\n4" -> {1, 2, 3, 4}: decimal ids in [0, 2^31) separated by commas
/// or whitespace (what `m2c tokenize` prints). Empty text gives no ids. The
/// error names the item: "'x' is not a token id".
StatusOr<std::vector<int32_t>> parseTokenIds(const std::string &text);

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_TOKENIDS_H
