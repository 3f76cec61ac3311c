//===- HostMemory.h - How much host memory a load may take ----------------===//

#ifndef M2C_RUNTIME_SUPPORT_HOSTMEMORY_H
#define M2C_RUNTIME_SUPPORT_HOSTMEMORY_H

#include <cstdint>
#include <optional>

namespace m2c {

/// The host memory available to a new allocation (Linux: MemAvailable), or
/// nullopt where it cannot be read.
std::optional<uint64_t> availableHostMemory();

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_HOSTMEMORY_H
