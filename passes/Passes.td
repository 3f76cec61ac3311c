//===- Passes.td - m2c's cross-dialect passes --------------*- tablegen -*-===//

#ifndef M2C_PASSES_PASSES_TD
#define M2C_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def PrintModelSummary : Pass<"m2c-print-model-summary", "::mlir::ModuleOp"> {
  let summary = "Prints a model module's size and op counts per entry point";
  let description = [{
    Writes a human-readable summary of a model module to stdout: weight
    symbols, parameters and bytes, KV-cache bytes per token, and for each
    entry point (`m2c.entry`) the count of every m2c op and of the
    projections (`linalg.matmul`). The IR is not changed. `m2c compile
    --emit=summary` runs this pass.
  }];
  let statistics = [
    Statistic<"numWeights", "num-weights", "Weight globals in the module">,
    Statistic<"numEntries", "num-entries", "Entry points in the module">
  ];
}

def FuseAddRmsNorm : Pass<"m2c-fuse-add-rmsnorm", "::mlir::func::FuncOp"> {
  let summary = "Fuses a residual add with the RMSNorm of its sum";
  let description = [{
    Rewrites `%s = arith.addf %a, %b` feeding `norm.rms %s, %w` into
    `%sum, %n = norm.add_rms %a, %b, %w`; other users of `%s` read `%sum`.
    The fused kernel reads both inputs once and writes the sum and the
    normalised value, instead of writing the sum and reading it back.
    Post-condition: no `norm.rms` reads the result of an `arith.addf`.
  }];
  let dependentDialects = ["::m2c::norm::NormDialect"];
  let statistics = [
    Statistic<"numFused", "num-fused", "Residual adds fused into add_rms">
  ];
}

def FuseMoeResidual : Pass<"m2c-fuse-moe-residual", "::mlir::func::FuncOp"> {
  let summary = "Folds the residual add after moe.experts into the op";
  let description = [{
    Rewrites `arith.addf %x, (moe.experts ...)` (either operand order) into
    `moe.experts ... residual(%x)`, so the expert combine writes the next
    residual stream directly: down-projection, routing weight, combine and
    residual in one kernel. Requires the experts result to have no other
    user. Post-condition: no `arith.addf` reads a `moe.experts` result
    that has a single use.
  }];
  let dependentDialects = ["::m2c::moe::MoeDialect"];
  let statistics = [
    Statistic<"numFused", "num-fused", "Residual adds folded into moe.experts">
  ];
}

def FuseQkNorm : Pass<"m2c-fuse-qk-norm", "::mlir::func::FuncOp"> {
  let summary = "Folds the per-layer QK-norm into attn.gqa";
  let description = [{
    Rewrites `attn.gqa (norm.rms %q, %wq), (norm.rms %k, %wk), ...` into
    `attn.gqa %q, %k, ... qk_norm(%wq, %wk)` with `qk_norm_eps`, so the
    norm, RoPE and the KV-cache write run in one kernel. Requires both norms,
    each with a single use and one eps. Post-condition: no `attn.gqa`
    reads a single-use `norm.rms` for both queries and keys.
  }];
  let dependentDialects = ["::m2c::attn::AttnDialect"];
  let statistics = [
    Statistic<"numFused", "num-fused", "QK-norms folded into attention">
  ];
}

def FuseNormRoute : Pass<"m2c-fuse-norm-route", "::mlir::func::FuncOp"> {
  let summary = "Makes the post-attention norm the router's prologue";
  let description = [{
    Rewrites `%sum, %h = norm.add_rms %x, %d, %w` feeding `moe.route %h, ...`
    into `%sum, %h, %ids, %weights = moe.norm_route %x, %d, %w, ...`; the
    experts and the residual stream read `%h` and `%sum` from it. The router
    kernel handles one token per block, so it computes the norm itself and
    writes both rows, and a decode layer runs one kernel fewer. Runs after
    m2c-fuse-add-rmsnorm. Requires every other user of the norm to follow
    the router. Post-condition: no `moe.route` reads a `norm.add_rms`
    result.
  }];
  let dependentDialects = ["::m2c::moe::MoeDialect"];
  let statistics = [
    Statistic<"numFused", "num-fused", "Norms folded into moe.norm_route">
  ];
}

