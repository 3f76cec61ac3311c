//===- CpuTestUtil.h - Random data, error norms for tests ----- -*- C++ -*-===//
#ifndef M2C_TEST_UNIT_CPU_CPUTESTUTIL_H
#define M2C_TEST_UNIT_CPU_CPUTESTUTIL_H

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace m2c::cpu::test {

/// Uniform in [lo, hi) from a fixed seed. Never all zeros: a kernel that
/// ignores its input must not pass by accident.
inline std::vector<float> randomVec(size_t n, uint32_t seed, float lo = -1.0f,
                                    float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

/// ||a - ref|| / ||ref|| over n values.
inline double relErr(const float *a, const double *ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(a[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::sqrt(den);
}

inline double relErr(const std::vector<float> &a,
                     const std::vector<double> &ref) {
  return relErr(a.data(), ref.data(), ref.size());
}

inline double relErr(const std::vector<float> &a,
                     const std::vector<float> &ref) {
  std::vector<double> r(ref.begin(), ref.end());
  return relErr(a.data(), r.data(), r.size());
}

} // namespace m2c::cpu::test

#endif // M2C_TEST_UNIT_CPU_CPUTESTUTIL_H
