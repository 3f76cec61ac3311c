//===- CudaSteps.cpp - The CUDA backend: running steps ---------------------===//

#include "runtime/cuda/CudaBackend.h"

#include <algorithm>

namespace m2c {

using cuda::DevicePtr;

namespace {

/// Decode batch sizes that get their own CUDA graph.
const int64_t kGraphBuckets[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256};

} // namespace

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
