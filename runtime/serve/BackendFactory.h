//===- BackendFactory.h - A plan's weights loaded onto a device ------------===//
//
// One place that turns (plan, artifact, weight source, device) into a
// ready backend, shared by `m2c run`, `m2c chat` and the runtime-only
// `m2c-run`, so every front door loads models the same way and reports
// progress the same way.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SERVE_BACKENDFACTORY_H
#define M2C_RUNTIME_SERVE_BACKENDFACTORY_H

#include "runtime/engine/Backend.h"
#include "runtime/engine/Engine.h"
#include "runtime/weights/Weights.h"

#include <functional>
#include <memory>
#include <string>

namespace m2c {

class Artifact;

struct BackendRequest {
  /// "cpu" or "cuda".
  std::string device = "cpu";
  /// KV-cache blocks including the null block. 0: on the CPU an error, on
  /// the GPU what fits in gpuMemoryFraction.
  int64_t kvBlocks = 0;
  /// When kvBlocks is 0 and this is set: the size from the plan (e.g. room
  /// for every request, which needs the plan's block size).
  std::function<int64_t(const plan::Plan &)> kvBlocksFor;
  /// CPU threads (0 = all).
  int threads = 0;
  int gpu = 0;
  double gpuMemoryFraction = 0.9;
  bool cudaGraphs = true;
  /// Where the weights come from; progress is reported on stderr.
  WeightSourceOptions weights;
};

StatusOr<std::unique_ptr<Backend>> createBackend(const plan::Plan &plan, const Artifact *artifact,
                                                 const BackendRequest &request);

/// KV blocks for every request's prompt and generation at once, a block of
/// the scheduler's headroom per request, and the null block: the size at
/// which every request is admitted at once and nothing is preempted.
int64_t kvBlocksForRequests(const plan::Plan &plan, const std::vector<GenerationRequest> &requests);

/// "cpu" or "cuda"; anything else is an error naming both.
Status checkDeviceName(const std::string &device);

} // namespace m2c

#endif // M2C_RUNTIME_SERVE_BACKENDFACTORY_H
