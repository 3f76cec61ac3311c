//===- CudaBackend.cpp - Executes a GPU artifact's kernels on one GPU -----===//

#include "runtime/cuda/CudaBackend.h"

#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace m2c {

using cuda::DevicePtr;

namespace {

constexpr uint64_t kAlign = 256;

uint64_t alignUp(uint64_t value) { return (value + kAlign - 1) / kAlign * kAlign; }

/// Block-table width without maxSequenceTokens: 64K tokens at block size 16.
constexpr int64_t kDefaultMaxBlocksPerSeq = 4096;

/// Decode batch sizes that get their own CUDA graph.
const int64_t kGraphBuckets[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256};

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

Status CudaBackend::loadKernels() {
  const plan::GpuProgram &program = plan_.gpu;
  std::vector<std::vector<cuda::FunctionHandle>> functions;
  for (const plan::GpuKernel &kernel : program.kernels) {
    StatusOr<cuda::ModuleHandle> module = driver_.loadPtx(kernel.ptx, kernel.name);
    if (!module)
      return module.status();
    modules_.push_back(*module);
    functions.emplace_back();
    for (const plan::GpuLaunch &launch : kernel.launches) {
      StatusOr<cuda::FunctionHandle> fn = driver_.function(*module, launch.entry);
      if (!fn)
        return fn.status().withContext("kernel " + kernel.name);
      if (launch.sharedBytes > 48 * 1024)
        M2C_RETURN_IF_ERROR(driver_.setMaxDynamicShared(*fn, static_cast<int>(launch.sharedBytes)));
      functions.back().push_back(*fn);
    }
  }
  launches_.resize(plan_.entries.size());
  for (size_t e = 0; e < plan_.entries.size(); ++e) {
    const plan::Entry &entry = plan_.entries[e];
    if (e >= program.kernelOf.size() || program.kernelOf[e].size() != entry.kernels.size())
      return Status::error("the GPU program does not cover entry '" + entry.name + "'");
    for (size_t k = 0; k < entry.kernels.size(); ++k) {
      int64_t index = program.kernelOf[e][k];
      const plan::GpuKernel &kernel = program.kernels[index];
      std::vector<LaunchRef> refs;
      for (size_t l = 0; l < kernel.launches.size(); ++l)
        refs.push_back({functions[index][l], &kernel.launches[l], &kernel});
      launches_[e].push_back(std::move(refs));
    }
  }
  return Status::ok();
}

Status CudaBackend::encodeTensorMaps() {
  for (size_t e = 0; e < plan_.entries.size(); ++e)
    for (size_t k = 0; k < launches_[e].size(); ++k)
      for (const LaunchRef &ref : launches_[e][k])
        for (const plan::GpuParam &param : ref.launch->params)
          if (param.kind == plan::GpuParam::Kind::TensorMap)
            tensorMaps_[{plan_.entries[e].kernels[k].inputs[param.index].index, param.box[0],
                         param.box[1]}] = 0;
  if (tensorMaps_.empty())
    return Status::ok();
  // CUtensorMap: 128 bytes, 64-byte aligned, on the host (C++17 aligned
  // new) and on the device (allocations are 256-aligned).
  struct alignas(64) HostTensorMap {
    uint64_t words[16];
  };
  constexpr uint64_t kMapBytes = sizeof(HostTensorMap);
  std::vector<HostTensorMap> host(tensorMaps_.size());
  StatusOr<DevicePtr> block = driver_.allocate(host.size() * kMapBytes, "the tensor maps");
  if (!block)
    return block.status();
  tensorMapBlock_ = *block;
  size_t i = 0;
  for (auto &[key, address] : tensorMaps_) {
    auto [weight, boxRows, boxCols] = key;
    const plan::Weight &w = plan_.weights[weight];
    using Type = cuda::CudaDriver::TensorMapType;
    Type type = w.storage.type == plan::ElementType::BF16  ? Type::BF16
                : w.storage.type == plan::ElementType::F16 ? Type::F16
                                                           : Type::F32;
    M2C_RETURN_IF_ERROR(
        driver_
            .encodeTensorMap(&host[i], type, weightPtrs_[weight],
                             static_cast<uint64_t>(w.numElements() / w.shape.back()),
                             static_cast<uint64_t>(w.shape.back()),
                             static_cast<uint32_t>(boxRows), static_cast<uint32_t>(boxCols))
            .withContext("weight '" + w.symbol + "'"));
    address = tensorMapBlock_ + i * kMapBytes;
    ++i;
  }
  M2C_RETURN_IF_ERROR(
      driver_.copyToDevice(tensorMapBlock_, host.data(), host.size() * kMapBytes, stream_));
  return driver_.synchronize(stream_);
}

Status CudaBackend::uploadWeights(const WeightReader &reader, const CudaBackendOptions &options) {
  // One allocation; every weight 256-byte aligned in its stored form.
  std::vector<uint64_t> offsets;
  uint64_t total = 0;
  for (const plan::Weight &w : plan_.weights) {
    if (w.quantization == plan::Quantization::None &&
        w.storage.type != plan::ElementType::F32 && w.storage.type != plan::ElementType::BF16)
      return Status::error("weight '" + w.symbol + "': storage type " +
                           plan::elementTypeName(w.storage.type) + " is not supported on the GPU");
    offsets.push_back(total);
    total += alignUp(w.storageBytes());
  }
  StatusOr<DevicePtr> base = driver_.allocate(total, "the weights");
  if (!base)
    return base.status();
  weights_ = *base;
  weightBytes_ = total;
  for (uint64_t offset : offsets)
    weightPtrs_.push_back(weights_ + offset);

  // Two pinned chunks: fill one while the other is copied.
  uint64_t chunk = std::max<uint64_t>(options.stagingBytes, 1 << 20);
  void *staging[2] = {nullptr, nullptr};
  cuda::EventHandle done[2] = {nullptr, nullptr};
  bool pending[2] = {false, false};
  auto release = [&] {
    for (int i = 0; i < 2; ++i) {
      driver_.freeHost(staging[i]);
      driver_.destroyEvent(done[i]);
    }
  };
  for (int i = 0; i < 2; ++i) {
    StatusOr<void *> host = driver_.allocateHost(chunk, "weight staging");
    StatusOr<cuda::EventHandle> event = driver_.createEvent();
    if (host)
      staging[i] = *host;
    if (event)
      done[i] = *event;
    if (!host || !event) {
      release();
      return host ? event.status() : host.status();
    }
  }
  Status status = [&]() -> Status {
    int next = 0;
    // Copies `bytes` to weight i through the staging chunks; write(dst,
    // begin, count) fills a chunk with bytes [begin, begin + count).
    auto stage = [&](size_t i, uint64_t bytes, uint64_t granule,
                     const std::function<void(uint8_t *, uint64_t, uint64_t)> &write) -> Status {
      uint64_t perChunk = chunk / granule * granule;
      for (uint64_t begin = 0; begin < bytes; begin += perChunk) {
        uint64_t count = std::min(perChunk, bytes - begin);
        if (pending[next])
          M2C_RETURN_IF_ERROR(driver_.waitEvent(done[next]));
        write(static_cast<uint8_t *>(staging[next]), begin, count);
        M2C_RETURN_IF_ERROR(
            driver_.copyToDevice(weightPtrs_[i] + begin, staging[next], count, stream_));
        M2C_RETURN_IF_ERROR(driver_.record(done[next], stream_));
        pending[next] = true;
        next ^= 1;
      }
      return Status::ok();
    };
    std::vector<float> values;
    std::vector<uint8_t> packed;
    uint64_t bytesDone = 0;
    for (size_t i = 0; i < plan_.weights.size(); ++i) {
      const plan::Weight &w = plan_.weights[i];
      bool filled = false;
      if (reader.random() && options.randomOnDevice)
        M2C_RETURN_IF_ERROR(fillRandom(i, reader.seed(), filled));
      if (!filled && w.quantization != plan::Quantization::None) {
        packed.resize(w.storageBytes());
        M2C_RETURN_IF_ERROR(reader.readPacked(w, packed.data()));
        M2C_RETURN_IF_ERROR(stage(i, packed.size(), 1, [&](uint8_t *dst, uint64_t begin,
                                                           uint64_t count) {
          std::memcpy(dst, packed.data() + begin, count);
        }));
      } else if (!filled) {
        values.resize(static_cast<size_t>(w.numElements()));
        M2C_RETURN_IF_ERROR(reader.read(w, values.data()));
        const uint64_t elem = plan::elementSize(w.storage.type);
        const bool bf16 = w.storage.type == plan::ElementType::BF16;
        M2C_RETURN_IF_ERROR(stage(i, values.size() * elem, elem, [&](uint8_t *dst,
                                                                     uint64_t begin,
                                                                     uint64_t count) {
          const float *src = values.data() + begin / elem;
          if (!bf16) {
            std::memcpy(dst, src, count);
            return;
          }
          uint16_t *out = reinterpret_cast<uint16_t *>(dst);
          for (uint64_t j = 0; j < count / 2; ++j)
            out[j] = f32ToBf16(src[j]);
        }));
      }
      bytesDone += w.storageBytes();
      if (options.progress)
        options.progress(i + 1, plan_.weights.size(), bytesDone);
    }
    return driver_.synchronize(stream_);
  }();
  // Copies still in flight read the staging buffers: wait before freeing.
  Status drained = driver_.synchronize(stream_);
  release();
  if (packScratch_) {
    driver_.free(packScratch_);
    packScratch_ = 0;
  }
  return status ? drained : status;
}

Status CudaBackend::loadGpuFunction(const std::string &ptx, const std::string &name,
                                    cuda::FunctionHandle &fn) {
  if (fn)
    return Status::ok();
  StatusOr<cuda::ModuleHandle> module = driver_.loadPtx(ptx, name);
  if (!module)
    return module.status();
  modules_.push_back(*module);
  StatusOr<cuda::FunctionHandle> function = driver_.function(*module, name);
  if (!function)
    return function.status();
  fn = *function;
  return Status::ok();
}

Status CudaBackend::fillRandom(size_t i, uint64_t seed, bool &filled) {
  filled = false;
  const plan::Weight &w = plan_.weights[i];
  const bool quantized = w.quantization != plan::Quantization::None;
  // A quantized weight is filled as f32 into scratch, one matrix at a time,
  // and packed from there.
  const plan::ElementType fillType = quantized ? plan::ElementType::F32 : w.storage.type;
  const std::vector<plan::GpuRandomFill> &fills = plan_.gpu.randomFills;
  auto it = std::find_if(fills.begin(), fills.end(), [&](const plan::GpuRandomFill &f) {
    return f.logical == w.type && f.storage == fillType;
  });
  const std::vector<plan::GpuPackKernel> &packs = plan_.gpu.packKernels;
  auto pack = std::find_if(packs.begin(), packs.end(), [&](const plan::GpuPackKernel &p) {
    return p.quantization == w.quantization;
  });
  if (it == fills.end() || (quantized && (pack == packs.end() || w.shape.size() < 2)))
    return Status::ok();
  size_t f = static_cast<size_t>(it - fills.begin());
  fillFunctions_.resize(fills.size(), nullptr);
  M2C_RETURN_IF_ERROR(loadGpuFunction(it->ptx, it->name, fillFunctions_[f]));

  auto launchFill = [&](uint64_t dst, int64_t count, const RandomWeightStream &stream,
                        uint64_t state) -> Status {
    double scale = stream.scale, shift = stream.shift;
    void *params[] = {&dst, &count, &state, &scale, &shift};
    int64_t pairs = (count + 1) / 2;
    cuda::LaunchDims dims;
    dims.grid[0] = static_cast<unsigned>((pairs + it->block - 1) / it->block);
    dims.block[0] = static_cast<unsigned>(it->block);
    return driver_.launch(fillFunctions_[f], dims, params, stream_)
        .withContext("random fill of '" + w.symbol + "'");
  };
  // A fused weight fills each part from its own stream (plan::weightParts).
  const auto parts = plan::weightParts(w);
  const uint64_t rowBytes = static_cast<uint64_t>(w.shape.back()) *
                            static_cast<uint64_t>(plan::elementSize(fillType));
  for (const auto &[part, row] : parts)
    if (part.numElements() % 2 && parts.size() > 1)
      return Status::ok(); // a part's last pair would straddle the next part
  if (!quantized) {
    for (const auto &[part, row] : parts) {
      RandomWeightStream stream = randomWeightStream(part, seed);
      M2C_RETURN_IF_ERROR(launchFill(weightPtrs_[i] + static_cast<uint64_t>(row) * rowBytes,
                                     part.numElements(), stream, stream.state));
    }
  } else {
    size_t p = static_cast<size_t>(pack - packs.begin());
    packFunctions_.resize(packs.size(), nullptr);
    M2C_RETURN_IF_ERROR(loadGpuFunction(pack->ptx, pack->name, packFunctions_[p]));
    int64_t rows = w.shape[w.shape.size() - 2], cols = w.shape.back();
    int64_t perMatrix = rows * cols, matrices = w.numElements() / perMatrix;
    if (perMatrix % 2)
      return Status::ok(); // the stream's pairs would straddle matrices
    uint64_t scratchBytes = static_cast<uint64_t>(perMatrix) * 4;
    if (scratchBytes > packScratchBytes_) {
      if (packScratch_)
        driver_.free(packScratch_);
      packScratch_ = 0;
      StatusOr<DevicePtr> scratch = driver_.allocate(scratchBytes, "quantized-fill scratch");
      if (!scratch)
        return scratch.status();
      packScratch_ = *scratch;
      packScratchBytes_ = scratchBytes;
    }
    const plan::PackedMatrix layout = plan::packedMatrix(w.quantization, rows, cols);
    std::array<int64_t, 3> grid = plan::packGrid(w.quantization, rows, cols);
    for (int64_t e = 0; e < matrices; ++e) {
      if (w.parts.empty()) {
        // splitmix64 is a counter: matrix e starts e * rows * cols draws in.
        RandomWeightStream stream = randomWeightStream(w, seed);
        uint64_t state =
            stream.state + static_cast<uint64_t>(e * perMatrix) * 0x9e3779b97f4a7c15ull;
        M2C_RETURN_IF_ERROR(launchFill(packScratch_, perMatrix, stream, state));
      } else {
        for (const auto &[part, row] : parts) {
          RandomWeightStream stream = randomWeightStream(part, seed);
          M2C_RETURN_IF_ERROR(launchFill(packScratch_ + static_cast<uint64_t>(row) * rowBytes,
                                         part.numElements(), stream, stream.state));
        }
      }
      uint64_t src = packScratch_;
      uint64_t codes = weightPtrs_[i] + static_cast<uint64_t>(e) * layout.bytes();
      uint64_t scales = codes + layout.codeBytes;
      void *params[] = {&src, &codes, &scales, &rows, &cols};
      cuda::LaunchDims dims;
      for (int d = 0; d < 3; ++d)
        dims.grid[d] = static_cast<unsigned>(grid[d]);
      dims.block[0] = static_cast<unsigned>(pack->block);
      M2C_RETURN_IF_ERROR(driver_.launch(packFunctions_[p], dims, params, stream_)
                              .withContext("packing '" + w.symbol + "'"));
    }
  }
  filled = true;
  ++weightsFilledOnDevice_;
  return Status::ok();
}

StatusOr<std::vector<uint8_t>> CudaBackend::downloadWeight(size_t index) {
  if (index >= plan_.weights.size())
    return Status::error("no weight " + std::to_string(index));
  const plan::Weight &w = plan_.weights[index];
  std::vector<uint8_t> bytes(static_cast<size_t>(w.storageBytes()));
  M2C_RETURN_IF_ERROR(driver_.copyToHost(bytes.data(), weightPtrs_[index], bytes.size(), stream_));
  M2C_RETURN_IF_ERROR(driver_.synchronize(stream_));
  return bytes;
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

DevicePtr CudaBackend::inputPtr(plan::EntryInput input) const {
  uint64_t column = alignUp(plan_.maxTokens * 4);
  return inputs_ + static_cast<uint64_t>(input) * column;
}

Status CudaBackend::validate(const StepInputs &in) const {
  M2C_RETURN_IF_ERROR(checkStepShape(in, plan_.maxTokens));
  int64_t tokens = in.numTokens();
  // Graph padding gives each padding token a block-table row of its own.
  if (in.numSeqs > tokens)
    return Status::error("a step has more sequences (" + std::to_string(in.numSeqs) +
                         ") than tokens (" + std::to_string(tokens) + ")");
  if (in.maxBlocks > maxBlocksPerSeq_)
    return Status::error("a block table of " + std::to_string(in.maxBlocks) +
                         " blocks exceeds the backend's limit of " +
                         std::to_string(maxBlocksPerSeq_) + " blocks per sequence");
  for (int32_t block : in.blockTables)
    if (block < 0 || block >= numKvBlocks_)
      return Status::error("block table entry " + std::to_string(block) + " out of range");
  for (int64_t t = 0; t < tokens; ++t) {
    if (in.tokenIds[t] < 0 || in.tokenIds[t] >= plan_.vocabSize)
      return Status::error("token id " + std::to_string(in.tokenIds[t]) + " out of range");
    if (in.tokenSeqs[t] < 0 || in.tokenSeqs[t] >= in.numSeqs)
      return Status::error("token " + std::to_string(t) + " names sequence " +
                           std::to_string(in.tokenSeqs[t]) + " of " + std::to_string(in.numSeqs));
    int64_t pos = in.positions[t];
    if (pos < 0 || pos >= in.maxBlocks * plan_.kvCache.blockSize)
      return Status::error("position " + std::to_string(pos) + " beyond the block table");
    if (in.blockTables[in.tokenSeqs[t] * in.maxBlocks + pos / plan_.kvCache.blockSize] == 0)
      return Status::error("position " + std::to_string(pos) + " has no KV block");
  }
  return Status::ok();
}

Status CudaBackend::uploadInputs(const StepInputs &in, int64_t rows, int64_t stride) {
  int64_t tokens = in.numTokens();
  uint64_t column = alignUp(plan_.maxTokens * 4);
  auto *base = static_cast<uint8_t *>(hostInputs_);
  auto *ids = reinterpret_cast<int32_t *>(base);
  auto *pos = reinterpret_cast<int32_t *>(base + column);
  auto *seqs = reinterpret_cast<int32_t *>(base + 2 * column);
  auto *tables = reinterpret_cast<int32_t *>(base + 3 * column);
  std::copy(in.tokenIds.begin(), in.tokenIds.end(), ids);
  std::copy(in.positions.begin(), in.positions.end(), pos);
  std::copy(in.tokenSeqs.begin(), in.tokenSeqs.end(), seqs);
  int64_t tableRows = std::max(in.numSeqs, in.numSeqs + (rows - tokens));
  std::fill(tables, tables + tableRows * stride, 0);
  for (int64_t s = 0; s < in.numSeqs; ++s)
    std::copy(in.blockTables.begin() + s * in.maxBlocks,
              in.blockTables.begin() + (s + 1) * in.maxBlocks, tables + s * stride);
  // Padding tokens: token 0 at position 0 of an all-null row, so they
  // write and read only the null block.
  for (int64_t t = tokens; t < rows; ++t) {
    ids[t] = 0;
    pos[t] = 0;
    seqs[t] = static_cast<int32_t>(in.numSeqs + (t - tokens));
  }
  M2C_RETURN_IF_ERROR(driver_.copyToDevice(inputPtr(plan::EntryInput::TokenIds), ids,
                                           3 * column, stream_));
  return driver_.copyToDevice(inputPtr(plan::EntryInput::BlockTables), tables,
                              static_cast<uint64_t>(tableRows * stride) * 4, stream_);
}

Status CudaBackend::launchOne(size_t e, size_t k, const LaunchRef &ref, int64_t tokens,
                              int64_t stride) {
  const plan::Entry &entry = plan_.entries[e];
  const plan::Kernel &kernel = entry.kernels[k];
  const plan::GpuLaunch &launch = *ref.launch;
  uint64_t values[32];
  void *params[32];
  if (launch.params.size() > 32)
    return Status::error("kernel " + ref.kernel->name + " has too many parameters");
  for (size_t p = 0; p < launch.params.size(); ++p) {
    const plan::GpuParam &param = launch.params[p];
    uint64_t &value = values[p];
    switch (param.kind) {
    case plan::GpuParam::Kind::Input: {
      const plan::Operand &op = kernel.inputs[param.index];
      if (op.kind == plan::Operand::Kind::Input)
        value = inputPtr(static_cast<plan::EntryInput>(op.index));
      else if (op.kind == plan::Operand::Kind::Weight)
        value = weightPtrs_[op.index];
      else
        value = arena_ + entry.buffers[op.index].offset;
      break;
    }
    case plan::GpuParam::Kind::Output:
      value = arena_ + entry.buffers[kernel.outputs[param.index]].offset;
      break;
    case plan::GpuParam::Kind::KvCacheLayer:
      value = kvCache_ + static_cast<uint64_t>(kernel.typedAttrs<plan::AttentionAttrs>().layer) *
                             kvLayerBytes_;
      break;
    case plan::GpuParam::Kind::Workspace:
      value = workspace_ + param.index;
      break;
    case plan::GpuParam::Kind::State:
      value = state_ + stateOffsets_[ref.kernel - plan_.gpu.kernels.data()] + param.index;
      break;
    case plan::GpuParam::Kind::NumTokens:
      value = static_cast<uint32_t>(tokens);
      break;
    case plan::GpuParam::Kind::MaxBlocks:
      value = static_cast<uint32_t>(stride);
      break;
    case plan::GpuParam::Kind::TensorMap:
      value = tensorMaps_.at({kernel.inputs[param.index].index, param.box[0], param.box[1]});
      break;
    }
    params[p] = &value;
  }
  cuda::LaunchDims dims;
  for (int d = 0; d < 3; ++d) {
    dims.grid[d] = static_cast<unsigned>(launch.grid[d].evaluate(tokens));
    dims.block[d] = static_cast<unsigned>(launch.block[d]);
  }
  dims.sharedBytes = static_cast<unsigned>(launch.sharedBytes);
  return driver_.launch(ref.function, dims, params, stream_, programmaticLaunch_)
      .withContext(kernel.name + " (" + launch.entry + ")");
}

Status CudaBackend::enqueue(size_t e, int64_t tokens, int64_t stride, bool candidates,
                            std::vector<cuda::EventHandle> *kernelEvents) {
  for (size_t k = 0; k < launches_[e].size(); ++k) {
    for (const LaunchRef &ref : launches_[e][k])
      if (candidates || !ref.launch->forCandidates)
        M2C_RETURN_IF_ERROR(launchOne(e, k, ref, tokens, stride));
    if (kernelEvents)
      M2C_RETURN_IF_ERROR(driver_.record((*kernelEvents)[k + 1], stream_));
  }
  return Status::ok();
}

StatusOr<size_t> CudaBackend::entryIndex(const plan::Entry &entry) const {
  for (size_t e = 0; e < plan_.entries.size(); ++e)
    if (&plan_.entries[e] == &entry)
      return e;
  return Status::error("entry '" + entry.name + "' is not this backend's plan's");
}

int64_t CudaBackend::graphBucket(const plan::Entry &entry, const StepInputs &in) const {
  // Prefill grids depend on the chunk length; a decode step pads to a bucket.
  if (!cudaGraphs_ || entry.lastTokenLogits || in.numSeqs != in.numTokens())
    return 0;
  for (int64_t bucket : kGraphBuckets)
    if (bucket >= in.numTokens() && bucket <= plan_.maxTokens)
      return bucket;
  return 0;
}

Status CudaBackend::copyLogits(const plan::Entry &entry, int64_t rows) {
  if (rows > hostLogitsRows_) {
    driver_.freeHost(hostLogits_);
    hostLogits_ = nullptr;
    hostLogitsRows_ = 0;
    StatusOr<void *> host =
        driver_.allocateHost(static_cast<uint64_t>(rows) * plan_.vocabSize * 4, "logits");
    if (!host)
      return host.status();
    hostLogits_ = static_cast<float *>(*host);
    hostLogitsRows_ = rows;
  }
  return driver_.copyToHost(hostLogits_, arena_ + entry.buffers[entry.output].offset,
                            static_cast<uint64_t>(rows) * plan_.vocabSize * 4, stream_);
}

StatusOr<StepOutputs> CudaBackend::readOutputs(const plan::Entry &entry, int64_t rows,
                                               StepReads reads) {
  StepOutputs out;
  lastEntry_ = &entry;
  lastRows_ = rows;
  if (entry.greedyIds >= 0) {
    if (!hostIds_) {
      StatusOr<void *> host = driver_.allocateHost(plan_.maxTokens * 4, "greedy ids");
      if (!host)
        return host.status();
      hostIds_ = static_cast<int32_t *>(*host);
    }
    M2C_RETURN_IF_ERROR(driver_.copyToHost(hostIds_, arena_ + entry.buffers[entry.greedyIds].offset,
                                           static_cast<uint64_t>(rows) * 4, stream_));
    out.greedyIds = hostIds_;
  }
  if (reads.candidates && entry.candidateIds >= 0) {
    if (!hostCandidateIds_) {
      int64_t widest = 0;
      for (const plan::Entry &e : plan_.entries)
        if (e.candidateIds >= 0)
          widest = std::max(widest, e.buffers[e.candidateIds].cols);
      StatusOr<void *> host = driver_.allocateHost(plan_.maxTokens * widest * 8, "candidates");
      if (!host)
        return host.status();
      hostCandidateIds_ = static_cast<int32_t *>(*host);
      hostCandidateLogits_ =
          reinterpret_cast<float *>(hostCandidateIds_ + plan_.maxTokens * widest);
    }
    const int64_t count = entry.buffers[entry.candidateIds].cols;
    const uint64_t bytes = static_cast<uint64_t>(rows) * count * 4;
    M2C_RETURN_IF_ERROR(driver_.copyToHost(
        hostCandidateIds_, arena_ + entry.buffers[entry.candidateIds].offset, bytes, stream_));
    M2C_RETURN_IF_ERROR(driver_.copyToHost(hostCandidateLogits_,
                                           arena_ + entry.buffers[entry.candidateLogits].offset,
                                           bytes, stream_));
    out.candidateIds = hostCandidateIds_;
    out.candidateLogits = hostCandidateLogits_;
    out.numCandidates = count;
  }
  if (reads.logits || entry.greedyIds < 0) {
    M2C_RETURN_IF_ERROR(copyLogits(entry, rows));
    out.logits = hostLogits_;
  }
  M2C_RETURN_IF_ERROR(driver_.synchronize(stream_));
  return out;
}

StatusOr<const float *> CudaBackend::lastLogits() {
  if (!lastEntry_)
    return Status::error("no step has run");
  // The arena keeps the last step's logits until the next step.
  M2C_RETURN_IF_ERROR(copyLogits(*lastEntry_, lastRows_));
  M2C_RETURN_IF_ERROR(driver_.synchronize(stream_));
  return static_cast<const float *>(hostLogits_);
}

StatusOr<StepOutputs> CudaBackend::run(const plan::Entry &entry, const StepInputs &in,
                                       StepReads reads) {
  lastEntry_ = nullptr;
  M2C_RETURN_IF_ERROR(validate(in));
  StatusOr<size_t> index = entryIndex(entry);
  if (!index)
    return index.status();
  size_t e = *index;
  int64_t tokens = in.numTokens();
  int64_t rows = entry.lastTokenLogits ? 1 : tokens;
  int64_t bucket = graphBucket(entry, in);
  // The candidates' launches run only for a step that reads them.
  const bool candidates = reads.candidates && entry.candidateIds >= 0;
  if (bucket == 0) {
    M2C_RETURN_IF_ERROR(uploadInputs(in, tokens, in.maxBlocks));
    M2C_RETURN_IF_ERROR(enqueue(e, tokens, in.maxBlocks, candidates));
    return readOutputs(entry, rows, reads);
  }
  // Graph replay: every bucket-sized step has the same pointers and the
  // widest block tables, so one capture serves all of them.
  M2C_RETURN_IF_ERROR(uploadInputs(in, bucket, maxBlocksPerSeq_));
  const GraphKey key{e, bucket, candidates};
  auto found = graphs_.find(key);
  if (found == graphs_.end()) {
    M2C_RETURN_IF_ERROR(driver_.beginCapture(stream_));
    Status captured = enqueue(e, bucket, maxBlocksPerSeq_, candidates);
    StatusOr<cuda::GraphHandle> graph = driver_.endCapture(stream_);
    M2C_RETURN_IF_ERROR(captured);
    if (!graph)
      return graph.status();
    found = graphs_.emplace(key, *graph).first;
  }
  M2C_RETURN_IF_ERROR(driver_.launchGraph(found->second, stream_));
  return readOutputs(entry, rows, reads);
}

StatusOr<double> CudaBackend::timeStep(const plan::Entry &entry, const StepInputs &in,
                                       int iterations) {
  // One execute() first: it validates, and captures the bucket's graph.
  StatusOr<const float *> warm = execute(entry, in);
  if (!warm)
    return warm.status();
  size_t e = *entryIndex(entry); // execute() above checked it
  int64_t tokens = in.numTokens();
  int64_t bucket = graphBucket(entry, in);
  StatusOr<cuda::EventHandle> start = driver_.createEvent();
  StatusOr<cuda::EventHandle> stop = driver_.createEvent();
  if (!start || !stop) {
    if (start)
      driver_.destroyEvent(*start);
    if (stop)
      driver_.destroyEvent(*stop);
    return start ? stop.status() : start.status();
  }
  Status status = [&]() -> Status {
    M2C_RETURN_IF_ERROR(bucket ? uploadInputs(in, bucket, maxBlocksPerSeq_)
                               : uploadInputs(in, tokens, in.maxBlocks));
    M2C_RETURN_IF_ERROR(driver_.record(*start, stream_));
    for (int i = 0; i < iterations; ++i)
      M2C_RETURN_IF_ERROR(bucket ? driver_.launchGraph(graphs_.at(GraphKey{e, bucket, false}), stream_)
                                 : enqueue(e, tokens, in.maxBlocks, false));
    M2C_RETURN_IF_ERROR(driver_.record(*stop, stream_));
    return driver_.synchronize(stream_);
  }();
  double microseconds = 0;
  if (status) {
    StatusOr<float> ms = driver_.elapsed(*start, *stop);
    if (ms)
      microseconds = *ms * 1000.0 / std::max(iterations, 1);
    else
      status = ms.status();
  }
  driver_.destroyEvent(*start);
  driver_.destroyEvent(*stop);
  if (!status)
    return status;
  return microseconds;
}

StatusOr<std::vector<KernelTiming>> CudaBackend::profileStep(const plan::Entry &entry,
                                                             const StepInputs &in) {
  M2C_RETURN_IF_ERROR(validate(in));
  StatusOr<size_t> index = entryIndex(entry);
  if (!index)
    return index.status();
  size_t e = *index;
  std::vector<cuda::EventHandle> events(entry.kernels.size() + 1, nullptr);
  auto release = [&] {
    for (cuda::EventHandle event : events)
      driver_.destroyEvent(event);
  };
  for (cuda::EventHandle &event : events) {
    StatusOr<cuda::EventHandle> created = driver_.createEvent();
    if (!created) {
      release();
      return created.status();
    }
    event = *created;
  }
  Status status = [&]() -> Status {
    M2C_RETURN_IF_ERROR(uploadInputs(in, in.numTokens(), in.maxBlocks));
    M2C_RETURN_IF_ERROR(driver_.record(events[0], stream_));
    M2C_RETURN_IF_ERROR(enqueue(e, in.numTokens(), in.maxBlocks, /*candidates=*/true, &events));
    return driver_.synchronize(stream_);
  }();
  std::vector<KernelTiming> timings;
  for (size_t k = 0; status && k < entry.kernels.size(); ++k) {
    StatusOr<float> ms = driver_.elapsed(events[k], events[k + 1]);
    if (!ms) {
      status = ms.status();
      break;
    }
    const plan::GpuKernel &kernel = plan_.gpu.kernels[plan_.gpu.kernelOf[e][k]];
    timings.push_back({entry.kernels[k].name, kernel.name, *ms * 1000.0});
  }
  release();
  if (!status)
    return status;
  return timings;
}

} // namespace m2c
