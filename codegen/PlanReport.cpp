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

KernelCost estimateKernelCost(const plan::Plan &plan, const plan::Entry &entry,
                              const plan::Kernel &k, const StepShape &shape) {
  KernelCost cost;
  double t = static_cast<double>(shape.tokens);
  auto rows = [&](int64_t id) { return static_cast<double>(entry.buffers[id].rows(shape.tokens)); };
  auto bufferBytes = [&](int64_t id) {
    const plan::Buffer &b = entry.buffers[id];
    return rows(id) * b.cols * plan::elementSize(b.type);
  };
  // As stored: packed formats count their codes and scales.
  auto weightBytes = [&](const plan::Operand &op) {
    return static_cast<double>(plan.weights[op.index].storageBytes());
  };
  // Default: every operand read once, every output written once.
  for (const plan::Operand &op : k.inputs) {
    if (op.kind == plan::Operand::Kind::Buffer)
      cost.bytesRead += bufferBytes(op.index);
    else if (op.kind == plan::Operand::Kind::Weight)
      cost.bytesRead += weightBytes(op);
    else
      cost.bytesRead += t * 4;
  }
  for (int64_t out : k.outputs)
    cost.bytesWritten += bufferBytes(out);

  switch (k.kind) {
  case KernelKind::Embedding: {
    // Only the gathered rows of the table are read.
    const plan::Weight &table = plan.weights[k.inputs[1].index];
    cost.bytesRead = t * 4 + t * static_cast<double>(table.storageBytes()) / table.shape[0];
    cost.sourceOps = "tensor.gather + arith.extf";
    break;
  }
  case KernelKind::RmsNorm:
    cost.flops = 3 * rows(k.outputs[0]) * entry.buffers[k.outputs[0]].cols;
    cost.sourceOps = "norm.rms";
    break;
  case KernelKind::AddRmsNorm:
    cost.flops = 4 * rows(k.outputs[0]) * entry.buffers[k.outputs[0]].cols;
    cost.sourceOps = "arith.addf + norm.rms";
    break;
  case KernelKind::Linear: {
    const plan::Weight &w = plan.weights[k.inputs[1].index];
    cost.flops = 2.0 * rows(k.outputs[0]) * w.shape[0] * w.shape[1];
    cost.sourceOps = k.outputs.size() == 1
                         ? std::string("linalg.matmul")
                         : "linalg.matmul x" + std::to_string(k.outputs.size()) +
                               " (concatenated weights)";
    break;
  }
  case KernelKind::Attention: {
    const plan::KvCacheSpec &kv = plan.kvCache;
    const auto attrs = k.typedAttrs<plan::AttentionAttrs>();
    double heads = attrs.numHeads, headDim = attrs.headDim;
    // Each sequence's cache is read once per step: decode reads context
    // positions per token, a prefill chunk reads its context once.
    double sequences = entry.lastTokenLogits ? 1 : t;
    cost.bytesRead += sequences * shape.context * kv.tokenBytes();
    cost.bytesWritten += t * kv.tokenBytes();
    cost.flops = 4.0 * t * heads * shape.context * headDim;
    cost.sourceOps = k.inputs.size() == 8 ? "norm.rms x2 + attn.gqa (qk-norm + rope + kv append + attention)"
                                          : "attn.gqa (rope + kv append + attention)";
    break;
  }
  case KernelKind::Add:
    cost.flops = rows(k.outputs[0]) * entry.buffers[k.outputs[0]].cols;
    cost.sourceOps = "arith.addf";
    break;
  case KernelKind::MoeRoute: {
    const bool norm = k.typedAttrs<plan::MoeRouteAttrs>().addRmsNorm;
    const plan::Weight &gate = plan.weights[k.inputs[norm ? 3 : 1].index];
    cost.flops = 2.0 * t * gate.shape[0] * gate.shape[1] + (norm ? 4.0 * t * gate.shape[1] : 0);
    cost.sourceOps = std::string(norm ? "norm.add_rms + " : "") +
                     "moe.route (gate GEMV + scoring + bias + top-k + renormalise)";
    break;
  }
  case KernelKind::MoeExperts: {
    const plan::Weight &w1 = plan.weights[k.inputs[3].index];
    double experts = w1.shape[0], intermediate = w1.shape[1], hidden = w1.shape[2];
    double topK = entry.buffers[k.inputs[1].index].cols;
    // Only the experts the step selects are read: E (1 - (1 - k/E)^T).
    double touched = experts * (1.0 - std::pow(1.0 - topK / experts, t));
    double stacks = weightBytes(k.inputs[3]) + weightBytes(k.inputs[4]) + weightBytes(k.inputs[5]);
    double perExpert = stacks / experts;
    cost.bytesRead -= stacks;
    cost.bytesRead += touched * perExpert;
    cost.flops = t * topK * 6.0 * intermediate * hidden;
    cost.sourceOps = k.inputs.size() == 7 ? "moe.experts + arith.addf (residual)" : "moe.experts";
    break;
  }
  case KernelKind::TakeLastRow:
    cost.bytesRead = bufferBytes(k.outputs[0]);
    cost.sourceOps = "tensor.extract_slice";
    break;
  case KernelKind::LmHead: {
    const plan::Weight &w = plan.weights[k.inputs[2].index];
    double tokens = rows(k.outputs[0]);
    cost.flops = 2.0 * tokens * w.shape[0] * w.shape[1] + 3.0 * tokens * w.shape[1] +
                 tokens * w.shape[0];
    cost.sourceOps = std::string(k.inputs.size() == 4 ? "arith.addf + " : "") +
                     "norm.rms + linalg.matmul (lm_head) + argmax";
    if (k.outputs.size() == 4) {
      cost.sourceOps += " + top-" + std::to_string(entry.buffers[k.outputs[2]].cols);
      // The candidates' first launch reads the logits back once; the
      // per-chunk candidates it leaves in the workspace for the second
      // (K of every 4096 logits, as 8-byte keys) add a few percent, not
      // counted.
      cost.bytesRead += bufferBytes(k.outputs[0]);
    }
    break;
  }
  }
  return cost;
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
