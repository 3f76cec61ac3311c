//===- m2c-tune.cpp - Time a tuning space on the GPU, write --tuning ------===//
//
// Runs on the GPU machine (runtime only, no MLIR). `m2c tune` compiled the
// candidates; this loads each with the same random weights (or a
// checkpoint), checks that it computes the logits of candidate 0 (the cost
// model's choice), times its kernels one by one at the given decode batches
// and contexts and prefill lengths (the least of --repeats runs per kernel),
// and writes per tiling key the setting with the least share of the timed
// steps as the --tuning file.
//
//   m2c-tune DIR --random-weights [-o tuning.json] [--json report.json]
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/engine/SyntheticSteps.h"
#include "runtime/support/Flags.h"
#include "runtime/support/Progress.h"
#include "runtime/tuning/TuningSearch.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

using namespace m2c;
using json = nlohmann::ordered_json;

namespace {

constexpr const char *kUsage = R"(usage: m2c-tune DIR [options]

Times the candidates `m2c tune` compiled into DIR and writes, per tiling
key, the fastest tile parameters as a --tuning file (docs/m2c-tune.md).

  --random-weights           seeded random weights (or --checkpoint DIR)
  --checkpoint DIR           weights for the candidates (compiled without)
  --batches 1,32             decode batch sizes timed; a key's cost is the sum
                             over the timed steps of its share of the step
  --contexts 1024,8192       KV positions per decode sequence
  --prefill 1024             prompt lengths timed (prefill entry); 0 for none
  --repeats 5                runs per step; each kernel keeps its least time
  --error-bound 0.01         largest relative logits error against candidate 0
  --min-gain 0.02            a setting must beat the cost model's by this
  --output FILE              the tuning file (default DIR/tuning.json)
  --json FILE                every measurement as JSON
  --help, --version
)";

int fail(const std::string &message) {
  std::fprintf(stderr, "m2c-tune: error: %s\n", message.c_str());
  return 1;
}

struct Options {
  std::string dir, checkpoint, output, jsonPath;
  bool randomWeights = false;
  std::vector<int64_t> batches = {1, 32}, prefills = {1024};
  std::vector<int64_t> contexts = {1024, 8192};
  int repeats = 5;
  double errorBound = 1e-2, minGain = 0.02;
};

/// Logits of one decode step over `seqs` sequences, each after a prompt of
/// `length` tokens: attention reads a KV cache the candidate wrote itself.
StatusOr<std::vector<float>> referenceLogits(CudaBackend &backend, const plan::Plan &plan,
                                             int64_t seqs, int64_t length) {
  const plan::Entry &prefill = *plan.findEntry("prefill"), &decode = *plan.findEntry("decode");
  int64_t blocks = plan.kvCache.blocksFor(length + 1);
  StepInputs step;
  step.numSeqs = seqs;
  step.maxBlocks = blocks;
  for (int64_t s = 0; s < seqs; ++s) {
    for (int64_t begin = 0; begin < length; begin += plan.maxTokens) {
      int64_t count = std::min(plan.maxTokens, length - begin);
      StepInputs in = syntheticPromptChunk(plan, begin, count, length + 1, 1 + s * blocks, s);
      if (StatusOr<const float *> out = backend.execute(prefill, in); !out)
        return out.status();
    }
    step.tokenIds.push_back(static_cast<int32_t>((s * 31 + 7) % plan.vocabSize));
    step.positions.push_back(static_cast<int32_t>(length));
    step.tokenSeqs.push_back(static_cast<int32_t>(s));
    for (int64_t b = 0; b < blocks; ++b)
      step.blockTables.push_back(static_cast<int32_t>(1 + s * blocks + b));
  }
  StatusOr<const float *> out = backend.execute(decode, step);
  if (!out)
    return out.status();
  return std::vector<float>(*out, *out + seqs * plan.vocabSize);
}

/// Each kernel's least time over `repeats` profiled runs, summed per key
/// (kernels without a key under "").
Status profileInto(CudaBackend &backend, const plan::Entry &entry, const StepInputs &in,
                   int repeats, std::vector<std::map<std::string, double>> &steps) {
  std::map<std::string, double> &byKey = steps.emplace_back();
  std::vector<double> least(entry.kernels.size(), 1e300);
  for (int r = 0; r < repeats; ++r) {
    StatusOr<std::vector<KernelTiming>> timings = backend.profileStep(entry, in);
    if (!timings)
      return timings.status();
    for (size_t k = 0; k < timings->size(); ++k)
      least[k] = std::min(least[k], (*timings)[k].microseconds);
  }
  for (size_t k = 0; k < entry.kernels.size(); ++k)
    byKey[entry.kernels[k].tileKey] += least[k];
  return Status::ok();
}

