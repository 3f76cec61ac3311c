//===- HumanBytes.h - Byte counts as people read them ---------------------===//

#ifndef M2C_RUNTIME_SUPPORT_HUMANBYTES_H
#define M2C_RUNTIME_SUPPORT_HUMANBYTES_H

#include <cstdio>
#include <string>

namespace m2c {

/// Bytes as "457.4 GB"-style text (decimal units, as model cards use).
inline std::string humanBytes(double bytes) {
  const char *units[] = {"B", "KB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 4) {
    bytes /= 1000.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_HUMANBYTES_H
