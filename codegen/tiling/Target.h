//===- Target.h - The GPU targets: the one description of each -*- C++ -*-===//
//
// What the cost model and the kernels need to know about a target. PTX
// codegen picks its ISA by the same names.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_TILING_TARGET_H
#define M2C_CODEGEN_TILING_TARGET_H

#include <cstdint>
#include <optional>
#include <string>

namespace m2c::tiling {

/// Per-target resources. Numbers are the datasheet limits of the reference
/// part (A100 SXM for sm_80, H100 SXM for sm_90/sm_90a) except bandwidth,
/// which is the copy bandwidth measured on the GPU machines.
struct TargetInfo {
  const char *name;
  int64_t smCount;
  int64_t sharedMemoryPerBlock; // bytes, opt-in maximum
  int64_t registersPerSm;
  int64_t maxThreadsPerBlock;
  double bytesPerSecond;
  bool hasWgmma; // sm_90a only
};

/// "sm_80", "sm_90" or "sm_90a"; nullopt otherwise.
std::optional<TargetInfo> lookupTarget(const std::string &name);

} // namespace m2c::tiling

#endif // M2C_CODEGEN_TILING_TARGET_H
