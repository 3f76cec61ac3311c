//===- CudaWeights.cpp - The CUDA backend: kernels and weights onto the GPU ===//

#include "runtime/cuda/CudaBackend.h"

#include "runtime/checkpoint/DType.h"
#include "runtime/weights/Quantize.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace m2c {

using cuda::DevicePtr;

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

} // namespace m2c
