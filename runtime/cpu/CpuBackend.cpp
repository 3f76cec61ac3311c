//===- CpuBackend.cpp - Executes plan kernels with the reference kernels ---===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/ThreadPool.h"
#include "runtime/sampling/Sampler.h"

#include <cstring>

namespace m2c {

using plan::KernelKind;

CpuBackend::CpuBackend(const plan::Plan &plan, WeightSet weights, int64_t numKvBlocks,
                       int numThreads)
    : plan_(plan), weights_(std::move(weights)), numKvBlocks_(numKvBlocks),
      pool_(std::make_unique<cpu::ThreadPool>(numThreads)) {}

CpuBackend::~CpuBackend() = default;

StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::create(const plan::Plan &plan,
                                                         WeightSet weights,
                                                         const CpuBackendOptions &options) {
  if (weights.tensors.size() != plan.weights.size())
    return Status::error("weight set does not match the plan");
  for (size_t i = 0; i < plan.weights.size(); ++i)
    if (static_cast<int64_t>(weights.tensors[i].size()) != plan.weights[i].numElements())
      return Status::error("weight '" + plan.weights[i].symbol + "' has the wrong size");
  if (plan.kvCache.type != plan::ElementType::F32 && plan.kvCache.type != plan::ElementType::BF16)
    return Status::error(std::string("the CPU backend supports f32 and bf16 KV caches, not ") +
                         plan::elementTypeName(plan.kvCache.type));
  if (options.numKvBlocks < 2)
    return Status::error("the KV cache needs at least 2 blocks (block 0 is reserved), got " +
                         std::to_string(options.numKvBlocks));
  std::unique_ptr<CpuBackend> backend(
      new CpuBackend(plan, std::move(weights), options.numKvBlocks, options.numThreads));
  backend->arena_.assign(static_cast<size_t>(plan.arenaBytes()), 0);
  const plan::KvCacheSpec &kv = plan.kvCache;
  double bytes = kv.bytes(options.numKvBlocks);
  if (bytes > 64e9)
    return Status::error("KV cache of " + std::to_string(options.numKvBlocks) +
                         " blocks needs " + std::to_string(bytes / 1e9) +
                         " GB; ask for fewer blocks");
  backend->kvCache_.assign(static_cast<size_t>(bytes), 0);
  return backend;
}

float *CpuBackend::bufferF32(const plan::Entry &entry, int64_t id) {
  return reinterpret_cast<float *>(arena_.data() + entry.buffers[id].offset);
}

int32_t *CpuBackend::bufferI32(const plan::Entry &entry, int64_t id) {
  return reinterpret_cast<int32_t *>(arena_.data() + entry.buffers[id].offset);
}

const float *CpuBackend::weight(const plan::Operand &op) const {
  return weights_.tensors[op.index].data();
}

Status CpuBackend::runKernel(const plan::Entry &entry, const plan::Kernel &k,
                             const StepInputs &in) {
  int64_t tokens = in.numTokens();
  auto buf = [&](size_t input) { return bufferF32(entry, k.inputs[input].index); };
  auto rows = [&](size_t input) { return entry.buffers[k.inputs[input].index].rows(tokens); };
  auto cols = [&](size_t input) { return entry.buffers[k.inputs[input].index].cols; };
  auto w = [&](size_t input) { return weight(k.inputs[input]); };
  auto shape = [&](size_t input) -> const std::vector<int64_t> & {
    return plan_.weights[k.inputs[input].index].shape;
  };
  float *out = bufferF32(entry, k.outputs[0]);
  // outputs[0] = inputs[0] + inputs[1], outputs[1] = its rms_norm by the
  // weight in inputs[2]: the add_rms_norm kernel, and the router's
  // prologue, with the arithmetic of the unfused add and rms_norm.
  auto addRmsNorm = [&](double eps) {
    cpu::add(buf(0), buf(1), rows(0) * cols(0), out);
    cpu::rmsNorm(out, w(2), rows(0), cols(0), eps, bufferF32(entry, k.outputs[1]), *pool_);
  };
  switch (k.kind) {
  case KernelKind::Embedding:
    return cpu::embedding(w(1), shape(1)[0], shape(1)[1], in.tokenIds.data(), tokens, out);
  case KernelKind::RmsNorm:
    cpu::rmsNorm(buf(0), w(1), rows(0), cols(0), k.typedAttrs<plan::NormAttrs>().eps, out,
                 *pool_);
    return Status::ok();
  case KernelKind::AddRmsNorm:
    addRmsNorm(k.typedAttrs<plan::NormAttrs>().eps);
    return Status::ok();
  case KernelKind::Linear: {
    // A fused projection writes consecutive column ranges to its outputs:
    // each is the unfused linear over that slice of the weight's rows.
    const float *weights = w(1);
    for (int64_t output : k.outputs) {
      int64_t n = entry.buffers[output].cols;
      cpu::linear(buf(0), rows(0), cols(0), weights, n, bufferF32(entry, output), *pool_);
      weights += n * cols(0);
    }
    return Status::ok();
  }
  case KernelKind::Add:
    cpu::add(buf(0), buf(1), rows(0) * cols(0), out);
    return Status::ok();
  case KernelKind::TakeLastRow:
    cpu::takeLastRow(buf(0), rows(0), cols(0), out);
    return Status::ok();
  case KernelKind::LmHead: {
    // The unfused (add,) norm and linear, then the host sampler's argmax.
    int64_t n = rows(0), hidden = cols(0), vocab = shape(2)[0];
    scratch_.resize(static_cast<size_t>(n * hidden));
    const float *x = buf(0);
    if (k.inputs.size() == 4) {
      cpu::add(x, buf(3), n * hidden, scratch_.data());
      x = scratch_.data();
    }
    cpu::rmsNorm(x, w(1), n, hidden, k.typedAttrs<plan::NormAttrs>().eps, scratch_.data(),
                 *pool_);
    cpu::linear(scratch_.data(), n, hidden, w(2), vocab, out, *pool_);
    greedyIds(out, n, vocab, bufferI32(entry, k.outputs[1]));
    if (k.outputs.size() == 4 && candidates_)
      topCandidates(out, n, vocab, entry.buffers[k.outputs[2]].cols,
                    bufferI32(entry, k.outputs[2]), bufferF32(entry, k.outputs[3]));
    return Status::ok();
  }
  case KernelKind::Attention: {
    const auto attrs = k.typedAttrs<plan::AttentionAttrs>();
    cpu::AttentionParams params;
    params.layer = attrs.layer;
    params.numHeads = attrs.numHeads;
    params.numKvHeads = attrs.numKvHeads;
    params.headDim = attrs.headDim;
    params.rotaryDim = attrs.rotaryDim;
    params.ropeTheta = attrs.ropeTheta;
    params.causal = attrs.causal;
    cpu::KvCacheView cache;
    cache.data = kvCache_.data();
    cache.bf16 = plan_.kvCache.type == plan::ElementType::BF16;
    cache.layers = plan_.kvCache.layers;
    cache.numBlocks = numKvBlocks_;
    cache.blockSize = plan_.kvCache.blockSize;
    cache.kvHeads = plan_.kvCache.kvHeads;
    cache.headDim = plan_.kvCache.headDim;
    const float *q = buf(0), *key = buf(1);
    if (k.inputs.size() == 8) {
      // The fused QK-norm: the same rms_norm the unfused plan runs.
      int64_t qCols = cols(0), kCols = cols(1);
      scratch_.resize(static_cast<size_t>(tokens * (qCols + kCols)));
      cpu::rmsNorm(q, w(6), tokens, qCols, attrs.qkNormEps, scratch_.data(), *pool_);
      cpu::rmsNorm(key, w(7), tokens, kCols, attrs.qkNormEps,
                   scratch_.data() + tokens * qCols, *pool_);
      q = scratch_.data();
      key = scratch_.data() + tokens * qCols;
    }
    return cpu::attention(q, key, buf(2), in.positions.data(), in.tokenSeqs.data(), tokens,
                          in.blockTables.data(), in.numSeqs, in.maxBlocks, params, cache, out,
                          *pool_);
  }
  case KernelKind::MoeRoute: {
    // The fused prologue routes the normalised rows it writes.
    const auto route = k.typedAttrs<plan::MoeRouteAttrs>();
    const size_t first = route.addRmsNorm ? 2 : 0;
    const float *hidden = buf(0);
    if (route.addRmsNorm) {
      addRmsNorm(route.eps);
      hidden = bufferF32(entry, k.outputs[1]);
    }
    const float *bias = k.inputs.size() == first + 3 ? w(first + 2) : nullptr;
    return cpu::moeRoute(hidden, rows(0), cols(0), w(first + 1), bias, shape(first + 1)[0],
                         route.topK, route.softmax, route.renormalize,
                         bufferI32(entry, k.outputs[first]),
                         bufferF32(entry, k.outputs[first + 1]), *pool_);
  }
  case KernelKind::MoeExperts: {
    const std::vector<int64_t> &w1 = shape(3);
    M2C_RETURN_IF_ERROR(cpu::moeExperts(buf(0), rows(0), cols(0),
                                        bufferI32(entry, k.inputs[1].index), buf(2), cols(1), w(3),
                                        w(4), w(5), w1[0], w1[1], out, *pool_));
    // The fused residual: x + experts(x), the unfused add's operand order.
    if (k.inputs.size() == 7)
      cpu::add(buf(6), out, rows(0) * cols(0), out);
    return Status::ok();
  }
  }
  return Status::error("unknown kernel kind");
}

StatusOr<StepOutputs> CpuBackend::run(const plan::Entry &entry, const StepInputs &in,
                                       StepReads reads) {
  lastEntry_ = nullptr;
  candidates_ = reads.candidates && entry.candidateIds >= 0;
  M2C_RETURN_IF_ERROR(checkStepShape(in, plan_.maxTokens));
  for (const plan::Kernel &kernel : entry.kernels)
    M2C_RETURN_IF_ERROR(runKernel(entry, kernel, in).withContext(kernel.name));
  lastEntry_ = &entry;
  StepOutputs out;
  out.logits = bufferF32(entry, entry.output);
  if (entry.greedyIds >= 0)
    out.greedyIds = bufferI32(entry, entry.greedyIds);
  if (candidates_) {
    out.candidateIds = bufferI32(entry, entry.candidateIds);
    out.candidateLogits = bufferF32(entry, entry.candidateLogits);
    out.numCandidates = entry.buffers[entry.candidateIds].cols;
  }
  return out;
}

StatusOr<const float *> CpuBackend::lastLogits() {
  if (!lastEntry_)
    return Status::error("no step has run");
  return static_cast<const float *>(bufferF32(*lastEntry_, lastEntry_->output));
}

} // namespace m2c
