//===- CudaBackend.h - Executes a GPU artifact's kernels on one GPU --------===//
//
// The plan's kernels run as the PTX the compiler put in the artifact
// (plan.gpu), on one stream, over device memory laid out once:
//   arena      the compile-time memory plan (every entry's buffers), then the
//              kernels' shared workspace, then the step inputs
//   weights    one allocation, each weight 256-byte aligned, in its storage type
//   KV cache   [layers][blocks][block_size][2][kv_heads][head_dim], block 0 null
// Weights reach the GPU through two pinned staging buffers with
// asynchronous copies, so reading and converting one chunk overlaps the
// copy of the previous. Decode steps replay CUDA graphs captured per
// batch-size bucket (the batch is padded to the bucket with tokens that
// read and write only the null block).
//
// The kernels do not bounds-check ids, positions or block tables; execute()
// validates them on the host first, as the CPU backend does.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CUDA_CUDABACKEND_H
#define M2C_RUNTIME_CUDA_CUDABACKEND_H

#include "runtime/cuda/CudaDriver.h"
#include "runtime/engine/Backend.h"
#include "runtime/weights/Weights.h"

#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace m2c {

struct CudaBackendOptions {
  int device = 0;
  /// KV-cache blocks including the null block; 0 = what fits in
  /// `memoryFraction` of the GPU after weights, arena and workspace.
  int64_t numKvBlocks = 0;
  double memoryFraction = 0.9;
  /// Longest sequence the block tables can describe; 0 = the whole cache.
  int64_t maxSequenceTokens = 0;
  /// Capture decode steps as CUDA graphs per batch-size bucket.
  bool cudaGraphs = true;
  /// Launch the plan's kernels with programmatic dependent launch where the
  /// artifact's kernels allow it (sm_90+ codegen) and the driver has it:
  /// each kernel's launch overlaps the previous kernel's last wave.
  bool programmaticLaunch = true;
  /// Random weights: write them on the GPU with the artifact's fill kernels
  /// (the host's values; docs/cuda-runtime.md), else generate and upload.
  bool randomOnDevice = true;
  /// Staging chunk for weight uploads (two are allocated, pinned).
  uint64_t stagingBytes = 64ull << 20;
  /// Called per weight uploaded: (weights done, total, bytes done).
  WeightProgress progress;
};

/// Per-kernel timings of one step (see CudaBackend::profileStep).
struct KernelTiming {
  std::string name;   // plan kernel name, e.g. "layer3.attention"
  std::string kernel; // compiled kernel, e.g. "m2c_gemv_bf16_n1024_k4096"
  double microseconds = 0;
};

class CudaBackend final : public Backend {
public:
  /// Uploads the weights `reader` yields; random ones are written on the GPU
  /// when the artifact has fill kernels for their types.
  static StatusOr<std::unique_ptr<CudaBackend>>
  create(const plan::Plan &plan, cuda::CudaDriver &driver, const WeightReader &reader,
         const CudaBackendOptions &options);
  ~CudaBackend() override;
  /// Whether `plan` carries GPU kernels the backend can run; checked before
  /// the driver is touched, so the error is the same on every machine.
  static Status checkPlan(const plan::Plan &plan);

  StatusOr<StepOutputs> run(const plan::Entry &entry, const StepInputs &inputs,
                            StepReads reads) override;
  StatusOr<const float *> lastLogits() override;
  int64_t numKvBlocks() const override { return numKvBlocks_; }
  int64_t maxBlocksPerSequence() const override { return maxBlocksPerSeq_; }

