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

#endif // M2C_PASSES_PASSES_TD
