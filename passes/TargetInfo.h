//===- TargetInfo.h - The GPU facts the cost model uses --------*- C++ -*-===//

#ifndef M2C_PASSES_TARGETINFO_H
#define M2C_PASSES_TARGETINFO_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace m2c {

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

std::optional<TargetInfo> lookupTarget(llvm::StringRef name);

} // namespace m2c

#endif // M2C_PASSES_TARGETINFO_H
