//===- CpuBackend.cpp - Executes plan kernels with the reference kernels ---===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/Kernels.h"
#include "runtime/cpu/ThreadPool.h"
#include "runtime/sampling/Sampler.h"
#include "runtime/support/HostMemory.h"

#include <cstdio>
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

Status CpuBackend::checkHostMemory(const plan::Plan &plan, int64_t numKvBlocks) {
  double weights = 0;
  for (const plan::Weight &w : plan.weights)
    weights += 4.0 * static_cast<double>(w.numElements()); // held as f32
  const double kv = plan.kvCache.bytes(numKvBlocks);
  const double arena = static_cast<double>(plan.arenaBytes());
  std::optional<uint64_t> available = availableHostMemory();
  if (!available || weights + kv + arena <= static_cast<double>(*available))
    return Status::ok();
  auto gb = [](double bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
    return std::string(text);
  };
  return Status::error("the CPU backend needs " + gb(weights + kv + arena) +
                       " of host memory (weights as f32 " + gb(weights) + ", KV cache " + gb(kv) +
                       ", activations " + gb(arena) + ") and " + gb(double(*available)) +
                       " are available: use a smaller variant (--set num_hidden_layers=N), "
                       "fewer --kv-blocks, or --device cuda");
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

float *CpuBackend::KernelCall::buf(size_t input) const {
  return backend.bufferF32(entry, kernel.inputs[input].index);
}
int64_t CpuBackend::KernelCall::rows(size_t input) const {
  return entry.buffers[kernel.inputs[input].index].rows(tokens);
}
int64_t CpuBackend::KernelCall::cols(size_t input) const {
  return entry.buffers[kernel.inputs[input].index].cols;
}
const float *CpuBackend::KernelCall::w(size_t input) const {
  return backend.weight(kernel.inputs[input]);
}
const std::vector<int64_t> &CpuBackend::KernelCall::shape(size_t input) const {
  return backend.plan_.weights[kernel.inputs[input].index].shape;
}
float *CpuBackend::KernelCall::out(size_t output) const {
  return backend.bufferF32(entry, kernel.outputs[output]);
}
int32_t *CpuBackend::KernelCall::outI32(size_t output) const {
  return backend.bufferI32(entry, kernel.outputs[output]);
}

Status CpuBackend::runKernel(const plan::Entry &entry, const plan::Kernel &k,
                             const StepInputs &in) {
  const KernelCall c{*this, entry, k, in, in.numTokens()};
  switch (k.kind) {
#define M2C_KERNEL_KIND(Enum, ...)                                                               \
  case KernelKind::Enum:                                                                         \
    return run##Enum(c);
#include "runtime/plan/KernelKinds.def"
  }
  return Status::error("unknown kernel kind");
}

// outputs[0] = inputs[0] + inputs[1], outputs[1] = its rms_norm by the
// weight in inputs[2]: the add_rms_norm kernel, and the router's prologue,
// with the arithmetic of the unfused add and rms_norm.
void CpuBackend::addRmsNorm(const KernelCall &c, double eps) {
  cpu::add(c.buf(0), c.buf(1), c.rows(0) * c.cols(0), c.out());
  cpu::rmsNorm(c.out(), c.w(2), c.rows(0), c.cols(0), eps, c.out(1), *pool_);
}

Status CpuBackend::runEmbedding(const KernelCall &c) {
  return cpu::embedding(c.w(1), c.shape(1)[0], c.shape(1)[1], c.in.tokenIds.data(), c.tokens,
                        c.out());
}

Status CpuBackend::runRmsNorm(const KernelCall &c) {
  cpu::rmsNorm(c.buf(0), c.w(1), c.rows(0), c.cols(0), c.kernel.typedAttrs<plan::NormAttrs>().eps,
               c.out(), *pool_);
  return Status::ok();
}

Status CpuBackend::runAddRmsNorm(const KernelCall &c) {
  addRmsNorm(c, c.kernel.typedAttrs<plan::NormAttrs>().eps);
  return Status::ok();
}

Status CpuBackend::runLinear(const KernelCall &c) {
  // A fused projection writes consecutive column ranges to its outputs:
  // each is the unfused linear over that slice of the weight's rows.
  const float *weights = c.w(1);
  for (size_t i = 0; i < c.kernel.outputs.size(); ++i) {
    int64_t n = c.entry.buffers[c.kernel.outputs[i]].cols;
    cpu::linear(c.buf(0), c.rows(0), c.cols(0), weights, n, c.out(i), *pool_);
    weights += n * c.cols(0);
  }
  return Status::ok();
}

Status CpuBackend::runAdd(const KernelCall &c) {
  cpu::add(c.buf(0), c.buf(1), c.rows(0) * c.cols(0), c.out());
  return Status::ok();
}

Status CpuBackend::runTakeLastRow(const KernelCall &c) {
  cpu::takeLastRow(c.buf(0), c.rows(0), c.cols(0), c.out());
  return Status::ok();
}

Status CpuBackend::runLmHead(const KernelCall &c) {
  // The unfused (add,) norm and linear, then the host sampler's argmax.
  int64_t n = c.rows(0), hidden = c.cols(0), vocab = c.shape(2)[0];
  scratch_.resize(static_cast<size_t>(n * hidden));
  const float *x = c.buf(0);
  if (c.kernel.inputs.size() == 4) {
    cpu::add(x, c.buf(3), n * hidden, scratch_.data());
    x = scratch_.data();
  }
  cpu::rmsNorm(x, c.w(1), n, hidden, c.kernel.typedAttrs<plan::NormAttrs>().eps, scratch_.data(),
               *pool_);
  float *logits = c.out();
  cpu::linear(scratch_.data(), n, hidden, c.w(2), vocab, logits, *pool_);
  greedyIds(logits, n, vocab, c.outI32(1));
  if (c.kernel.outputs.size() == 4 && candidates_)
    topCandidates(logits, n, vocab, c.entry.buffers[c.kernel.outputs[2]].cols, c.outI32(2),
                  c.out(3));
  return Status::ok();
}

Status CpuBackend::runAttention(const KernelCall &c) {
  const auto attrs = c.kernel.typedAttrs<plan::AttentionAttrs>();
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
  const int64_t tokens = c.tokens;
  const float *q = c.buf(0), *key = c.buf(1);
  if (c.kernel.inputs.size() == 8) {
    // The fused QK-norm: the same rms_norm the unfused plan runs.
    int64_t qCols = c.cols(0), kCols = c.cols(1);
    scratch_.resize(static_cast<size_t>(tokens * (qCols + kCols)));
    cpu::rmsNorm(q, c.w(6), tokens, qCols, attrs.qkNormEps, scratch_.data(), *pool_);
    cpu::rmsNorm(key, c.w(7), tokens, kCols, attrs.qkNormEps, scratch_.data() + tokens * qCols,
                 *pool_);
    q = scratch_.data();
    key = scratch_.data() + tokens * qCols;
  }
  const StepInputs &in = c.in;
  return cpu::attention(q, key, c.buf(2), in.positions.data(), in.tokenSeqs.data(), tokens,
                        in.blockTables.data(), in.numSeqs, in.maxBlocks, params, cache, c.out(),
                        *pool_);
}

Status CpuBackend::runMoeRoute(const KernelCall &c) {
  // The fused prologue routes the normalised rows it writes.
  const auto route = c.kernel.typedAttrs<plan::MoeRouteAttrs>();
  const size_t first = route.addRmsNorm ? 2 : 0;
  const float *hidden = c.buf(0);
  if (route.addRmsNorm) {
    addRmsNorm(c, route.eps);
    hidden = c.out(1);
  }
  const float *bias = c.kernel.inputs.size() == first + 3 ? c.w(first + 2) : nullptr;
  return cpu::moeRoute(hidden, c.rows(0), c.cols(0), c.w(first + 1), bias,
                       c.shape(first + 1)[0], route.topK, route.softmax, route.renormalize,
                       c.outI32(first), c.out(first + 1), *pool_);
}

Status CpuBackend::runMoeExperts(const KernelCall &c) {
  const std::vector<int64_t> &w1 = c.shape(3);
  float *out = c.out();
  M2C_RETURN_IF_ERROR(cpu::moeExperts(c.buf(0), c.rows(0), c.cols(0),
                                      bufferI32(c.entry, c.kernel.inputs[1].index), c.buf(2),
                                      c.cols(1), c.w(3), c.w(4), c.w(5), w1[0], w1[1], out,
                                      *pool_));
  // The fused residual: x + experts(x), the unfused add's operand order.
  if (c.kernel.inputs.size() == 7)
    cpu::add(c.buf(6), out, c.rows(0) * c.cols(0), out);
  return Status::ok();
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
