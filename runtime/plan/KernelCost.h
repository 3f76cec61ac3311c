//===- KernelCost.h - Bytes and FLOPs of a plan kernel ----------*- C++ -*-===//
//
// The one cost model of a plan kernel for a step shape: what the fusion
// report (`m2c compile --fusion-report`) prints and what m2c-bench's
// roofline counts. No MLIR: the runtime tools use it too.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_PLAN_KERNELCOST_H
#define M2C_RUNTIME_PLAN_KERNELCOST_H

#include "runtime/plan/Plan.h"

#include <string>

namespace m2c {

struct StepShape {
  int64_t tokens = 1;     // tokens in the step (decode: one per sequence)
  int64_t context = 1024; // KV positions each token attends to
};

struct KernelCost {
  /// Every operand read once (weights as stored, only the experts and
  /// embedding rows the step touches, the KV cache it attends over), every
  /// output written once.
  double bytesRead = 0, bytesWritten = 0, flops = 0;
  /// The parts of bytesRead no kernel can avoid: weights and KV cache.
  double weightBytes = 0, cacheBytes = 0;
  /// The IR ops the kernel implements, e.g. "arith.addf + norm.rms".
  std::string sourceOps;
};

KernelCost estimateKernelCost(const plan::Plan &plan, const plan::Entry &entry,
                              const plan::Kernel &kernel, const StepShape &shape);

} // namespace m2c

#endif // M2C_RUNTIME_PLAN_KERNELCOST_H
