//===- Weights.h - A plan's weights as f32, from any source ---------------===//
//
// Three sources produce the same logical weights: the artifact's embedded
// bytes, a checkpoint directory bound by name (either expert layout, FP8
// dequantized), or a seeded generator (--random-weights). The random path
// rounds to the logical element type, so embedding random weights and
// generating them at load time give bit-identical values.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_WEIGHTS_WEIGHTS_H
#define M2C_RUNTIME_WEIGHTS_WEIGHTS_H

#include "runtime/plan/Plan.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace m2c {

class Artifact;
class CheckpointBinding;
struct ModelConfig;

/// Called after each weight: (weights done, total, bytes done).
using WeightProgress = std::function<void(size_t, size_t, uint64_t)>;

/// The parameters of a weight's random stream: element i is normal
/// (Box-Muller over splitmix64 draws i and i+1 from `state`, pairwise) times
/// `scale` plus `shift`, rounded to the weight's type. The GPU's random
/// fill kernels (plan::GpuRandomFill) compute the same values.
struct RandomWeightStream {
  uint64_t state = 0;
  double scale = 1.0;
  double shift = 0.0;
};
RandomWeightStream randomWeightStream(const plan::Weight &w, uint64_t seed);

/// Fills `dst` (w.numElements() floats) with seeded random values scaled
/// like a trained model: matrices ~ N(0, 1/fan_in), norms ~ 1 + 0.1 N,
/// router bias 0.1 N, embeddings N(0, 1). A fused weight (plan::WeightPart)
/// gets each part's own stream, so fusing never changes the values.
void randomWeightF32(const plan::Weight &w, uint64_t seed, float *dst);

/// Reads a weight from a checkpoint, stacking per-expert tensors ("{e}" in
/// the binding) into [E, ...] and a fused weight's parts row after row.
Status checkpointWeightF32(const CheckpointBinding &binding, const plan::Weight &w, float *dst);

/// Decodes a weight embedded in the artifact.
Status embeddedWeightF32(const Artifact &artifact, const plan::Weight &w, float *dst);

/// Every weight of a plan, as f32, indexed like plan.weights.
struct WeightSet {
  std::vector<std::vector<float>> tensors;
};

struct WeightSourceOptions {
  /// Generate instead of reading (any weights mode).
  bool random = false;
  uint64_t seed = 0;
  /// Overrides the artifact's checkpoint path for external weights.
  std::string checkpointPath;
  /// Keep the source's values as they are, without rounding them to each
  /// weight's quantized format: what calibration runs at. Embedded weights
  /// are quantized already and stay so.
  bool fullPrecision = false;
  WeightProgress progress;
};

class Checkpoint;

/// The source of a plan's weights, chosen once: the generator (random), the
/// artifact's embedded bytes, or a checkpoint bound by name (the options'
/// path, or an external artifact's, whose fingerprint must still match).
class WeightReader {
public:
  static StatusOr<std::unique_ptr<WeightReader>> open(const plan::Plan &plan,
                                                      const Artifact *artifact,
                                                      const WeightSourceOptions &options);
  ~WeightReader();

  /// The weight's values as the source holds them. Embedded weights are
  /// already in their quantized format; the others are not (see quantized()).
  Status read(const plan::Weight &w, float *dst) const;
  /// A quantized weight's packed bytes (w.storageBytes()): the artifact's
  /// own, or the values packed as the artifact would hold them.
  Status readPacked(const plan::Weight &w, uint8_t *dst) const;
  /// True when read() returns values already quantized to w.quantization.
  bool quantized() const { return artifact_ != nullptr; }
  /// True when the values are the seeded generator's (randomWeightStream).
  bool random() const { return random_; }
  uint64_t seed() const { return seed_; }
  /// The bound checkpoint, when reading from one.
  const Checkpoint *checkpoint() const;
  const ModelConfig *config() const;

private:
  WeightReader();
  struct Bound;
  const Artifact *artifact_ = nullptr;
  bool random_ = false;
  uint64_t seed_ = 0;
  std::unique_ptr<Bound> bound_;
};

/// Loads every weight of `plan`: generated, from a checkpoint, or from the
/// artifact's embedded bytes (`artifact` may be null for a plan compiled in
/// memory).
StatusOr<WeightSet> loadWeights(const plan::Plan &plan, const Artifact *artifact,
                                const WeightSourceOptions &options);

/// A cheap fingerprint of a checkpoint directory: every shard's name, size
/// and safetensors header. Recorded for --weights external and checked at
/// load, so a changed checkpoint is caught without hashing its data.
StatusOr<std::string> checkpointFingerprint(const std::string &path);

} // namespace m2c

#endif // M2C_RUNTIME_WEIGHTS_WEIGHTS_H
