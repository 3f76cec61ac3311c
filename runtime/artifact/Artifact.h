//===- Artifact.h - The versioned .m2a file: header, plan, weights --------===//
//
// Layout (little-endian):
//   [0, 64)        header: magic "M2CARTF\x1a", format version, header size,
//                  target (16 bytes, NUL-padded), plan bytes, weights
//                  offset, weights bytes, checksum
//   [64, ...)      the plan as JSON
//   [weights, ...) weight bytes, 64-byte aligned, as the plan's storage says
// The checksum covers every byte after the header.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_ARTIFACT_ARTIFACT_H
#define M2C_RUNTIME_ARTIFACT_ARTIFACT_H

#include "runtime/plan/Plan.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace m2c {

constexpr uint32_t kArtifactFormatVersion = 1;
constexpr size_t kArtifactHeaderBytes = 64;

/// A 64-bit FNV-1a-style hash over 8-byte words; streaming.
class Checksum {
public:
  void update(const uint8_t *data, size_t size);
  uint64_t value() const;

private:
  uint64_t state_ = 0xcbf29ce484222325ull;
  uint8_t pending_[8] = {};
  size_t pendingSize_ = 0;
  uint64_t length_ = 0;
};

/// A loaded artifact. Weight bytes stay memory-mapped.
class Artifact {
public:
  Artifact(Artifact &&other) noexcept;
  Artifact &operator=(Artifact &&other) noexcept;
  ~Artifact();

  const plan::Plan &plan() const { return plan_; }
  const std::string &target() const { return plan_.target; }
  const uint8_t *weightData() const { return weights_; }
  uint64_t weightBytes() const { return weightBytes_; }

  /// Maps and validates `path`. `expectedTarget` empty accepts any target.
  static StatusOr<Artifact> load(const std::string &path, const std::string &expectedTarget = "");
  /// Validates an in-memory artifact; the caller keeps `data` alive.
  static StatusOr<Artifact> parse(const uint8_t *data, size_t size, const std::string &origin,
                                  const std::string &expectedTarget = "");

private:
  Artifact() = default;

  plan::Plan plan_;
  const uint8_t *weights_ = nullptr;
  uint64_t weightBytes_ = 0;
  void *mapping_ = nullptr;
  size_t mappingSize_ = 0;
};

/// Lays out the weight section: sets every weight's storage offset and
/// returns the section size. Call before writing.
uint64_t layoutEmbeddedWeights(plan::Plan &plan);

/// Writes an artifact. For embedded weights, `writeWeight(i, sink)` must
/// emit exactly plan.weights[i].storage.bytes bytes through `sink`.
using WeightSink = std::function<Status(const void *data, size_t size)>;
Status writeArtifact(const std::string &path, const plan::Plan &plan,
                     const std::function<Status(size_t weight, const WeightSink &sink)> &writeWeight);

} // namespace m2c

#endif // M2C_RUNTIME_ARTIFACT_ARTIFACT_H
