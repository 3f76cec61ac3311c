//===- EngineTestUtil.h - Artifacts, backends and requests for engine tests -===//
//
// The engine tests run on artifacts, so they need no compiler: a compiler
// build makes them (test/unit/engine/CMakeLists.txt), the GPU machine gets
// them from scripts/gpu/prepare.sh through M2C_TEST_ARTIFACTS.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_TEST_UNIT_ENGINE_ENGINETESTUTIL_H
#define M2C_TEST_UNIT_ENGINE_ENGINETESTUTIL_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/engine/Engine.h"
#include "test/support/Numerics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sys/stat.h>

namespace m2c::testing {

inline std::string artifactPath(const std::string &name) {
  const char *dir = std::getenv("M2C_TEST_ARTIFACTS");
  return std::string(dir ? dir : M2C_DEFAULT_TEST_ARTIFACTS) + "/" + name;
}

inline bool fileExists(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

/// Loads `name` from the test artifacts; nullopt (with the reason in
/// `why`) when it is not there.
inline std::optional<Artifact> loadTestArtifact(const std::string &name, std::string &why) {
  std::string path = artifactPath(name);
  if (!fileExists(path)) {
    why = path + " is missing (a compiler build makes it; on the GPU machine "
                 "scripts/gpu/prepare.sh does)";
    return std::nullopt;
  }
  StatusOr<Artifact> artifact = Artifact::load(path);
  if (!artifact) {
    why = artifact.status().message();
    return std::nullopt;
  }
  return artifact.take();
}

/// The process's CUDA driver, loaded once; null when there is none.
inline cuda::CudaDriver *testDriver(std::string &why) {
  static StatusOr<std::unique_ptr<cuda::CudaDriver>> driver = cuda::CudaDriver::load();
  if (!driver) {
    why = "no usable CUDA driver here (" + driver.status().message() + ")";
    return nullptr;
  }
  return driver->get();
}

inline std::unique_ptr<Backend> makeBackend(const std::string &kind, const Artifact &artifact,
                                            int64_t numKvBlocks, bool cudaGraphs = true) {
  const plan::Plan &plan = artifact.plan();
  if (kind == "cpu") {
    StatusOr<WeightSet> weights = loadWeights(plan, &artifact, {});
    EXPECT_TRUE(weights) << weights.status().message();
    if (!weights)
      return nullptr;
    CpuBackendOptions options;
    options.numKvBlocks = numKvBlocks;
    options.numThreads = 2;
    StatusOr<std::unique_ptr<CpuBackend>> backend = CpuBackend::create(plan, weights.take(), options);
    EXPECT_TRUE(backend) << backend.status().message();
    return backend ? std::unique_ptr<Backend>(backend.take()) : nullptr;
  }
  std::string why;
  cuda::CudaDriver *driver = testDriver(why);
  if (!driver)
    return nullptr;
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, &artifact, {});
  EXPECT_TRUE(reader) << reader.status().message();
  if (!reader)
    return nullptr;
  CudaBackendOptions options;
  options.numKvBlocks = numKvBlocks;
  options.cudaGraphs = cudaGraphs;
  StatusOr<std::unique_ptr<CudaBackend>> backend =
      CudaBackend::create(plan, *driver, **reader, options);
  EXPECT_TRUE(backend) << backend.status().message();
  return backend ? std::unique_ptr<Backend>(backend.take()) : nullptr;
}

struct RunOutcome {
  std::vector<GenerationResult> results;
  EngineStats stats;
};

inline RunOutcome runEngine(const plan::Plan &plan, Backend &backend,
                            const std::vector<GenerationRequest> &requests,
                            EngineOptions options = {}) {
  RunOutcome outcome;
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(plan, backend, options);
  EXPECT_TRUE(engine) << engine.status().message();
  if (!engine)
    return outcome;
  StatusOr<std::vector<GenerationResult>> results = (*engine)->generate(requests);
  EXPECT_TRUE(results) << results.status().message();
  if (results)
    outcome.results = results.take();
  outcome.stats = (*engine)->stats();
  return outcome;
}

/// `count` requests with prompts of 1..maxPrompt tokens (a few at each
/// extreme), 1..maxNew new tokens, and a mix of greedy, temperature, top-k
/// and top-p sampling with per-request seeds.
inline std::vector<GenerationRequest> mixedRequests(int count, int64_t vocab, int64_t maxPrompt,
                                                    int64_t maxNew, uint64_t seed) {
  Rng rng(seed);
  auto below = [&](int64_t n) { return static_cast<int64_t>(rng.nextU64() % n); };
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < count; ++i) {
    GenerationRequest request;
    int64_t length = i == 0 ? 1 : i == 1 ? maxPrompt : 1 + below(maxPrompt);
    for (int64_t t = 0; t < length; ++t)
      request.promptIds.push_back(static_cast<int32_t>(below(vocab)));
    request.maxNewTokens = 1 + below(maxNew);
    switch (i % 4) {
    case 0:
      break; // greedy
    case 1:
      request.sampling.temperature = 0.8f;
      break;
    case 2:
      request.sampling.temperature = 1.0f;
      request.sampling.topK = 20;
      break;
    case 3:
      request.sampling.temperature = 0.7f;
      request.sampling.topP = 0.9f;
      break;
    }
    request.sampling.seed = 1000 + i;
    requests.push_back(std::move(request));
  }
  return requests;
}

} // namespace m2c::testing

#endif // M2C_TEST_UNIT_ENGINE_ENGINETESTUTIL_H
