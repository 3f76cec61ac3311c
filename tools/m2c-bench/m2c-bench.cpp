//===- m2c-bench.cpp - Decode and prefill speed against measured ceilings -===//
//
// Runs on the GPU machine (runtime only, no MLIR). Every figure is reported
// next to a ceiling measured in the same run: the device copy bandwidth
// (read + write of a 1 GiB buffer), against which a decode step's bytes
// (weights it touches plus the KV cache it reads) give its roofline time.
//
//   m2c-bench ARTIFACT.m2a --random-weights [--batches 1,8,32,64]
//             [--contexts 1024,8192] [--prefill 1024,8192] [--json FILE]
//
// Decode steps are timed on the GPU alone (events around `iterations`
// replays of the step's CUDA graph), and end to end (execute(): inputs up,
// graph, logits down). The KV cache of a decode benchmark holds zeros: the
// kernels read every position of the context either way.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/engine/SyntheticSteps.h"
#include "runtime/plan/KernelCost.h"
#include "runtime/support/Flags.h"
#include "runtime/support/Progress.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

using namespace m2c;
using json = nlohmann::ordered_json;

namespace {

constexpr const char *kUsage = R"(usage: m2c-bench ARTIFACT.m2a [options]

Decode latency and prefill throughput of a GPU artifact, each next to the
device copy bandwidth measured in the same run (docs/benchmarks.md).

  --random-weights           seeded random weights (or --checkpoint DIR)
  --checkpoint DIR           weights for an artifact compiled with --weights none
  --batches 1,8,32,64        decode batch sizes
  --contexts 1024,8192       decode context lengths (tokens already cached)
  --prefill 1024,8192        prompt lengths for prefill throughput
  --profile-batches 1,32     per-kernel tables at these decode batches (default 1)
  --iterations N             timed decode steps per point (default 20)
  --no-cuda-graphs           time kernel-by-kernel launches instead
  --no-pdl                   no programmatic dependent launch (sm_90 artifacts
                             use it where the driver has cuLaunchKernelEx)
  --json FILE                every figure as JSON
  --help, --version
)";

double seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

/// Bytes a kernel of a decode step must read at least: its weights (the
/// experts `batch` tokens are expected to touch, with uniform routing) and
/// the KV cache of the context (runtime/plan/KernelCost.h).
double floorBytes(const plan::Plan &plan, const plan::Entry &entry, const plan::Kernel &k,
                  int64_t batch, int64_t context) {
  KernelCost cost = estimateKernelCost(plan, entry, k, StepShape{batch, context});
  return cost.weightBytes + cost.cacheBytes;
}

