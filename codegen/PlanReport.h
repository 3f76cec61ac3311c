//===- PlanReport.h - Fusion report and Graphviz view of a plan -*- C++ -*-===//
//
// The fusion report (each kernel's cost, runtime/plan/KernelCost.h, and its
// roofline time on a device) and the plan as a Graphviz graph. Used by
// `m2c compile --fusion-report` and `--dot`; no MLIR here.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PLANREPORT_H
#define M2C_CODEGEN_PLANREPORT_H

#include "runtime/plan/KernelCost.h"
#include "runtime/plan/Plan.h"

#include <ostream>
#include <string>

namespace m2c {

/// The machine a roofline is drawn for.
struct RooflineDevice {
  std::string name;
  double bytesPerSecond = 0;
  double flopsPerSecond = 0;
};

/// Measured ceilings (docs/performance.md): device copy bandwidth and a
/// large bf16 cuBLAS GEMM. "h100" or "h200"; false when unknown.
bool lookupRooflineDevice(const std::string &name, RooflineDevice &device);

/// One row per kernel of `entry`, then totals and kernels per layer.
void printFusionReport(std::ostream &os, const plan::Plan &plan, const plan::Entry &entry,
                       const StepShape &shape, const RooflineDevice &device);

/// The entry's kernels as a Graphviz digraph; edges follow buffers.
void printPlanDot(std::ostream &os, const plan::Plan &plan, const plan::Entry &entry);

} // namespace m2c

#endif // M2C_CODEGEN_PLANREPORT_H
