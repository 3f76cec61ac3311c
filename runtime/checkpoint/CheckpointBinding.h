//===- CheckpointBinding.h - MiniMax-M2 weights resolved in a checkpoint --===//
//
// Maps each logical weight of the model (embedding, norms, attention
// projections, router, per-expert w1/w2/w3) to the tensor that stores it,
// in either expert layout:
//   original      model.layers.N.block_sparse_moe.experts.E.w{1,2,3}.weight,
//                 model.layers.N.block_sparse_moe.gate.weight,
//                 model.layers.N.block_sparse_moe.e_score_correction_bias
//   transformers5 model.layers.N.mlp.experts.gate_up_proj [E, 2I, Hd]
//                 (gate rows first, then up), .down_proj [E, Hd, I],
//                 model.layers.N.mlp.gate.weight, .mlp.e_score_correction_bias
// The layout is detected per layer, so callers never see it: they ask for
// (kind, layer, expert) and get f32 rows in the logical [out, in] shape.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHECKPOINT_CHECKPOINTBINDING_H
#define M2C_RUNTIME_CHECKPOINT_CHECKPOINTBINDING_H

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/Dequantize.h"
#include "runtime/model/ModelConfig.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace m2c {

enum class WeightKind : uint8_t {
  // Model-global.
  Embed,     // [V, Hd]
  FinalNorm, // [Hd]
  LmHead,    // [V, Hd]; the embedding when tie_word_embeddings
  // Per layer.
  InputNorm,         // [Hd]
  PostAttentionNorm, // [Hd]
  QProj,             // [H*D, Hd]
  KProj,             // [KV*D, Hd]
  VProj,             // [KV*D, Hd]
  OProj,             // [Hd, H*D]
  QNorm,             // [H*D]
  KNorm,             // [KV*D]
  RouterGate,        // [E, Hd]
  RouterBias,        // [E]
  // Per layer and expert.
  ExpertW1, // gate [I, Hd]
  ExpertW2, // down [Hd, I]
  ExpertW3, // up   [I, Hd]
};

/// A logical weight. `layer`/`expert` are -1 where they do not apply.
struct WeightRef {
  WeightKind kind = WeightKind::Embed;
  int64_t layer = -1;
  int64_t expert = -1;

  static WeightRef global(WeightKind kind) { return {kind, -1, -1}; }
  static WeightRef inLayer(WeightKind kind, int64_t layer) {
    return {kind, layer, -1};
  }
  static WeightRef ofExpert(WeightKind kind, int64_t layer, int64_t expert) {
    return {kind, layer, expert};
  }
  bool operator==(const WeightRef &o) const {
    return kind == o.kind && layer == o.layer && expert == o.expert;
  }
};

/// The logical name: the tensor name in the original (per-expert) layout,
/// e.g. "model.layers.3.block_sparse_moe.experts.5.w1.weight".
std::string canonicalWeightName(const WeightRef &ref);
/// Inverse of canonicalWeightName; fails on any other string.
StatusOr<WeightRef> parseCanonicalWeightName(const std::string &name);

enum class ExpertLayout : uint8_t { PerExpert, Packed };

/// Where a logical weight lives and how to read it.
struct ResolvedWeight {
  WeightRef ref;
  /// Logical shape: [out, in] for matrices, [n] for vectors.
  std::vector<int64_t> shape;
  /// The whole stored tensor (a packed [E, ., .] tensor for packed experts).
  TensorView tensor;
  /// The shard holding `tensor`, for diagnostics.
  std::string file;
  /// Present iff `tensor` is F8_E4M3.
  std::optional<TensorView> scaleInv;
  /// Matrix and first row of the logical weight inside `tensor`.
  int64_t matrixIndex = 0;
  int64_t rowOffset = 0;
};

struct ValidationReport {
  /// Each "<file>: <why>".
  std::vector<std::string> errors;
  /// Tensor names the model does not use (MTP tensors excluded).
  std::vector<std::string> unexpected;
  /// Informational, e.g. ignored MTP tensors.
  std::vector<std::string> notes;
  /// Stored tensors whose shape/dtype were checked.
  size_t tensorsChecked = 0;

  /// Fails when there are errors, or unexpected tensors unless allowed.
  /// The message lists up to 10 of them, one per line.
  Status status(bool allowUnexpected = false) const;
};

class CheckpointBinding {
public:
  /// Detects the expert layout of every layer. The binding points at
  /// `checkpoint`, which must outlive it and stay where it is (not moved). Fails only when the config's sizes are unusable
  /// (non-positive or absurdly large); tensor problems surface in
  /// validate() and resolve().
  static StatusOr<CheckpointBinding> create(const Checkpoint &checkpoint,
                                            const ModelConfig &config);

  const ModelConfig &config() const { return config_; }
  ExpertLayout expertLayout(int64_t layer) const;
  BlockSize blockSize() const { return block_; }

  /// Every logical weight of the model in load order.
  std::vector<WeightRef> allWeights() const;
  /// The logical shape of `ref` under the config.
  std::vector<int64_t> expectedShape(const WeightRef &ref) const;

  /// Finds the stored tensor and checks its shape, dtype and scales.
  StatusOr<ResolvedWeight> resolve(const WeightRef &ref) const;

  /// Dequantizes `ref` to f32 row-major; `dst` holds
  /// numElements(expectedShape(ref)) floats.
  Status readWeightF32(const WeightRef &ref, float *dst) const;
  Status readWeightF32(const WeightRef &ref, std::vector<float> &dst) const;
  /// The same, by canonical name (see canonicalWeightName).
  Status readWeightF32(const std::string &canonicalName,
                       std::vector<float> &dst) const;

  /// Checks every stored tensor the config needs (presence, shape, dtype,
  /// FP8 scales) and lists tensors nothing uses.
  ValidationReport validate() const;

private:
  CheckpointBinding(const Checkpoint &checkpoint, const ModelConfig &config)
      : checkpoint_(&checkpoint), config_(config) {}

  struct StoredSpec;
  StatusOr<StoredSpec> storedSpec(const WeightRef &ref) const;
  StatusOr<ResolvedWeight> resolveStored(const StoredSpec &spec,
                                         const WeightRef &ref) const;
  std::vector<StoredSpec> allStoredSpecs() const;

  const Checkpoint *checkpoint_;
  ModelConfig config_;
  BlockSize block_;
  std::vector<ExpertLayout> layouts_;
};

/// create() + validate(): fails on errors or unexpected tensors.
Status validateCheckpoint(const Checkpoint &checkpoint,
                          const ModelConfig &config,
                          ValidationReport *report = nullptr);

} // namespace m2c

#endif // M2C_RUNTIME_CHECKPOINT_CHECKPOINTBINDING_H