int fail(const std::string &message) {
  std::fprintf(stderr, "m2c-bench: error: %s\n", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  std::string checkpoint, jsonPath;
  std::vector<int64_t> batches = {1, 8, 32, 64}, contexts = {1024, 8192}, prefills = {1024, 8192};
  std::vector<int64_t> profileBatches = {1};
  bool randomWeights = false, cudaGraphs = true, programmaticLaunch = true;
  int iterations = 20;
  FlagSet flags(kUsage, std::string("m2c-bench ") + M2C_VERSION);
  flags.addSwitch("random-weights", &randomWeights);
  flags.addSwitch("no-cuda-graphs", &cudaGraphs, false);
  flags.addSwitch("no-pdl", &programmaticLaunch, false);
  flags.addString("checkpoint", &checkpoint);
  flags.addString("json", &jsonPath);
  flags.addInt("iterations", 1, 10000, [&](int64_t n) { iterations = static_cast<int>(n); });
  for (auto [name, slot] : {std::pair<const char *, std::vector<int64_t> *>{"batches", &batches},
                             {"contexts", &contexts},
                             {"prefill", &prefills},
                             {"profile-batches", &profileBatches}})
    flags.addIntList(name, 1, 1 << 24, "a positive count", slot);
  std::vector<std::string> positionals;
  bool exitNow = false;
  if (Status status = flags.parse(argc, argv, positionals, exitNow); !status)
    return fail(status.message());
  if (exitNow)
    return 0;
  if (positionals.size() != 1)
    return fail("give one ARTIFACT (see --help)");

  StatusOr<Artifact> artifact = Artifact::load(positionals[0]);
  if (!artifact)
    return fail(artifact.status().message());
  const plan::Plan &plan = artifact->plan();
  if (Status status = CudaBackend::checkPlan(plan); !status)
    return fail(status.message());
  const plan::Entry *decode = plan.findEntry("decode");
  const plan::Entry *prefill = plan.findEntry("prefill");
  if (!decode || !prefill)
    return fail("the plan needs prefill and decode entry points");
  StatusOr<cuda::CudaDriver *> driver = cuda::CudaDriver::shared();
  if (!driver)
    return fail(driver.status().message());
  if (Status status = (*driver)->useDevice(0); !status)
    return fail(status.message());
  StatusOr<std::string> deviceName = (*driver)->deviceName(0);

  // The ceiling: device-to-device copy of 1 GiB, read + write counted.
  double copyBandwidth = 0;
  {
    const uint64_t bytes = 1ull << 30;
    StatusOr<cuda::DevicePtr> a = (*driver)->allocate(bytes, "the copy benchmark");
    StatusOr<cuda::DevicePtr> b = (*driver)->allocate(bytes, "the copy benchmark");
    StatusOr<cuda::StreamHandle> stream = (*driver)->createStream();
    StatusOr<cuda::EventHandle> start = (*driver)->createEvent(), stop = (*driver)->createEvent();
    if (!a || !b || !stream || !start || !stop)
      return fail("cannot set up the copy benchmark");
    Status status = (*driver)->copyOnDevice(*b, *a, bytes, *stream);
    status = status ? (*driver)->record(*start, *stream) : status;
    for (int i = 0; status && i < 10; ++i)
      status = (*driver)->copyOnDevice(*b, *a, bytes, *stream);
    status = status ? (*driver)->record(*stop, *stream) : status;
    status = status ? (*driver)->synchronize(*stream) : status;
    if (!status)
      return fail(status.message());
    StatusOr<float> ms = (*driver)->elapsed(*start, *stop);
    copyBandwidth = 2.0 * bytes * 10 / (*ms * 1e-3);
    (*driver)->free(*a);
    (*driver)->free(*b);
    (*driver)->destroyStream(*stream);
  }

  // Enough blocks for the largest decode point and the longest prompt.
  const plan::KvCacheSpec &kv = plan.kvCache;
  int64_t blocks = 1;
  for (int64_t batch : batches)
    for (int64_t context : contexts)
      blocks = std::max(blocks, 1 + batch * kv.blocksFor(context));
  for (int64_t prompt : prefills)
    blocks = std::max(blocks, 1 + kv.blocksFor(prompt));
  WeightSourceOptions source;
  source.random = randomWeights;
  source.checkpointPath = checkpoint;
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, &*artifact, source);
  if (!reader)
    return fail(reader.status().message());
  ProgressLine progress("uploading weights");
  CudaBackendOptions options;
  options.numKvBlocks = blocks;
  options.cudaGraphs = cudaGraphs;
  options.programmaticLaunch = programmaticLaunch;
  int64_t longest = 0;
  for (int64_t c : contexts)
    longest = std::max(longest, c);
  for (int64_t p : prefills)
    longest = std::max(longest, p);
  options.maxSequenceTokens = longest;
  options.progress = [&](size_t done, size_t total, uint64_t bytes) {
    progress.update(done, total, bytes);
  };
  double loadStart = seconds();
  StatusOr<std::unique_ptr<CudaBackend>> backend =
      CudaBackend::create(plan, **driver, **reader, options);
  if (!backend)
    return fail(backend.status().message());
  double loadSeconds = seconds() - loadStart;

  int64_t layers = plan.kvCache.layers;
  json report;
  report["artifact"] = positionals[0];
  report["device"] = deviceName ? *deviceName : "unknown";
  report["cuda_graphs"] = cudaGraphs;
  report["programmatic_launch"] = (*backend)->programmaticLaunch();
  report["weights_bytes"] = (*backend)->weightBytes();
  report["load_seconds"] = loadSeconds;
  report["copy_bandwidth_GBps"] = copyBandwidth / 1e9;
  std::printf("m2c-bench: %s on %s; weights %.2f GB uploaded in %.1f s\n", positionals[0].c_str(),
              report["device"].get<std::string>().c_str(), (*backend)->weightBytes() / 1e9,
              loadSeconds);
  std::printf("ceiling: device copy %.0f GB/s (1 GiB, read + write)\n", copyBandwidth / 1e9);
  std::printf("launches: %s, %s\n\n", cudaGraphs ? "CUDA graphs" : "kernel by kernel",
              (*backend)->programmaticLaunch() ? "programmatic dependent launch"
                                               : "no programmatic dependent launch");

  // Decode.
  // e2e: inputs up, the step, the logits down (what sampling needs);
  // ids_e2e: the same, bringing back only the greedy ids; cand_e2e: the
  // ids and the sampling candidates (a top-k sampled step).
  std::printf("%-6s %8s %10s %10s %10s %11s %10s %10s %12s %12s %14s\n", "batch", "context",
              "gpu_ms", "e2e_ms", "ids_e2e_ms", "cand_e2e_ms", "tokens/s", "bytes_GB", "roofline_ms", "%roofline",
              "overhead/layer");
  json decodeRows = json::array();
  for (int64_t context : contexts)
    for (int64_t batch : batches) {
      if (batch > plan.maxTokens)
        continue;
      StepInputs in = syntheticDecodeStep(plan, batch, context);
      StatusOr<double> gpuUs = (*backend)->timeStep(*decode, in, iterations);
      if (!gpuUs)
        return fail(gpuUs.status().message());
      // End to end as scripts/gpu/peers.py times torch.compile: host wall
      // time of each step (run() returns once its outputs are on the
      // host), the median of `iterations` steps.
      auto timeReads = [&](StepReads reads) -> StatusOr<double> {
        // One untimed step first: it captures this step's graph.
        if (StatusOr<StepOutputs> warm = (*backend)->run(*decode, in, reads); !warm)
          return warm.status();
        std::vector<double> steps;
        for (int i = 0; i < iterations; ++i) {
          double start = seconds();
          if (StatusOr<StepOutputs> out = (*backend)->run(*decode, in, reads); !out)
            return out.status();
          steps.push_back(seconds() - start);
        }
        std::sort(steps.begin(), steps.end());
        return steps[steps.size() / 2] * 1e6;
      };
      StatusOr<double> logits = timeReads(StepReads{});
      if (!logits)
        return fail(logits.status().message());
      const double e2eUs = *logits;
      double idsUs = e2eUs, candidatesUs = e2eUs;
      if (decode->greedyIds >= 0) {
        StatusOr<double> ids = timeReads(StepReads{/*logits=*/false, /*candidates=*/false});
        if (!ids)
          return fail(ids.status().message());
        idsUs = *ids;
      }
      if (decode->candidateIds >= 0) {
        StatusOr<double> candidates = timeReads(StepReads{/*logits=*/false, /*candidates=*/true});
        if (!candidates)
          return fail(candidates.status().message());
        candidatesUs = *candidates;
      }
      double bytes = 0;
      for (const plan::Kernel &k : decode->kernels)
        bytes += floorBytes(plan, *decode, k, batch, context);
      double rooflineUs = bytes / copyBandwidth * 1e6;
      double overhead = (*gpuUs - rooflineUs) / layers;
      std::printf("%-6lld %8lld %10.3f %10.3f %10.3f %11.3f %10.0f %10.3f %12.3f %11.1f%% %12.1f us\n",
                  (long long)batch, (long long)context, *gpuUs / 1e3, e2eUs / 1e3, idsUs / 1e3,
                  candidatesUs / 1e3, batch / (*gpuUs * 1e-6), bytes / 1e9, rooflineUs / 1e3,
                  100.0 * rooflineUs / *gpuUs, overhead);
      decodeRows.push_back({{"batch", batch},
                            {"context", context},
                            {"gpu_us", *gpuUs},
                            {"end_to_end_us", e2eUs},
                            {"end_to_end_ids_us", idsUs},
                            {"end_to_end_candidates_us", candidatesUs},
                            {"bytes", bytes},
                            {"roofline_us", rooflineUs},
                            {"fraction_of_roofline", rooflineUs / *gpuUs},
                            {"overhead_per_layer_us", overhead}});
    }
  report["decode"] = decodeRows;

  // Prefill: one prompt in max_tokens chunks, end to end.
  std::printf("\n%-8s %10s %12s\n", "prompt", "ms", "tokens/s");
  json prefillRows = json::array();
  for (int64_t prompt : prefills) {
    double t0 = seconds();
    for (int64_t begin = 0; begin < prompt; begin += plan.maxTokens) {
      int64_t count = std::min(plan.maxTokens, prompt - begin);
      StepInputs in = syntheticPromptChunk(plan, begin, count, prompt);
      if (StatusOr<const float *> out = (*backend)->execute(*prefill, in); !out)
        return fail(out.status().message());
    }
    double ms = (seconds() - t0) * 1e3;
    std::printf("%-8lld %10.2f %12.0f\n", (long long)prompt, ms, prompt / (ms * 1e-3));
    prefillRows.push_back({{"prompt", prompt}, {"ms", ms}, {"tokens_per_s", prompt / (ms * 1e-3)}});
  }
  report["prefill"] = prefillRows;

  // Per kernel at each profiled batch and the first context, each against
  // its own roofline (its bytes at the copy bandwidth).
  int64_t context = contexts.front();
  json kernelTables = json::array();
  for (int64_t batch : profileBatches) {
    StepInputs in = syntheticDecodeStep(plan, batch, context);
    StatusOr<std::vector<KernelTiming>> timings = (*backend)->profileStep(*decode, in);
    if (!timings)
      return fail(timings.status().message());
    struct Group {
      std::string kernel;
      int64_t count = 0;
      double us = 0, bytes = 0;
    };
    std::vector<Group> groups;
    double totalUs = 0;
    for (size_t k = 0; k < timings->size(); ++k) {
      double bytes = floorBytes(plan, *decode, decode->kernels[k], batch, context);
      const std::string &name = (*timings)[k].kernel;
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const Group &g) { return g.kernel == name; });
      if (it == groups.end())
        it = groups.insert(groups.end(), Group{name});
      it->count += 1;
      it->us += (*timings)[k].microseconds;
      it->bytes += bytes;
      totalUs += (*timings)[k].microseconds;
    }
    std::sort(groups.begin(), groups.end(),
              [](const Group &a, const Group &b) { return a.us > b.us; });
    std::printf("\nkernels, decode batch %lld, context %lld (launched one by one, %.1f us in all):\n",
                (long long)batch, (long long)context, totalUs);
    std::printf("%-52s %6s %10s %8s %10s %11s\n", "kernel", "count", "us_each", "%step",
                "MB_each", "%roofline");
    json kernelRows = json::array();
    for (const Group &g : groups) {
      double each = g.us / g.count, bytesEach = g.bytes / g.count;
      double roofline = bytesEach > 0 ? bytesEach / copyBandwidth * 1e6 / each : 0;
      std::printf("%-52s %6lld %10.2f %7.1f%% %10.2f %10.1f%%\n", g.kernel.c_str(),
                  (long long)g.count, each, 100 * g.us / totalUs, bytesEach / 1e6,
                  100 * roofline);
      kernelRows.push_back({{"kernel", g.kernel},
                            {"count", g.count},
                            {"us_each", each},
                            {"bytes_each", bytesEach},
                            {"fraction_of_roofline", roofline}});
    }
    if (batch == 1)
      report["kernels_batch1"] = kernelRows;
    kernelTables.push_back({{"batch", batch}, {"context", context}, {"kernels", kernelRows}});
  }
  report["kernels"] = kernelTables;
  if (!jsonPath.empty()) {
    std::ofstream out(jsonPath);
    out << report.dump(2) << "\n";
    if (!out)
      return fail(jsonPath + ": cannot write");
  }
  return 0;
}
