//===- Calibration.h - GPTQ's Hessians from calibration prompts -*- C++ -*-===//
//
// GPTQ rounds a weight so that its product with the inputs it really sees
// moves least. Those inputs come from running calibration prompts through
// the plan on the CPU backend at full precision; each quantized weight
// matrix (one per expert of a stacked weight) keeps X^T X of its rows.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CALIBRATION_CALIBRATION_H
#define M2C_RUNTIME_CALIBRATION_CALIBRATION_H

#include "runtime/calibration/CalibrationPrompts.h"
#include "runtime/plan/Plan.h"
#include "runtime/support/Status.h"
#include "runtime/weights/Quantize.h"
#include "runtime/weights/Weights.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace m2c {

struct WeightHessians {
  /// [weight][matrix]: X^T X ([k, k] row-major, double) of that matrix's
  /// inputs; empty for weights that are not quantized and for matrices no
  /// row reached (an expert no calibration token chose).
  std::vector<std::vector<std::vector<double>>> hessians;
  /// [weight][matrix]: the rows each matrix saw.
  std::vector<std::vector<int64_t>> rows;
  int64_t tokens = 0;
};

struct CalibrationOptions {
  /// CPU threads for the calibration run and the Hessian sums; 0 = all.
  int numThreads = 0;
  /// After each prompt: (prompts done, total, tokens done).
  std::function<void(size_t, size_t, int64_t)> progress;
};

/// Prefills each prompt through `plan` on the CPU backend with `weights`
/// (full precision: the values before quantization) and accumulates the
/// Hessians of the plan's quantized weights. The KV cache is sized for the
/// longest prompt. Fails on an empty prompt, or with the engine's error for
/// a prompt it cannot run.
StatusOr<WeightHessians> collectHessians(const plan::Plan &plan, const WeightSet &weights,
                                         const std::vector<std::vector<int32_t>> &prompts,
                                         const CalibrationOptions &options);

struct GptqPacking {
  /// [weight]: packed bytes (storageBytes()) of each quantized weight; empty
  /// for the others.
  std::vector<std::vector<uint8_t>> packed;
  GptqStats stats;
};

struct GptqOptions {
  /// CPU threads; 0 = all. Matrices are packed in parallel.
  int numThreads = 0;
  /// After each matrix: (matrices done, total).
  std::function<void(size_t, size_t)> progress;
};

/// Packs every quantized weight of `plan` with GPTQ (packMatrixQuantizedGptq,
/// one matrix per task). A matrix that saw fewer calibration rows than it
/// has columns is rounded to nearest: its Hessian is singular, and GPTQ
/// would fit those rows alone.
GptqPacking packWithGptq(const plan::Plan &plan, const WeightSet &weights,
                         const WeightHessians &hessians, const GptqOptions &options = {});

/// Replaces each quantized weight's values in `weights` by what its GPTQ
/// bytes decode to: the values an artifact holding those bytes computes with.
void applyPacking(const plan::Plan &plan, const GptqPacking &packing, WeightSet &weights);

} // namespace m2c

#endif // M2C_RUNTIME_CALIBRATION_CALIBRATION_H
