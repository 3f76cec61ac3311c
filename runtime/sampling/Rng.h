//===- Rng.h - Portable deterministic per-sequence random numbers -*- C++ -*-===//
//
// std:: engines are portable but std:: distributions are not (libstdc++ and
// libc++ map the same bits to different values), so sampling draws its own
// uniforms: splitmix64 for the bits, the top 24 bits for a float in [0, 1).
// Same seed => same token stream on every platform.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SAMPLING_RNG_H
#define M2C_RUNTIME_SAMPLING_RNG_H

#include <cstdint>

namespace m2c {

class Rng {
public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}

  /// An independent stream per (seed, stream), e.g. stream = sequence id, so
  /// sequences sharing a user seed do not draw the same numbers.
  static Rng forStream(uint64_t seed, uint64_t stream) {
    Rng mixer(stream ^ 0x5DEECE66DULL);
    return Rng(seed ^ mixer.nextU64());
  }

  /// splitmix64 (Steele, Lea, Flood 2014).
  uint64_t nextU64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, 1): 24 bits fill a float mantissa exactly, so every
  /// value is representable and 1.0 is never returned.
  float nextFloat() {
    return static_cast<float>(nextU64() >> 40) * (1.0f / 16777216.0f);
  }

  uint64_t state() const { return state_; }

private:
  uint64_t state_;
};

} // namespace m2c

#endif // M2C_RUNTIME_SAMPLING_RNG_H
