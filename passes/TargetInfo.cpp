//===- TargetInfo.cpp - The GPU facts the cost model uses -----------------===//

#include "passes/TargetInfo.h"

namespace m2c {

std::optional<TargetInfo> lookupTarget(llvm::StringRef name) {
  if (name == "sm_80")
    return TargetInfo{"sm_80", 108, 163 * 1024, 65536, 1024, 1.6e12, false};
  if (name == "sm_90")
    return TargetInfo{"sm_90", 132, 227 * 1024, 65536, 1024, 3.0e12, false};
  if (name == "sm_90a")
    return TargetInfo{"sm_90a", 132, 227 * 1024, 65536, 1024, 3.0e12, true};
  return std::nullopt;
}

} // namespace m2c
