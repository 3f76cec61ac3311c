//===- CpuBackend.h - The reference backend: plan kernels in C++ ----------===//
//
// Every kernel kind maps to a reference implementation in runtime/cpu
// (fp32 accumulation, multithreaded, results independent of thread count).
// This is the numerical reference every GPU kernel is checked against.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CPU_CPUBACKEND_H
#define M2C_RUNTIME_CPU_CPUBACKEND_H

#include "runtime/engine/Backend.h"
#include "runtime/weights/Weights.h"

#include <memory>

namespace m2c {

namespace cpu {
class ThreadPool;
} // namespace cpu

struct CpuBackendOptions {
  /// KV-cache blocks, including the null block 0.
  int64_t numKvBlocks = 0;
  /// 0 = all hardware threads.
  int numThreads = 0;
};

class CpuBackend final : public Backend {
public:
  static StatusOr<std::unique_ptr<CpuBackend>> create(const plan::Plan &plan, WeightSet weights,
                                                      const CpuBackendOptions &options);
  /// Fails, before anything is loaded, when the backend would not fit in
  /// the host memory available now: its weights held as f32, its KV cache
  /// of `numKvBlocks` blocks and its arena. The error says what needs what.
  static Status checkHostMemory(const plan::Plan &plan, int64_t numKvBlocks);
  ~CpuBackend() override;

  StatusOr<StepOutputs> run(const plan::Entry &entry, const StepInputs &inputs,
                            StepReads reads) override;
  StatusOr<const float *> lastLogits() override;
  /// The weights the kernels read (calibration maps their addresses back).
  const WeightSet &weights() const { return weights_; }
  int64_t numKvBlocks() const override { return numKvBlocks_; }

private:
  CpuBackend(const plan::Plan &plan, WeightSet weights, int64_t numKvBlocks, int numThreads);
  Status runKernel(const plan::Entry &entry, const plan::Kernel &kernel, const StepInputs &inputs);

  /// One kernel of one step, with its operands at hand.
  struct KernelCall {
    CpuBackend &backend;
    const plan::Entry &entry;
    const plan::Kernel &kernel;
    const StepInputs &in;
    int64_t tokens;
    /// Input i as an f32 buffer, its rows and columns; a weight's values
    /// and shape.
    float *buf(size_t input) const;
    int64_t rows(size_t input) const;
    int64_t cols(size_t input) const;
    const float *w(size_t input) const;
    const std::vector<int64_t> &shape(size_t input) const;
    float *out(size_t output = 0) const;
    int32_t *outI32(size_t output) const;
  };
  /// The reference of each kernel kind: run<Kind> for every line of
  /// runtime/plan/KernelKinds.def, which runKernel dispatches on.
#define M2C_KERNEL_KIND(Enum, ...) Status run##Enum(const KernelCall &call);
#include "runtime/plan/KernelKinds.def"
  void addRmsNorm(const KernelCall &call, double eps);
  float *bufferF32(const plan::Entry &entry, int64_t id);
  int32_t *bufferI32(const plan::Entry &entry, int64_t id);
  const float *weight(const plan::Operand &op) const;

  const plan::Plan &plan_;
  WeightSet weights_;
  int64_t numKvBlocks_;
  std::unique_ptr<cpu::ThreadPool> pool_;
  std::vector<uint8_t> arena_;
  std::vector<uint8_t> kvCache_;
  /// Per-kernel temporaries (the fused QK-norm's normalised q and k, the
  /// lm_head's normalised rows).
  std::vector<float> scratch_;
  const plan::Entry *lastEntry_ = nullptr;
  /// Whether this step computes the sampling candidates (only when read).
  bool candidates_ = false;
};

} // namespace m2c

#endif // M2C_RUNTIME_CPU_CPUBACKEND_H