def FuseDecodeTail : Pass<"m2c-fuse-decode-tail", "::mlir::func::FuncOp"> {
  let summary = "Fuses the final norm, the lm_head and the greedy argmax";
  let description = [{
    Rewrites a function that returns `linalg.matmul (norm.rms %x, %w),
    %lm_head` (the linear form, into a zero fill) into one that returns
    both results of `norm.rms_logits %x, %w, %lm_head`: the logits and each
    row's greedy argmax, as a second result `tensor<?x1xi32>`. A
    `norm.add_rms %x, %r, %w` whose sum nothing reads (the last layer's
    residual add) becomes the op's `residual(%r)`. One kernel
    then ends the step, and a greedy step copies one id per token to the
    host instead of a row of logits (the plan's `greedy_ids`). Requires
    the norm and the matmul to have no other user. With `candidates=K`
    (default 64; 0 = none) the entry also returns each row's K best logits
    and their ids, best first (K is clamped to the vocabulary), so a
    sampled step with top-k < K copies 8K bytes per row instead of the
    row. Post-condition: no entry point returns a matmul of a `norm.rms`
    or `norm.add_rms` result.
  }];
  let dependentDialects = ["::m2c::norm::NormDialect"];
  let options = [
    Option<"candidates", "candidates", "int64_t", /*default=*/"64",
           "Best logits per row returned for sampling (0 = none)">
  ];
  let statistics = [
    Statistic<"numFused", "num-fused", "Entry points ending in norm.rms_logits">
  ];
}

def QuantizeWeights : Pass<"m2c-quantize-weights", "::mlir::ModuleOp"> {
  let summary = "Chooses the quantized storage format of each weight class";
  let description = [{
    Marks weight globals with `m2c.quantization = "int8" | "int4_g128" |
    "fp8_block128"` per module class: `attn` (q/k/v/o projections),
    `experts` (w1/w2/w3) and `lm-head`. Weights named in the checkpoint's
    `modules_to_not_convert` (module attribute `m2c.modules_to_not_convert`,
    matched on whole dotted name components) are never quantized; norms,
    embeddings, the router gate and its bias are not in any class. The
    packing itself happens where the weights are: at compile time for
    embedded weights, at load time otherwise (docs/quantization.md).
    The logical tensor type is unchanged: MLIR's `quant.uniform` types need
    their scales in the type, which a compile without weights cannot know.
    Post-condition: every global of a quantized class carries its format.
  }];
  let options = [
    Option<"attn", "attn", "std::string", /*default=*/"\"none\"",
           "Attention projections: none, int8, int4 or fp8">,
    Option<"experts", "experts", "std::string", /*default=*/"\"none\"",
           "Expert matrices: none, int8, int4 or fp8">,
    Option<"lmHead", "lm-head", "std::string", /*default=*/"\"none\"",
           "The output projection: none, int8, int4 or fp8">
  ];
  let statistics = [
    Statistic<"numQuantized", "num-quantized", "Weights given a quantized format">,
    Statistic<"numKept", "num-kept", "Weights kept by modules_to_not_convert">
  ];
}

def FuseProjections : Pass<"m2c-fuse-projections", "::mlir::ModuleOp"> {
  let summary = "Fuses the linear projections of one input into one GEMM";
  let description = [{
    Rewrites matmuls that read the same input (the q, k and v projections)
    into one `linalg.matmul` over a new weight global whose rows are the
    parts' rows concatenated, followed by one `tensor.extract_slice` of
    columns per former result. The new global records its parts
    (`m2c.checkpoint_parts`, `m2c.part_rows`), so each part is still read,
    generated and named as its own checkpoint tensor; the parts' globals are
    erased once unused. The plan lowers the fused matmul to one linear
    kernel writing each column range to its own buffer, so consumers are
    unchanged. Runs after m2c-quantize-weights: parts must share a format,
    and FP8 128x128 blocks must not straddle two parts (every part but the
    last a multiple of 128 rows), so the fused weight packs to exactly the
    parts' codes and scales. Post-condition: no two fusable matmuls read the
    same value.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let statistics = [
    Statistic<"numFused", "num-fused", "Matmuls folded into a fused projection">,
    Statistic<"numSkipped", "num-skipped",
              "Groups left unfused because their formats or blocks differ">
  ];
}

def TileKernels : Pass<"m2c-tile-kernels", "::mlir::ModuleOp"> {
  let summary = "Chooses tile and launch parameters per kernel from a cost model";
  let description = [{
    Annotates every compute op of each entry point with `m2c.tile`, a
    dictionary of integer tile and launch parameters chosen by the cost
    model in docs/passes.md from the target's SM count, shared memory and
    registers and the op's shapes (decode: GEMV-shaped, bandwidth-bound;
    prefill: tensor-core tiles). A tuning file overrides any parameter; its
    keys are `<entry>/<family>/<shape>` as the pass prints them with
    `m2c.tile_key`. The plan copies the parameters into kernel attributes
    (`tile.<name>`), where GPU codegen reads them.
    Post-condition: every linalg.matmul, attn.gqa, moe.route, moe.norm_route,
    moe.experts, norm.rms and norm.add_rms in an entry point has `m2c.tile`.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"sm_90a\"",
           "GPU target: sm_80, sm_90 or sm_90a">,
    Option<"tuning", "tuning", "std::string", /*default=*/"\"\"",
           "A tuning JSON file whose entries override the cost model">
  ];
  let statistics = [
    Statistic<"numTiled", "num-tiled", "Ops given tile parameters">,
    Statistic<"numTuned", "num-tuned", "Parameters taken from the tuning file">
  ];
}

#endif // M2C_PASSES_PASSES_TD
