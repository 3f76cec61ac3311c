//===- BackendFactory.cpp - A plan's weights loaded onto a device ---------===//

#include "runtime/serve/BackendFactory.h"

#include "runtime/cuda/CudaBackend.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/support/Progress.h"

namespace m2c {

Status checkDeviceName(const std::string &device) {
  if (device == "cpu" || device == "cuda")
    return Status::ok();
  return Status::error("--device: '" + device + "' is not a device (cpu or cuda)");
}

int64_t kvBlocksForRequests(const plan::Plan &plan, const std::vector<GenerationRequest> &requests) {
  // The null block, and each request's blocks plus the block of headroom
  // the scheduler keeps per running sequence (Engine::generate), so that
  // every request is admitted at once and they all decode together.
  int64_t blocks = 1 + static_cast<int64_t>(requests.size());
  for (const GenerationRequest &r : requests)
    blocks += plan.kvCache.blocksFor(static_cast<int64_t>(r.promptIds.size()) + r.maxNewTokens);
  return blocks;
}

StatusOr<std::unique_ptr<Backend>> createBackend(const plan::Plan &plan, const Artifact *artifact,
                                                 const BackendRequest &request) {
  M2C_RETURN_IF_ERROR(checkDeviceName(request.device));
  int64_t kvBlocks = request.kvBlocks;
  if (kvBlocks == 0 && request.kvBlocksFor)
    kvBlocks = request.kvBlocksFor(plan);
  WeightSourceOptions source = request.weights;
  ProgressLine progress(request.device == "cuda" ? "uploading weights" : "loading weights");
  source.progress = [&](size_t done, size_t total, uint64_t bytes) {
    progress.update(done, total, bytes);
  };
  if (request.device == "cpu") {
    if (kvBlocks < 2)
      return Status::error("the CPU backend needs a KV-cache size (at least 2 blocks)");
    M2C_RETURN_IF_ERROR(CpuBackend::checkHostMemory(plan, kvBlocks));
    StatusOr<WeightSet> weights = loadWeights(plan, artifact, source);
    if (!weights)
      return weights.status();
    CpuBackendOptions options;
    options.numKvBlocks = kvBlocks;
    options.numThreads = request.threads;
    StatusOr<std::unique_ptr<CpuBackend>> backend = CpuBackend::create(plan, weights.take(), options);
    if (!backend)
      return backend.status();
    return std::unique_ptr<Backend>(backend.take());
  }
  M2C_RETURN_IF_ERROR(CudaBackend::checkPlan(plan));
  StatusOr<cuda::CudaDriver *> driver = cuda::CudaDriver::shared();
  if (!driver)
    return driver.status();
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, artifact, source);
  if (!reader)
    return reader.status();
  CudaBackendOptions options;
  options.device = request.gpu;
  options.numKvBlocks = kvBlocks;
  options.memoryFraction = request.gpuMemoryFraction;
  options.cudaGraphs = request.cudaGraphs;
  options.progress = source.progress;
  StatusOr<std::unique_ptr<CudaBackend>> backend =
      CudaBackend::create(plan, **driver, **reader, options);
  if (!backend)
    return backend.status();
  return std::unique_ptr<Backend>(backend.take());
}

} // namespace m2c
