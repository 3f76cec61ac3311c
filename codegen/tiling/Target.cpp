//===- Target.cpp - The GPU targets ---------------------------------------===//

#include "codegen/tiling/Target.h"

namespace m2c::tiling {

std::optional<TargetInfo> lookupTarget(const std::string &name) {
  if (name == "sm_80")
    return TargetInfo{"sm_80", 108, 163 * 1024, 65536, 1024, 1.6e12, false};
  if (name == "sm_90")
    return TargetInfo{"sm_90", 132, 227 * 1024, 65536, 1024, 3.0e12, false};
  if (name == "sm_90a")
    return TargetInfo{"sm_90a", 132, 227 * 1024, 65536, 1024, 3.0e12, true};
  return std::nullopt;
}

} // namespace m2c::tiling
