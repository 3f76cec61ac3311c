//===- Calibration.cpp - GPTQ's Hessians from calibration prompts ---------===//

#include "runtime/calibration/Calibration.h"

#include "runtime/cpu/InputObserver.h"
#include "runtime/cpu/ThreadPool.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/engine/Engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>

namespace m2c {
namespace {

/// Maps a matrix address the kernels report back to (weight, matrix) and
/// accumulates X^T X there. Only quantized weights are tracked. A fused
/// weight's later parts (q/k/v in one tensor) share the first part's input,
/// so only the first part's call counts.
class HessianCollector final : public cpu::InputObserver {
public:
  HessianCollector(const plan::Plan &plan, const WeightSet &weights, WeightHessians &out,
                   cpu::ThreadPool &pool)
      : out_(out), pool_(pool) {
    out_.hessians.resize(plan.weights.size());
    out_.rows.resize(plan.weights.size());
    for (size_t i = 0; i < plan.weights.size(); ++i) {
      const plan::Weight &w = plan.weights[i];
      if (w.quantization == plan::Quantization::None || w.shape.size() < 2)
        continue;
      int64_t cols = w.shape.back(), rows = w.shape[w.shape.size() - 2];
      int64_t matrices = w.numElements() / (rows * cols);
      out_.hessians[i].resize(static_cast<size_t>(matrices));
      out_.rows[i].assign(static_cast<size_t>(matrices), 0);
      const float *begin = weights.tensors[i].data();
      byStart_[begin] = {i, rows * cols, cols, begin + w.numElements()};
    }
  }

  void observe(const float *matrix, const float *const *rows, int64_t numRows,
               int64_t k) override {
    if (numRows == 0)
      return; // an expert no token chose: it keeps no Hessian
    auto it = byStart_.upper_bound(matrix);
    if (it == byStart_.begin())
      return;
    --it;
    const Tracked &t = it->second;
    if (matrix >= t.end || k != t.cols)
      return;
    int64_t offset = matrix - it->first;
    if (offset % t.matrixElements != 0)
      return; // a later part of a fused weight
    size_t m = static_cast<size_t>(offset / t.matrixElements);
    std::vector<double> &h = out_.hessians[t.weight][m];
    if (h.empty())
      h.assign(static_cast<size_t>(k * k), 0.0);
    // Lower triangle here, mirrored once at the end; each task owns rows
    // of H, so the sums need no locks.
    pool_.parallelFor(
        k,
        [&](int64_t begin, int64_t end) {
          for (int64_t r = 0; r < numRows; ++r) {
            const float *x = rows[r];
            for (int64_t i = begin; i < end; ++i) {
              double xi = x[i];
              double *hi = h.data() + i * k;
              for (int64_t j = 0; j <= i; ++j)
                hi[j] += xi * double(x[j]);
            }
          }
        },
        16);
    out_.rows[t.weight][m] += numRows;
  }

  void finish() {
    for (auto &perWeight : out_.hessians)
      for (std::vector<double> &h : perWeight) {
        if (h.empty())
          continue;
        int64_t k = static_cast<int64_t>(std::llround(std::sqrt(double(h.size()))));
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = i + 1; j < k; ++j)
            h[i * k + j] = h[j * k + i];
      }
  }

private:
  struct Tracked {
    size_t weight;
    int64_t matrixElements, cols;
    const float *end;
  };
  std::map<const float *, Tracked> byStart_;
  WeightHessians &out_;
  cpu::ThreadPool &pool_;
};

} // namespace