double relativeError(const std::vector<float> &a, const std::vector<float> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  if (a.size() != b.size() || !std::isfinite(num))
    return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::string settingText(const TileSetting &setting) {
  std::string s;
  for (const auto &[name, value] : setting)
    s += (s.empty() ? "" : ",") + name + "=" + std::to_string(value);
  return s;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  FlagSet flags(kUsage, std::string("m2c-tune ") + M2C_VERSION);
  flags.addSwitch("random-weights", &o.randomWeights);
  flags.addString("checkpoint", &o.checkpoint);
  flags.addString("output", &o.output);
  flags.addString("json", &o.jsonPath);
  flags.addInt("repeats", 1, 1000, [&](int64_t n) { o.repeats = static_cast<int>(n); });
  flags.addReal("error-bound", 0, 1, [&](double x) { o.errorBound = x; });
  flags.addReal("min-gain", 0, 0.5, [&](double x) { o.minGain = x; });
  flags.addIntList("batches", 1, 1 << 20, "a count", &o.batches);
  flags.addIntList("contexts", 1, 1 << 20, "a count", &o.contexts);
  flags.addIntList("prefill", 0, 1 << 20, "a count", &o.prefills);
  std::vector<std::string> positionals;
  bool exitNow = false;
  if (Status status = flags.parse(argc, argv, positionals, exitNow); !status)
    return fail(status.message());
  if (exitNow)
    return 0;
  if (positionals.size() != 1)
    return fail("give one DIR written by `m2c tune` (see --help)");
  o.dir = positionals[0];
  if (o.output.empty())
    o.output = o.dir + "/tuning.json";
  if (!o.randomWeights && o.checkpoint.empty())
    return fail("give --random-weights or --checkpoint DIR");
  o.prefills.erase(std::remove(o.prefills.begin(), o.prefills.end(), 0), o.prefills.end());

  std::ifstream spaceFile(o.dir + "/space.json");
  if (!spaceFile)
    return fail(o.dir + "/space.json: cannot read (run `m2c tune ... --out-dir " + o.dir + "`)");
  std::stringstream spaceText;
  spaceText << spaceFile.rdbuf();
  StatusOr<TuningSpace> space = parseTuningSpace(spaceText.str());
  if (!space)
    return fail(space.status().message());

  // Every candidate is loaded and checked before the first is timed: a long
  // run must not fail at its last artifact.
  std::vector<Artifact> artifacts;
  for (const TuningSpace::Candidate &candidate : space->candidates) {
    const std::string path = o.dir + "/" + candidate.artifact;
    StatusOr<Artifact> artifact = Artifact::load(path);
    if (!artifact)
      return fail(artifact.status().message());
    artifacts.push_back(artifact.take());
    const plan::Plan &plan = artifacts.back().plan();
    if (Status status = CudaBackend::checkPlan(plan); !status)
      return fail(path + ": " + status.message());
    if (plan.gpu.target != space->target)
      return fail(path + ": compiled for " + plan.gpu.target + ", the space is for " +
                  space->target);
    if (!plan.findEntry("decode") || !plan.findEntry("prefill"))
      return fail(path + ": the plan needs prefill and decode entry points");
    for (int64_t batch : o.batches)
      if (batch > plan.maxTokens)
        return fail("--batches: " + std::to_string(batch) + " exceeds max_tokens " +
                    std::to_string(plan.maxTokens));
  }

  StatusOr<cuda::CudaDriver *> driver = cuda::CudaDriver::shared();
  if (!driver)
    return fail(driver.status().message());
  if (Status status = (*driver)->useDevice(0); !status)
    return fail(status.message());
  StatusOr<std::string> deviceName = (*driver)->deviceName(0);
  std::printf("m2c-tune: %s (%s), %zu candidates on %s\n", space->model.c_str(),
              space->target.c_str(), space->candidates.size(),
              deviceName ? deviceName->c_str() : "unknown");

  std::vector<CandidateResult> results;
  std::vector<float> reference;
  json report = json::array();
  ProgressLine progress("timing candidates");
  for (size_t c = 0; c < space->candidates.size(); ++c) {
    const std::string path = o.dir + "/" + space->candidates[c].artifact;
    const Artifact &artifact = artifacts[c];
    const plan::Plan &plan = artifact.plan();
    const plan::Entry *decode = plan.findEntry("decode"), *prefill = plan.findEntry("prefill");
    const int64_t checkSeqs = 4, checkLength = 256;
    int64_t blocks = 1 + checkSeqs * (plan.kvCache.blocksFor(checkLength + 1) + 1);
    for (int64_t batch : o.batches)
      for (int64_t context : o.contexts)
        blocks = std::max(blocks, 1 + batch * plan.kvCache.blocksFor(context));
    for (int64_t prompt : o.prefills)
      blocks = std::max(blocks, 1 + plan.kvCache.blocksFor(prompt));
    WeightSourceOptions source;
    source.random = o.randomWeights;
    source.checkpointPath = o.checkpoint;
    StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, &artifact, source);
    if (!reader)
      return fail(reader.status().message());
    CudaBackendOptions options;
    options.numKvBlocks = blocks;
    options.maxSequenceTokens = checkLength + 1;
    for (int64_t context : o.contexts)
      options.maxSequenceTokens = std::max(options.maxSequenceTokens, context);
    for (int64_t prompt : o.prefills)
      options.maxSequenceTokens = std::max(options.maxSequenceTokens, prompt);
    options.cudaGraphs = false;
    StatusOr<std::unique_ptr<CudaBackend>> backend =
        CudaBackend::create(plan, **driver, **reader, options);
    if (!backend)
      return fail(path + ": " + backend.status().message());

    CandidateResult result;
    StatusOr<std::vector<float>> logits =
        referenceLogits(**backend, plan, std::min(checkSeqs, plan.maxTokens), checkLength);
    if (!logits)
      return fail(path + ": " + logits.status().message());
    if (c == 0)
      reference = *logits;
    result.logitsError = relativeError(*logits, reference);
    json stepNames = json::array();
    for (int64_t context : o.contexts)
      for (int64_t batch : o.batches) {
        StepInputs in = syntheticDecodeStep(plan, batch, context);
        if (Status status = profileInto(**backend, *decode, in, o.repeats, result.steps); !status)
          return fail(path + ": " + status.message());
        stepNames.push_back("decode batch " + std::to_string(batch) + ", context " +
                            std::to_string(context));
      }
    for (int64_t prompt : o.prefills) {
      StepInputs in = syntheticPromptChunk(plan, 0, std::min(prompt, plan.maxTokens), prompt);
      if (Status status = profileInto(**backend, *prefill, in, o.repeats, result.steps); !status)
        return fail(path + ": " + status.message());
      stepNames.push_back("prefill " + std::to_string(prompt));
    }
    json steps = json::array();
    for (size_t s = 0; s < result.steps.size(); ++s) {
      json times = json::object();
      for (const auto &[key, us] : result.steps[s])
        times[key.empty() ? "(untiled)" : key] = us;
      steps.push_back({{"step", stepNames[s]}, {"microseconds", times}});
    }
    report.push_back({{"artifact", space->candidates[c].artifact},
                      {"logits_error", result.logitsError},
                      {"steps", steps}});
    results.push_back(std::move(result));
    backend->reset();
    progress.update(c + 1, space->candidates.size(), 0);
  }

  StatusOr<std::vector<TuningChoice>> choices =
      chooseTuning(*space, results, o.errorBound, o.minGain);
  if (!choices)
    return fail(choices.status().message());
  // Costs: the key's share of each timed step, summed over the steps.
  std::printf("\n%-44s %-60s %9s %9s %8s\n", "tiling key", "chosen", "model", "chosen",
              "speedup");
  double before = 0, after = 0;
  json chosen = json::array();
  for (const TuningChoice &choice : *choices) {
    std::printf("%-44s %-60s %8.1f%% %8.1f%% %7.2fx\n", choice.key.c_str(),
                (settingText(choice.setting) + (choice.candidate ? "" : " (model)")).c_str(),
                100 * choice.defaultCost, 100 * choice.chosenCost,
                choice.defaultCost / choice.chosenCost);
    before += choice.defaultCost;
    after += choice.chosenCost;
    chosen.push_back({{"key", choice.key},
                      {"candidate", choice.candidate},
                      {"model_cost", choice.defaultCost},
                      {"chosen_cost", choice.chosenCost}});
  }
  size_t rejected = 0;
  for (const CandidateResult &r : results)
    rejected += r.logitsError <= o.errorBound ? 0 : 1;
  std::size_t steps = results[0].steps.size();
  std::printf("\n%zu steps timed; the tuned kernels' share of them: %.1f%% -> %.1f%% of a step "
              "on average; %zu of %zu candidates rejected for their logits\n",
              steps, 100 * before / steps, 100 * after / steps, rejected, results.size());
  std::ofstream out(o.output);
  out << tuningFileJson(*space, *choices);
  if (!out)
    return fail(o.output + ": cannot write");
  std::printf("wrote %s (m2c compile %s --target %s --tuning %s)\n", o.output.c_str(),
              space->model.c_str(), space->target.c_str(), o.output.c_str());
  if (!o.jsonPath.empty()) {
    std::ofstream js(o.jsonPath);
    js << json({{"device", deviceName ? *deviceName : "unknown"},
                {"model", space->model},
                {"target", space->target},
                {"candidates", report},
                {"chosen", chosen}})
              .dump(2)
       << "\n";
    if (!js)
      return fail(o.jsonPath + ": cannot write");
  }
  return 0;
}
