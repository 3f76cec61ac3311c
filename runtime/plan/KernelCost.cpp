//===- KernelCost.cpp - Bytes and FLOPs of a plan kernel ------------------===//

#include "runtime/plan/KernelCost.h"

#include <cmath>

namespace m2c {

using plan::KernelKind;

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
      cost.weightBytes += weightBytes(op);
    else
      cost.bytesRead += t * 4;
  }

  for (int64_t out : k.outputs)
    cost.bytesWritten += bufferBytes(out);

  switch (k.kind) {
  case KernelKind::Embedding: {
    // Only the gathered rows of the table are read.
    const plan::Weight &table = plan.weights[k.inputs[1].index];
    cost.bytesRead = t * 4;
    cost.weightBytes = t * static_cast<double>(table.storageBytes()) / table.shape[0];
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
    cost.cacheBytes = sequences * shape.context * kv.tokenBytes();
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
    cost.weightBytes += touched * perExpert - stacks;
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
  cost.bytesRead += cost.weightBytes + cost.cacheBytes;
  return cost;
}

} // namespace m2c
