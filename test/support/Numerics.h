//===- Numerics.h - How the tests compare logits --------------------------===//

#ifndef M2C_TEST_SUPPORT_NUMERICS_H
#define M2C_TEST_SUPPORT_NUMERICS_H

#include <cmath>
#include <cstddef>

namespace m2c::testing {

/// Relative L2 error of `a` against the reference `b`.
inline double relativeError(const float *a, const float *b, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::sqrt(norm);
}

} // namespace m2c::testing

#endif // M2C_TEST_SUPPORT_NUMERICS_H
