//===- HostMemory.cpp - How much host memory a load may take --------------===//

#include "runtime/support/HostMemory.h"

#include <fstream>
#include <string>

namespace m2c {

std::optional<uint64_t> availableHostMemory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  uint64_t value = 0;
  while (meminfo >> key >> value >> unit)
    if (key == "MemAvailable:")
      return value * 1024; // kB
  return std::nullopt;
}

} // namespace m2c
