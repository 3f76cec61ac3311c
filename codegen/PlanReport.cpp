//===- PlanReport.cpp - Fusion report and Graphviz view of a plan ---------===//

#include "codegen/PlanReport.h"

#include <cmath>
#include <cstdio>
#include <map>

namespace m2c {

using plan::KernelKind;

bool lookupRooflineDevice(const std::string &name, RooflineDevice &device) {
  // Measured on the GPU machines (docs/performance.md), not datasheet peaks.
  if (name == "h100") {
    device = {"H100 (3.0 TB/s copy, 790 TFLOP/s bf16 GEMM)", 3.0e12, 790e12};
    return true;
  }
  if (name == "h200") {
    device = {"H200 (4.3 TB/s copy, 790 TFLOP/s bf16 GEMM)", 4.3e12, 790e12};
    return true;
  }
  return false;
}

namespace {
std::string human(double value, const char *unit) {
  const char *prefixes[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (std::fabs(value) >= 1000 && i < 4) {
    value /= 1000;
    ++i;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g %s%s", value, prefixes[i], unit);
  return text;
}
} // namespace

void printFusionReport(std::ostream &os, const plan::Plan &plan, const plan::Entry &entry,
                       const StepShape &shape, const RooflineDevice &device) {
  os << "fusion report: entry @" << entry.name << ", " << shape.tokens << " token(s), context "
     << shape.context << ", roofline on " << device.name << "\n";
  char line[512];
  std::snprintf(line, sizeof(line), "%-4s %-44s %-58s %11s %11s %11s %9s %12s\n", "#",
                "kernel", "fuses", "read", "written", "FLOPs", "FLOP/B", "roofline us");
  os << line;
  double totalBytes = 0, totalFlops = 0, totalTime = 0;
  std::map<std::string, int> perLayer;
  for (size_t i = 0; i < entry.kernels.size(); ++i) {
    const plan::Kernel &k = entry.kernels[i];
    KernelCost cost = estimateKernelCost(plan, entry, k, shape);
    double bytes = cost.bytesRead + cost.bytesWritten;
    double time = std::max(bytes / device.bytesPerSecond, cost.flops / device.flopsPerSecond);
    totalBytes += bytes;
    totalFlops += cost.flops;
    totalTime += time;
    std::string layer = k.name.substr(0, k.name.find('.'));
    perLayer[layer]++;
      std::snprintf(line, sizeof(line), "%-4zu %-44s %-58s %11s %11s %11s %9.2f %12.3f\n", i,
                  k.name.c_str(), cost.sourceOps.c_str(), human(cost.bytesRead, "B").c_str(),
                  human(cost.bytesWritten, "B").c_str(), human(cost.flops, "FLOP").c_str(),
                  bytes > 0 ? cost.flops / bytes : 0.0, time * 1e6);
    os << line;
  }
  int layers = 0, layerKernels = 0;
  for (const auto &[layer, count] : perLayer)
    if (layer.rfind("layer", 0) == 0) {
      ++layers;
      layerKernels = std::max(layerKernels, count);
    }
  os << "total: " << entry.kernels.size() << " kernels, " << human(totalBytes, "B") << " moved, "
     << human(totalFlops, "FLOP") << ", roofline " << totalTime * 1e6 << " us\n";
  os << "kernels per layer: " << layerKernels << " (" << layers << " layers)\n";
}

void printPlanDot(std::ostream &os, const plan::Plan &plan, const plan::Entry &entry) {
  os << "digraph \"" << entry.name << "\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n";
  std::map<int64_t, size_t> producer;
  for (const char *input : {"token_ids", "positions", "token_seqs", "block_tables"})
    os << "  \"" << input << "\" [shape=ellipse];\n";
  for (size_t i = 0; i < entry.kernels.size(); ++i) {
    const plan::Kernel &k = entry.kernels[i];
    os << "  k" << i << " [label=\"" << k.name << "\\n" << plan::kernelKindName(k.kind) << "\"];\n";
    for (const plan::Operand &op : k.inputs) {
      if (op.kind == plan::Operand::Kind::Buffer && producer.count(op.index)) {
        const plan::Buffer &b = entry.buffers[op.index];
        os << "  k" << producer[op.index] << " -> k" << i << " [label=\"" << b.name << " ["
           << (b.staticRows ? std::to_string(b.staticRows) : std::string("T")) << "x" << b.cols
           << "]\"];\n";
      } else if (op.kind == plan::Operand::Kind::Input) {
        os << "  \"" << plan::entryInputName(static_cast<plan::EntryInput>(op.index))
           << "\" -> k" << i << ";\n";
      }
    }
    for (int64_t out : k.outputs)
      producer[out] = i;
  }
  (void)plan;
  os << "  logits [shape=ellipse];\n  k" << producer[entry.output] << " -> logits;\n";
  if (entry.greedyIds >= 0)
    os << "  greedy_ids [shape=ellipse];\n  k" << producer[entry.greedyIds] << " -> greedy_ids;\n";
  if (entry.candidateIds >= 0)
    os << "  candidates [shape=ellipse];\n  k" << producer[entry.candidateIds]
       << " -> candidates;\n";
  os << "}\n";
}

} // namespace m2c
