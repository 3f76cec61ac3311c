//===- CudaBackend.cpp - The CUDA backend: creation and device memory ----===//
//
// The backend is split by job: this file makes it and lays out its device
// memory (weights, arena, workspace, state, KV cache, inputs);
// CudaWeights.cpp loads its modules and weights; CudaSteps.cpp runs steps
// (inputs, launches, graphs, outputs, timing).
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/CudaBackend.h"

#include <algorithm>

namespace m2c {

using cuda::DevicePtr;

namespace {

/// Block-table width without maxSequenceTokens: 64K tokens at block size 16.
constexpr int64_t kDefaultMaxBlocksPerSeq = 4096;

} // namespace

CudaBackend::~CudaBackend() {
  for (auto &[key, graph] : graphs_)
    driver_.destroyGraph(graph);
  for (cuda::ModuleHandle module : modules_)
    driver_.unload(module);
  driver_.free(arena_);
  driver_.free(weights_);
  driver_.free(tensorMapBlock_);
  driver_.free(packScratch_);
  driver_.free(kvCache_);
  driver_.freeHost(hostInputs_);
  driver_.freeHost(hostLogits_);
  driver_.freeHost(hostIds_);
  driver_.freeHost(hostCandidateIds_); // the values share its block
  driver_.destroyStream(stream_);
}

Status CudaBackend::checkPlan(const plan::Plan &plan) {
  if (plan.target == "cpu" || plan.gpu.kernels.empty())
    return Status::error("this plan was compiled for '" + plan.target +
                         "' and carries no GPU kernels; compile it with --target sm_90 (or "
                         "sm_80, sm_90a) to run it on the GPU");
  if (plan.kvCache.type != plan::ElementType::F32 && plan.kvCache.type != plan::ElementType::BF16 &&
      plan.kvCache.type != plan::ElementType::F16)
    return Status::error(std::string("unsupported KV-cache type ") +
                         plan::elementTypeName(plan.kvCache.type));
  return Status::ok();
}

StatusOr<std::unique_ptr<CudaBackend>>
CudaBackend::create(const plan::Plan &plan, cuda::CudaDriver &driver, const WeightReader &reader,
                    const CudaBackendOptions &options) {
  M2C_RETURN_IF_ERROR(checkPlan(plan));
  M2C_RETURN_IF_ERROR(driver.useDevice(options.device));
  std::unique_ptr<CudaBackend> backend(new CudaBackend(plan, driver));
  backend->cudaGraphs_ = options.cudaGraphs;
  backend->programmaticLaunch_ = options.programmaticLaunch &&
                                 plan.gpu.gridDependencyControl &&
                                 driver.supportsProgrammaticLaunch();
  StatusOr<cuda::StreamHandle> stream = driver.createStream();
  if (!stream)
    return stream.status();
  backend->stream_ = *stream;
  M2C_RETURN_IF_ERROR(backend->loadKernels());
  M2C_RETURN_IF_ERROR(backend->uploadWeights(reader, options));
  M2C_RETURN_IF_ERROR(backend->encodeTensorMaps());
  M2C_RETURN_IF_ERROR(backend->allocate(options));
  return backend;
}

Status CudaBackend::allocate(const CudaBackendOptions &options) {
  const plan::KvCacheSpec &kv = plan_.kvCache;
  uint64_t workspace = 0;
  for (const plan::GpuKernel &kernel : plan_.gpu.kernels)
    workspace = std::max<uint64_t>(workspace, kernel.workspaceBytes);
  uint64_t blockBytes = static_cast<uint64_t>(kv.blockBytes());
  uint64_t perBlockAllLayers = blockBytes * kv.layers;
  int64_t blocks = options.numKvBlocks;
  int64_t maxTokens = plan_.maxTokens;
  // The block tables are sized before the cache, so estimate with the
  // sequence cap when the cache fills the rest of memory.
  auto inputBytes = [&](int64_t maxBlocks) {
    return 3 * alignUp(maxTokens * 4) + alignUp(static_cast<uint64_t>(maxTokens) * maxBlocks * 4);
  };
  int64_t seqCapBlocks =
      options.maxSequenceTokens > 0
          ? kv.blocksFor(options.maxSequenceTokens)
          : 0;
  // Each kernel's state sits after the workspace, zeroed with the arena.
  uint64_t stateBytes = 0;
  stateOffsets_.clear();
  for (const plan::GpuKernel &kernel : plan_.gpu.kernels) {
    stateOffsets_.push_back(stateBytes);
    stateBytes += alignUp(static_cast<uint64_t>(kernel.stateBytes));
  }
  uint64_t fixed = alignUp(plan_.arenaBytes()) + alignUp(workspace) + stateBytes;
  if (blocks == 0) {
    StatusOr<std::pair<uint64_t, uint64_t>> info = driver_.memoryInfo();
    if (!info)
      return info.status();
    double budget = info->second * options.memoryFraction -
                    static_cast<double>(info->second - info->first) - fixed -
                    inputBytes(seqCapBlocks ? seqCapBlocks : kDefaultMaxBlocksPerSeq);
    blocks = budget > 0 ? static_cast<int64_t>(budget / perBlockAllLayers) : 0;
    blocks = std::min<int64_t>(blocks, INT32_MAX);
    if (blocks < 2)
      return Status::error("no room on the GPU for a KV cache: weights take " +
                           std::to_string(weightBytes_ >> 20) + " MiB of " +
                           std::to_string(info->second >> 20) + " MiB");
  }
  if (blocks < 2 || blocks > INT32_MAX)
    return Status::error("the KV cache needs 2 to 2^31 blocks (block 0 is reserved), got " +
                         std::to_string(blocks));
  numKvBlocks_ = blocks;
  maxBlocksPerSeq_ = seqCapBlocks ? std::min(seqCapBlocks, blocks - 1)
                                  : std::min(blocks - 1, kDefaultMaxBlocksPerSeq);
  kvLayerBytes_ = blockBytes * static_cast<uint64_t>(blocks);
  kvBytes_ = kvLayerBytes_ * kv.layers;
  StatusOr<DevicePtr> cache = driver_.allocate(kvBytes_, "the KV cache (" +
                                                             std::to_string(blocks) + " blocks)");
  if (!cache)
    return cache.status();
  kvCache_ = *cache;
  M2C_RETURN_IF_ERROR(driver_.memset(kvCache_, 0, kvBytes_, stream_));

  arenaBytes_ = fixed + inputBytes(maxBlocksPerSeq_);
  StatusOr<DevicePtr> arena = driver_.allocate(arenaBytes_, "the activation arena");
  if (!arena)
    return arena.status();
  arena_ = *arena;
  workspace_ = arena_ + alignUp(plan_.arenaBytes());
  state_ = workspace_ + alignUp(workspace);
  inputs_ = state_ + stateBytes;
  // Padded graph tokens and stale rows must read defined memory.
  M2C_RETURN_IF_ERROR(driver_.memset(arena_, 0, arenaBytes_, stream_));
  StatusOr<void *> host = driver_.allocateHost(inputBytes(maxBlocksPerSeq_), "step inputs");
  if (!host)
    return host.status();
  hostInputs_ = *host;
  return driver_.synchronize(stream_);
}

} // namespace m2c