  /// Runs a step kernel by kernel with events between launches (no graph),
  /// for benchmarks, with the sampling candidates' launches. The step's
  /// effects are those of execute().
  StatusOr<std::vector<KernelTiming>> profileStep(const plan::Entry &entry,
                                                  const StepInputs &inputs);
  /// GPU time of one step, in microseconds: the inputs are uploaded once,
  /// then the step (its graph for a decode bucket) runs `iterations` times
  /// between events, as execute() runs it (no sampling candidates). What
  /// the step computes is discarded.
  StatusOr<double> timeStep(const plan::Entry &entry, const StepInputs &inputs, int iterations);
  /// Device bytes held: weights, KV cache, arena (with workspace and inputs).
  uint64_t weightBytes() const { return weightBytes_; }
  /// Whether kernels launch with programmatic dependent launch.
  bool programmaticLaunch() const { return programmaticLaunch_; }
  /// Weight `index` as stored on the device, for tests.
  StatusOr<std::vector<uint8_t>> downloadWeight(size_t index);
  /// Weights the fill kernels wrote (the rest came from the host).
  int64_t weightsFilledOnDevice() const { return weightsFilledOnDevice_; }
  uint64_t kvCacheBytes() const { return kvBytes_; }
  uint64_t arenaBytes() const { return arenaBytes_; }
  int64_t graphsCaptured() const { return static_cast<int64_t>(graphs_.size()); }
  cuda::CudaDriver &driver() { return driver_; }
  cuda::StreamHandle stream() const { return stream_; }

private:
  /// Device buffers start at multiples of 256 bytes.
  static uint64_t alignUp(uint64_t value) { return (value + 255) / 256 * 256; }
  CudaBackend(const plan::Plan &plan, cuda::CudaDriver &driver) : plan_(plan), driver_(driver) {}
  struct LaunchRef {
    cuda::FunctionHandle function = nullptr;
    const plan::GpuLaunch *launch = nullptr;
    const plan::GpuKernel *kernel = nullptr;
  };
  Status loadKernels();
  Status allocate(const CudaBackendOptions &options);
  Status uploadWeights(const WeightReader &reader, const CudaBackendOptions &options);
  /// Encodes every tensor map the launches name (GpuParam::Kind::TensorMap)
  /// into device memory, once per (weight, box).
  Status encodeTensorMaps();
  /// Loads the fill kernels and writes weight i with one when there is one
  /// for its types; `filled` says whether it did.
  Status fillRandom(size_t i, uint64_t seed, bool &filled);
  /// Loads `name` from `ptx` into `fn` unless it is loaded already.
  Status loadGpuFunction(const std::string &ptx, const std::string &name,
                         cuda::FunctionHandle &fn);
  Status validate(const StepInputs &inputs) const;
  /// Copies the step inputs to the device, with block-table rows of `stride`
  /// entries and `rows` tokens (>= the step's, padded with null tokens).
  Status uploadInputs(const StepInputs &inputs, int64_t rows, int64_t stride);
  /// Enqueues every launch of `entry` for a step of `tokens` tokens; those
  /// for the sampling candidates only with `candidates`.
  Status enqueue(size_t entryIndex, int64_t tokens, int64_t stride, bool candidates,
                 std::vector<cuda::EventHandle> *kernelEvents = nullptr);
  Status launchOne(size_t entryIndex, size_t kernelIndex, const LaunchRef &ref, int64_t tokens,
                   int64_t stride);
  cuda::DevicePtr inputPtr(plan::EntryInput input) const;
  /// Index of `entry` in the plan; an entry of another plan is an error.
  StatusOr<size_t> entryIndex(const plan::Entry &entry) const;
  /// The decode graph bucket a step replays, or 0 to launch directly.
  int64_t graphBucket(const plan::Entry &entry, const StepInputs &inputs) const;
  /// Enqueues the copy of `rows` rows of logits into hostLogits_.
  Status copyLogits(const plan::Entry &entry, int64_t rows);
  /// Copies a step's greedy ids, and its logits when needed or when the
  /// entry has no ids, then waits for the stream.
  StatusOr<StepOutputs> readOutputs(const plan::Entry &entry, int64_t rows, StepReads reads);

  const plan::Plan &plan_;
  cuda::CudaDriver &driver_;
  cuda::StreamHandle stream_ = nullptr;
  std::vector<cuda::ModuleHandle> modules_;
  /// Random-fill kernels, by plan.gpu.randomFills index (loaded on use).
  std::vector<cuda::FunctionHandle> fillFunctions_;
  /// Pack kernels, by plan.gpu.packKernels index (loaded on use), and the
  /// f32 scratch a quantized weight's matrices are filled into (freed after
  /// the upload).
  std::vector<cuda::FunctionHandle> packFunctions_;
  cuda::DevicePtr packScratch_ = 0;
  uint64_t packScratchBytes_ = 0;
  /// launches_[e][k]: the launches of plan.entries[e].kernels[k].
  std::vector<std::vector<std::vector<LaunchRef>>> launches_;
  cuda::DevicePtr arena_ = 0, workspace_ = 0, state_ = 0, inputs_ = 0, weights_ = 0,
                  kvCache_ = 0;
  /// Where each GPU kernel's state starts, past state_.
  std::vector<uint64_t> stateOffsets_;
  std::vector<cuda::DevicePtr> weightPtrs_;
  /// Device addresses of the encoded tensor maps, by (weight, box rows, box
  /// columns), in one allocation.
  std::map<std::tuple<int64_t, int64_t, int64_t>, cuda::DevicePtr> tensorMaps_;
  cuda::DevicePtr tensorMapBlock_ = 0;
  uint64_t weightBytes_ = 0, kvBytes_ = 0, arenaBytes_ = 0, kvLayerBytes_ = 0;
  int64_t numKvBlocks_ = 0;
  int64_t weightsFilledOnDevice_ = 0;
  int64_t maxBlocksPerSeq_ = 0;
  bool cudaGraphs_ = true;
  bool programmaticLaunch_ = false;
  /// Pinned host memory: step inputs, and logits and greedy ids read back.
  void *hostInputs_ = nullptr;
  float *hostLogits_ = nullptr;
  int64_t hostLogitsRows_ = 0;
  int32_t *hostIds_ = nullptr;
  /// Pinned, one block: the ids, then the values, each room for max_tokens
  /// rows of the widest entry's candidates.
  int32_t *hostCandidateIds_ = nullptr;
  float *hostCandidateLogits_ = nullptr;
  /// The last step's entry and logits rows, for lastLogits().
  const plan::Entry *lastEntry_ = nullptr;
  int64_t lastRows_ = 0;
  /// Decode graphs by entry point (index into the plan's entries), bucket
  /// size, and with or without the candidates' launches.
  using GraphKey = std::tuple<size_t, int64_t, bool>;
  std::map<GraphKey, cuda::GraphHandle> graphs_;
};

} // namespace m2c

#endif // M2C_RUNTIME_CUDA_CUDABACKEND_H