StatusOr<WeightHessians> collectHessians(const plan::Plan &plan, const WeightSet &weights,
                                         const std::vector<std::vector<int32_t>> &prompts,
                                         const CalibrationOptions &options) {
  if (weights.tensors.size() != plan.weights.size())
    return Status::error("calibration: the weights do not belong to the plan");
  size_t longest = 0;
  for (const std::vector<int32_t> &prompt : prompts)
    longest = std::max(longest, prompt.size());
  CpuBackendOptions backendOptions;
  backendOptions.numThreads = options.numThreads;
  int64_t blockSize = std::max<int64_t>(1, plan.kvCache.blockSize);
  backendOptions.numKvBlocks = (int64_t(longest) + 1 + blockSize - 1) / blockSize + 1;
  StatusOr<std::unique_ptr<CpuBackend>> backend =
      CpuBackend::create(plan, weights, backendOptions);
  if (!backend)
    return backend.status();
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, **backend, EngineOptions{});
  if (!engine)
    return engine.status();

  WeightHessians result;
  // The observer runs between kernels, from the engine's thread, so its
  // own pool never overlaps the backend's.
  cpu::ThreadPool pool(options.numThreads);
  HessianCollector collector(plan, (*backend)->weights(), result, pool);
  cpu::ScopedInputObserver observing(collector);
  for (size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].empty())
      return Status::error("calibration prompt " + std::to_string(p + 1) + " is empty");
    GenerationRequest request;
    request.promptIds = prompts[p];
    request.maxNewTokens = 1; // the prefill alone
    StatusOr<std::vector<GenerationResult>> ran = (*engine)->generate({request});
    if (!ran)
      return ran.status();
    if (!(*ran)[0].status)
      return Status::error("calibration prompt " + std::to_string(p + 1) + ": " +
                           (*ran)[0].status.message());
    result.tokens += int64_t(prompts[p].size());
    if (options.progress)
      options.progress(p + 1, prompts.size(), result.tokens);
  }
  collector.finish();
  return result;
}

GptqPacking packWithGptq(const plan::Plan &plan, const WeightSet &weights,
                         const WeightHessians &hessians, const GptqOptions &options) {
  GptqPacking packing;
  packing.packed.resize(plan.weights.size());
  // One task per matrix (an expert of a stacked weight): they are
  // independent, and a large one costs O(k^3).
  std::vector<std::pair<size_t, int64_t>> tasks;
  for (size_t i = 0; i < plan.weights.size(); ++i) {
    const plan::Weight &w = plan.weights[i];
    if (w.quantization == plan::Quantization::None)
      continue;
    packing.packed[i].resize(w.storageBytes());
    int64_t rows = w.shape[w.shape.size() - 2], cols = w.shape.back();
    for (int64_t m = 0; m < w.numElements() / (rows * cols); ++m)
      tasks.emplace_back(i, m);
  }
  static const std::vector<double> none;
  std::vector<char> usedGptq(tasks.size(), 0);
  std::atomic<size_t> done{0};
  std::mutex progressMutex;
  cpu::ThreadPool pool(options.numThreads);
  pool.parallelFor(int64_t(tasks.size()), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      auto [i, m] = tasks[t];
      const plan::Weight &w = plan.weights[i];
      // A Hessian of fewer rows than columns is singular: GPTQ would fit
      // those few rows (the lm_head sees one per prompt) and generalise
      // worse than rounding to nearest, so such matrices get none.
      const std::vector<double> *hessian = &none;
      if (i < hessians.hessians.size() && size_t(m) < hessians.hessians[i].size() &&
          hessians.rows[i][m] >= w.shape.back())
        hessian = &hessians.hessians[i][m];
      usedGptq[t] = packMatrixQuantizedGptq(w, m, weights.tensors[i].data(), *hessian,
                                            packing.packed[i].data());
      size_t finished = ++done;
      if (options.progress) {
        std::lock_guard<std::mutex> lock(progressMutex);
        options.progress(finished, tasks.size());
      }
    }
  });
  for (char gptq : usedGptq)
    ++(gptq ? packing.stats.gptqMatrices : packing.stats.roundedMatrices);
  return packing;
}

void applyPacking(const plan::Plan &plan, const GptqPacking &packing, WeightSet &weights) {
  for (size_t i = 0; i < plan.weights.size(); ++i)
    if (!packing.packed[i].empty())
      unpackQuantized(plan.weights[i], packing.packed[i].data(), weights.tensors[i].data());
}

} // namespace m2c
