//===- Plan.cpp - Plan names, verification and the memory planner ---------===//

#include "runtime/plan/Plan.h"

#include <algorithm>
#include <cmath>

namespace m2c::plan {

const char *elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::I32:
    return "i32";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F16:
    return "f16";
  }
  return "?";
}

StatusOr<ElementType> parseElementType(const std::string &name) {
  for (ElementType type :
       {ElementType::F32, ElementType::I32, ElementType::BF16, ElementType::F16})
    if (name == elementTypeName(type))
      return type;
  return Status::error("unknown element type '" + name + "'");
}

StatusOr<ElementType> parseKvCacheType(const std::string &name) {
  for (ElementType type : {ElementType::BF16, ElementType::F16, ElementType::F32})
    if (name == elementTypeName(type))
      return type;
  return Status::error("expected bf16, f16 or f32, got '" + name + "'");
}

int64_t elementSize(ElementType type) {
  return type == ElementType::F32 || type == ElementType::I32 ? 4 : 2;
}

const char *kernelKindName(KernelKind kind) {
  switch (kind) {
#define M2C_KERNEL_KIND(Enum, name, ...)                                                         \
  case KernelKind::Enum:                                                                         \
    return name;
#include "runtime/plan/KernelKinds.def"
  }
  return "?";
}

const char *kernelKindOperands(KernelKind kind) {
  switch (kind) {
#define M2C_KERNEL_KIND(Enum, name, Attrs, operands)                                             \
  case KernelKind::Enum:                                                                         \
    return operands;
#include "runtime/plan/KernelKinds.def"
  }
  return "?";
}

StatusOr<KernelKind> parseKernelKind(const std::string &name) {
#define M2C_KERNEL_KIND(Enum, kindName, ...)                                                     \
  if (name == kindName)                                                                          \
    return KernelKind::Enum;
#include "runtime/plan/KernelKinds.def"
  return Status::error("unknown kernel kind '" + name + "'");
}

const char *entryInputName(EntryInput input) {
  switch (input) {
  case EntryInput::TokenIds:
    return "token_ids";
  case EntryInput::Positions:
    return "positions";
  case EntryInput::TokenSeqs:
    return "token_seqs";
  case EntryInput::BlockTables:
    return "block_tables";
  }
  return "?";
}

int64_t Weight::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

uint64_t Weight::storageBytes() const {
  if (quantization == Quantization::None || shape.size() < 2)
    return static_cast<uint64_t>(numElements()) * static_cast<uint64_t>(elementSize(storage.type));
  int64_t k = shape.back(), n = shape[shape.size() - 2];
  uint64_t matrices = static_cast<uint64_t>(numElements() / (n * k));
  return matrices * packedMatrix(quantization, n, k).bytes();
}

std::vector<std::pair<Weight, int64_t>> weightParts(const Weight &w) {
  if (w.parts.empty())
    return {{w, 0}};
  std::vector<std::pair<Weight, int64_t>> parts;
  int64_t row = 0;
  for (const WeightPart &part : w.parts) {
    Weight p;
    p.symbol = p.binding = part.binding;
    p.shape = {part.rows, w.shape.back()};
    p.type = w.type;
    p.storage.type = w.storage.type;
    parts.emplace_back(std::move(p), row);
    row += part.rows;
  }
  return parts;
}

const Entry *Plan::findEntry(const std::string &name) const {
  for (const Entry &entry : entries)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

int64_t Plan::arenaBytes() const {
  int64_t bytes = 0;
  for (const Entry &entry : entries)
    bytes = std::max(bytes, entry.arenaBytes);
  return bytes;
}

//===----------------------------------------------------------------------===//
// Verification
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

class KernelVerifier {
public:
  KernelVerifier(const Plan &plan, const Entry &entry, const Kernel &kernel, size_t index)
      : plan_(plan), entry_(entry), kernel_(kernel),
        where_("entry '" + entry.name + "' kernel " + std::to_string(index) + " (" +
               kernel.name + ", " + kernelKindName(kernel.kind) + ")") {}

  Status fail(const std::string &why) const { return Status::error(where_ + ": " + why); }

  Status arity(size_t inputs, size_t outputs) const {
    if (kernel_.inputs.size() != inputs || kernel_.outputs.size() != outputs)
      return fail("expects " + std::to_string(inputs) + " inputs and " +
                  std::to_string(outputs) + " outputs, got " +
                  std::to_string(kernel_.inputs.size()) + " and " +
                  std::to_string(kernel_.outputs.size()));
    return Status::ok();
  }

  StatusOr<const Buffer *> buffer(size_t input) const {
    const Operand &op = kernel_.inputs[input];
    if (op.kind != Operand::Kind::Buffer)
      return fail("input " + std::to_string(input) + " must be a buffer");
    return &entry_.buffers[op.index];
  }
  StatusOr<const Weight *> weight(size_t input, size_t rank) const {
    const Operand &op = kernel_.inputs[input];
    if (op.kind != Operand::Kind::Weight)
      return fail("input " + std::to_string(input) + " must be a weight");
    const Weight &w = plan_.weights[op.index];
    if (w.shape.size() != rank)
      return fail("weight '" + w.symbol + "' must have rank " + std::to_string(rank));
    return &w;
  }
  Status input(size_t input, EntryInput expected) const {
    const Operand &op = kernel_.inputs[input];
    if (op.kind != Operand::Kind::Input || op.index != static_cast<int64_t>(expected))
      return fail("input " + std::to_string(input) + " must be the entry input " +
                  entryInputName(expected));
    return Status::ok();
  }
  const Buffer &output(size_t i) const { return entry_.buffers[kernel_.outputs[i]]; }
  Status expect(bool condition, const std::string &why) const {
    return condition ? Status::ok() : fail(why);
  }
  Status positiveAttr(const char *key) const {
    auto it = kernel_.attrs.find(key);
    double v = it == kernel_.attrs.end() ? -1 : it->second;
    return expect(v > 0 && v < kMaxDim && std::floor(v) == v,
                  std::string("attribute ") + key + " must be a positive integer");
  }
  /// The kind's attributes, when every required one is there.
  template <class A> StatusOr<A> attrs() const {
    const char *missing = nullptr;
    A attrs = readAttrs<A>(kernel_.attrs, &missing);
    if (missing)
      return fail(std::string("attribute ") + missing + " is missing");
    return attrs;
  }
  Status positiveEps(double eps) const { return expect(eps > 0, "attribute eps must be positive"); }

  Status verify() const;

private:
  const Plan &plan_;
  const Entry &entry_;
  const Kernel &kernel_;
  std::string where_;
};

#define M2C_ASSIGN_OR_RETURN(lhs, expr)                                          \
  auto lhs##OrError = (expr);                                                    \
  if (!lhs##OrError)                                                             \
    return lhs##OrError.status();                                                \
  auto lhs = *lhs##OrError

Status KernelVerifier::verify() const {
  const Kernel &k = kernel_;
  switch (k.kind) {
  case KernelKind::Embedding: {
    M2C_RETURN_IF_ERROR(arity(2, 1));
    M2C_RETURN_IF_ERROR(input(0, EntryInput::TokenIds));
    M2C_ASSIGN_OR_RETURN(table, weight(1, 2));
    return expect(output(0).cols == table->shape[1] && output(0).type == ElementType::F32 &&
                      !output(0).staticRows,
                  "output must be f32 [tokens, " + std::to_string(table->shape[1]) + "]");
  }
  case KernelKind::RmsNorm: {
    M2C_RETURN_IF_ERROR(arity(2, 1));
    M2C_ASSIGN_OR_RETURN(x, buffer(0));
    M2C_ASSIGN_OR_RETURN(w, weight(1, 1));
    M2C_ASSIGN_OR_RETURN(norm, attrs<NormAttrs>());
    M2C_RETURN_IF_ERROR(positiveEps(norm.eps));
    return expect(x->cols == w->shape[0] && output(0).cols == x->cols &&
                      output(0).staticRows == x->staticRows,
                  "weight, input and output widths must agree");
  }
  case KernelKind::AddRmsNorm: {
    M2C_RETURN_IF_ERROR(arity(3, 2));
    M2C_ASSIGN_OR_RETURN(a, buffer(0));
    M2C_ASSIGN_OR_RETURN(b, buffer(1));
    M2C_ASSIGN_OR_RETURN(w, weight(2, 1));
    M2C_ASSIGN_OR_RETURN(norm, attrs<NormAttrs>());
    M2C_RETURN_IF_ERROR(positiveEps(norm.eps));
    return expect(a->cols == w->shape[0] && b->cols == a->cols &&
                      a->staticRows == b->staticRows && output(0).cols == a->cols &&
                      output(1).cols == a->cols && output(0).staticRows == a->staticRows &&
                      output(1).staticRows == a->staticRows,
                  "inputs, weight and outputs widths must agree");
  }
  case KernelKind::Linear: {
    // Several outputs are consecutive column ranges of one product.
    if (kernel_.inputs.size() != 2 || kernel_.outputs.empty() || kernel_.outputs.size() > 8)
      return fail("expects 2 inputs and 1 to 8 outputs, got " +
                  std::to_string(kernel_.inputs.size()) + " and " +
                  std::to_string(kernel_.outputs.size()));
    M2C_ASSIGN_OR_RETURN(x, buffer(0));
    M2C_ASSIGN_OR_RETURN(w, weight(1, 2));
    int64_t columns = 0;
    for (size_t i = 0; i < kernel_.outputs.size(); ++i) {
      M2C_RETURN_IF_ERROR(expect(output(i).staticRows == x->staticRows,
                                 "every output must have the input's rows"));
      columns += output(i).cols;
    }
    return expect(x->cols == w->shape[1] && columns == w->shape[0],
                  "shapes must be x [T, K], weight [N, K], outputs [T, N] in total");
  }
  case KernelKind::Attention: {
    bool qkNorm = k.inputs.size() == 8;
    M2C_RETURN_IF_ERROR(arity(qkNorm ? 8 : 6, 1));
    M2C_ASSIGN_OR_RETURN(q, buffer(0));
    M2C_ASSIGN_OR_RETURN(kb, buffer(1));
    M2C_ASSIGN_OR_RETURN(v, buffer(2));
    M2C_RETURN_IF_ERROR(input(3, EntryInput::Positions));
    M2C_RETURN_IF_ERROR(input(4, EntryInput::TokenSeqs));
    M2C_RETURN_IF_ERROR(input(5, EntryInput::BlockTables));
    for (const char *key : {"num_heads", "num_kv_heads", "head_dim"})
      M2C_RETURN_IF_ERROR(positiveAttr(key));
    M2C_ASSIGN_OR_RETURN(a, attrs<AttentionAttrs>());
    int64_t heads = a.numHeads, kvHeads = a.numKvHeads, headDim = a.headDim,
            rotary = a.rotaryDim, layer = a.layer;
    const KvCacheSpec &cache = plan_.kvCache;
    if (qkNorm) {
      M2C_ASSIGN_OR_RETURN(qw, weight(6, 1));
      M2C_ASSIGN_OR_RETURN(kw, weight(7, 1));
      M2C_RETURN_IF_ERROR(expect(qw->shape[0] == heads * headDim && kw->shape[0] == kvHeads * headDim &&
                                     a.qkNormEps > 0,
                                 "QK-norm weights must be [heads * head_dim] and [kv_heads * "
                                 "head_dim] with a positive qk_norm_eps"));
    }
    M2C_RETURN_IF_ERROR(expect(heads % kvHeads == 0, "num_heads must be a multiple of num_kv_heads"));
    M2C_RETURN_IF_ERROR(expect(rotary >= 0 && rotary % 2 == 0 && rotary <= headDim,
                               "rotary_dim must be even and within head_dim"));
    M2C_RETURN_IF_ERROR(expect(a.ropeTheta > 0, "rope_theta must be positive"));
    M2C_RETURN_IF_ERROR(expect(layer >= 0 && layer < cache.layers && kvHeads == cache.kvHeads &&
                                   headDim == cache.headDim,
                               "layer, num_kv_heads and head_dim must match the KV cache"));
    return expect(q->cols == heads * headDim && kb->cols == kvHeads * headDim &&
                      v->cols == kvHeads * headDim && output(0).cols == q->cols &&
                      !q->staticRows && !kb->staticRows && !v->staticRows,
                  "q/k/v/output widths must match heads x head_dim");
  }
  case KernelKind::Add: {
    M2C_RETURN_IF_ERROR(arity(2, 1));
    M2C_ASSIGN_OR_RETURN(a, buffer(0));
    M2C_ASSIGN_OR_RETURN(b, buffer(1));
    return expect(a->cols == b->cols && output(0).cols == a->cols &&
                      a->staticRows == b->staticRows && output(0).staticRows == a->staticRows,
                  "operands and output must have one shape");
  }
  case KernelKind::MoeRoute: {
    // With add_rms_norm, the router first computes (a + b, rms(a + b) * w)
    // as add_rms_norm does and routes the normalised rows: inputs (a, b, w,
    // gate [, bias]), outputs (sum, normed, ids, weights).
    M2C_RETURN_IF_ERROR(positiveAttr("top_k"));
    M2C_RETURN_IF_ERROR(positiveAttr("num_experts"));
    M2C_ASSIGN_OR_RETURN(route, attrs<MoeRouteAttrs>());
    const bool norm = route.addRmsNorm;
    const size_t first = norm ? 2 : 0; // inputs and outputs before the gate's
    bool hasBias = k.inputs.size() == first + 3;
    M2C_RETURN_IF_ERROR(arity(first + (hasBias ? 3 : 2), first + 2));
    M2C_ASSIGN_OR_RETURN(h, buffer(0));
    if (norm) {
      M2C_ASSIGN_OR_RETURN(b, buffer(1));
      M2C_ASSIGN_OR_RETURN(w, weight(2, 1));
      M2C_RETURN_IF_ERROR(positiveEps(route.eps));
      M2C_RETURN_IF_ERROR(expect(
          w->shape[0] == h->cols && b->cols == h->cols && b->staticRows == h->staticRows &&
              output(0).cols == h->cols && output(1).cols == h->cols &&
              output(0).staticRows == h->staticRows && output(1).staticRows == h->staticRows &&
              output(0).type == ElementType::F32 && output(1).type == ElementType::F32,
          "norm inputs, weight and f32 outputs widths must agree"));
    }
    M2C_ASSIGN_OR_RETURN(gate, weight(first + 1, 2));
    int64_t experts = route.numExperts, topK = route.topK;
    if (hasBias) {
      M2C_ASSIGN_OR_RETURN(bias, weight(first + 2, 1));
      M2C_RETURN_IF_ERROR(expect(bias->shape[0] == experts, "bias must have num_experts entries"));
    }
    const Buffer &ids = output(first), &weights = output(first + 1);
    return expect(topK <= experts && gate->shape[0] == experts && gate->shape[1] == h->cols &&
                      ids.type == ElementType::I32 && ids.cols == topK &&
                      weights.type == ElementType::F32 && weights.cols == topK,
                  "gate must be [num_experts, hidden], outputs i32/f32 [T, top_k]");
  }
  case KernelKind::MoeExperts: {
    bool hasResidual = k.inputs.size() == 7;
    M2C_RETURN_IF_ERROR(arity(hasResidual ? 7 : 6, 1));
    if (hasResidual) {
      M2C_ASSIGN_OR_RETURN(residual, buffer(6));
      M2C_ASSIGN_OR_RETURN(hidden, buffer(0));
      M2C_RETURN_IF_ERROR(expect(residual->cols == hidden->cols &&
                                     residual->staticRows == hidden->staticRows,
                                 "the residual must have the hidden shape"));
    }
    M2C_ASSIGN_OR_RETURN(h, buffer(0));
    M2C_ASSIGN_OR_RETURN(ids, buffer(1));
    M2C_ASSIGN_OR_RETURN(weights, buffer(2));
    M2C_ASSIGN_OR_RETURN(w1, weight(3, 3));
    M2C_ASSIGN_OR_RETURN(w3, weight(4, 3));
    M2C_ASSIGN_OR_RETURN(w2, weight(5, 3));
    return expect(ids->type == ElementType::I32 && weights->type == ElementType::F32 &&
                      ids->cols == weights->cols && w1->shape == w3->shape &&
                      w1->shape[2] == h->cols && w2->shape[0] == w1->shape[0] &&
                      w2->shape[1] == w1->shape[2] && w2->shape[2] == w1->shape[1] &&
                      output(0).cols == h->cols,
                  "expert weights must be [E, I, H] (w1, w3) and [E, H, I] (w2)");
  }
  case KernelKind::TakeLastRow: {
    M2C_RETURN_IF_ERROR(arity(1, 1));
    M2C_ASSIGN_OR_RETURN(x, buffer(0));
    return expect(output(0).cols == x->cols && output(0).staticRows == 1,
                  "output must be one row as wide as the input");
  }
  case KernelKind::LmHead: {
    // A fourth input is the residual added before the norm.
    // Two more outputs are the sampling candidates.
    M2C_RETURN_IF_ERROR(arity(k.inputs.size() == 4 ? 4 : 3, k.outputs.size() == 4 ? 4 : 2));
    M2C_ASSIGN_OR_RETURN(x, buffer(0));
    if (k.inputs.size() == 4) {
      M2C_ASSIGN_OR_RETURN(residual, buffer(3));
      M2C_RETURN_IF_ERROR(expect(residual->cols == x->cols && residual->type == x->type &&
                                     residual->staticRows == x->staticRows,
                                 "the residual must have the input's shape"));
    }
    M2C_ASSIGN_OR_RETURN(norm, weight(1, 1));
    M2C_ASSIGN_OR_RETURN(w, weight(2, 2));
    M2C_ASSIGN_OR_RETURN(head, attrs<NormAttrs>());
    M2C_RETURN_IF_ERROR(positiveEps(head.eps));
    M2C_RETURN_IF_ERROR(expect(x->type == ElementType::F32 && x->cols == norm->shape[0] &&
                                   w->shape[1] == x->cols,
                               "shapes must be x [T, H] f32, norm weight [H], lm_head [V, H]"));
    M2C_RETURN_IF_ERROR(expect(output(0).type == ElementType::F32 &&
                                   output(0).cols == w->shape[0] &&
                                   output(0).staticRows == x->staticRows &&
                                   output(1).type == ElementType::I32 && output(1).cols == 1 &&
                                   output(1).staticRows == x->staticRows,
                               "outputs must be logits f32 [T, V] and ids i32 [T, 1]"));
    if (k.outputs.size() == 2)
      return Status::ok();
    return expect(output(2).type == ElementType::I32 && output(3).type == ElementType::F32 &&
                      output(2).cols == output(3).cols && output(2).cols <= w->shape[0] &&
                      output(2).staticRows == x->staticRows &&
                      output(3).staticRows == x->staticRows,
                  "candidates must be ids i32 [T, K] and values f32 [T, K], K <= V");
  }
  }
  return fail("unknown kernel kind");
}

} // namespace

Status verifyPlan(const Plan &plan) {
  if (plan.version != kPlanVersion)
    return Status::error("plan version " + std::to_string(plan.version) + " is not supported (expected " +
                         std::to_string(kPlanVersion) + ")");
  if (plan.maxTokens <= 0 || plan.maxTokens > (1 << 24))
    return Status::error("plan: max_tokens out of range: " + std::to_string(plan.maxTokens));
  const KvCacheSpec &cache = plan.kvCache;
  if (cache.layers <= 0 || cache.kvHeads <= 0 || cache.headDim <= 0 || cache.blockSize <= 0 ||
      cache.layers > kMaxDim || cache.kvHeads > 4096 || cache.headDim > 4096 ||
      cache.blockSize > 4096)
    return Status::error("plan: kv_cache dimensions out of range");
  for (const Weight &w : plan.weights) {
    if (w.shape.empty() || w.shape.size() > 3)
      return Status::error("plan: weight '" + w.symbol + "' must have rank 1 to 3");
    if (w.quantization != Quantization::None && w.shape.size() < 2)
      return Status::error("plan: weight '" + w.symbol + "' is a vector and cannot be quantized");
    double elements = 1;
    for (int64_t d : w.shape) {
      if (d <= 0 || d > kMaxDim)
        return Status::error("plan: weight '" + w.symbol + "' has a dimension out of range");
      elements *= static_cast<double>(d);
    }
    if (elements > 1e12)
      return Status::error("plan: weight '" + w.symbol + "' is too large");
    if (!w.parts.empty()) {
      int64_t rows = 0;
      for (const WeightPart &part : w.parts) {
        if (part.rows <= 0 || part.rows > kMaxDim || part.binding.empty() ||
            part.binding.find("{e}") != std::string::npos)
          return Status::error("plan: weight '" + w.symbol +
                               "' has a part without rows or a plain binding");
        rows += part.rows;
      }
      if (w.shape.size() != 2 || rows != w.shape[0])
        return Status::error("plan: weight '" + w.symbol +
                             "' must be a matrix whose parts' rows sum to its own");
    }
  }
  if (plan.entries.empty())
    return Status::error("plan: no entry points");
  for (const Entry &entry : plan.entries) {
    std::string where = "plan: entry '" + entry.name + "'";
    for (const Buffer &b : entry.buffers) {
      if (b.cols <= 0 || b.cols > kMaxDim || b.staticRows < 0 || b.staticRows > kMaxDim ||
          b.offset < 0 || b.offset + b.bytesFor(plan.maxTokens) > entry.arenaBytes)
        return Status::error(where + ": buffer '" + b.name + "' lies outside the arena");
    }
    if (entry.output < 0 || entry.output >= static_cast<int64_t>(entry.buffers.size()))
      return Status::error(where + ": output buffer out of range");
    if (entry.buffers[entry.output].cols != plan.vocabSize)
      return Status::error(where + ": output must be [rows, vocab_size]");
    if (entry.greedyIds != -1) {
      if (entry.greedyIds < 0 || entry.greedyIds >= static_cast<int64_t>(entry.buffers.size()))
        return Status::error(where + ": greedy_ids buffer out of range");
      const Buffer &ids = entry.buffers[entry.greedyIds];
      if (ids.type != ElementType::I32 || ids.cols != 1 ||
          ids.staticRows != entry.buffers[entry.output].staticRows)
        return Status::error(where + ": greedy_ids must be i32 [rows, 1], one per logits row");
    }
    if ((entry.candidateIds == -1) != (entry.candidateLogits == -1))
      return Status::error(where + ": candidate_ids and candidate_logits come together");
    if (entry.candidateIds != -1) {
      const int64_t count = static_cast<int64_t>(entry.buffers.size());
      if (entry.candidateIds < 0 || entry.candidateIds >= count || entry.candidateLogits < 0 ||
          entry.candidateLogits >= count)
        return Status::error(where + ": candidate buffers out of range");
      const Buffer &ids = entry.buffers[entry.candidateIds];
      const Buffer &values = entry.buffers[entry.candidateLogits];
      const int64_t rows = entry.buffers[entry.output].staticRows;
      if (ids.type != ElementType::I32 || values.type != ElementType::F32 ||
          ids.cols != values.cols || ids.cols > plan.vocabSize || ids.staticRows != rows ||
          values.staticRows != rows)
        return Status::error(where + ": candidate_ids and candidate_logits must be i32 and f32 "
                                     "[rows, K], K <= vocab_size, one row per logits row");
    }
    for (const Kernel &kernel : entry.kernels)
      M2C_RETURN_IF_ERROR(verifyKernel(plan, entry, kernel));
  }
  return Status::ok();
}

Status verifyKernel(const Plan &plan, const Entry &entry, const Kernel &k) {
  const std::string where = "plan: entry '" + entry.name + "'";
  // Messages name the kernel's index when it is one of the entry's.
  size_t i = 0;
  while (i < entry.kernels.size() && &entry.kernels[i] != &k)
    ++i;
  for (const Operand &op : k.inputs) {
    int64_t limit = op.kind == Operand::Kind::Input    ? kNumEntryInputs
                    : op.kind == Operand::Kind::Buffer ? static_cast<int64_t>(entry.buffers.size())
                                                       : static_cast<int64_t>(plan.weights.size());
    if (op.index < 0 || op.index >= limit)
      return Status::error(where + ": kernel " + std::to_string(i) + " (" + k.name +
                           ") has an operand out of range");
  }
  for (int64_t out : k.outputs)
    if (out < 0 || out >= static_cast<int64_t>(entry.buffers.size()))
      return Status::error(where + ": kernel " + std::to_string(i) + " (" + k.name +
                           ") writes a buffer out of range");
  return KernelVerifier(plan, entry, k, i).verify().withContext("plan");
}

//===----------------------------------------------------------------------===//
// Memory planning
//===----------------------------------------------------------------------===//

void planMemory(Entry &entry, int64_t maxTokens) {
  constexpr int64_t kAlignment = 64;
  size_t n = entry.buffers.size();
  std::vector<int64_t> first(n, -1), last(n, -1);
  for (size_t i = 0; i < entry.kernels.size(); ++i) {
    const Kernel &k = entry.kernels[i];
    for (int64_t out : k.outputs) {
      if (first[out] < 0)
        first[out] = i;
      last[out] = std::max<int64_t>(last[out], i);
    }
    for (const Operand &op : k.inputs)
      if (op.kind == Operand::Kind::Buffer)
        last[op.index] = std::max<int64_t>(last[op.index], i);
  }
  // The entry's results are read after the last kernel.
  for (int64_t result : {entry.output, entry.greedyIds, entry.candidateIds, entry.candidateLogits})
    if (result >= 0 && static_cast<size_t>(result) < n)
      last[result] = static_cast<int64_t>(entry.kernels.size());

  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i)
    order[i] = i;
  auto size = [&](size_t i) {
    return (entry.buffers[i].bytesFor(maxTokens) + kAlignment - 1) / kAlignment * kAlignment;
  };
  // Largest first, then by first use: the usual greedy-by-size heuristic.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return size(a) != size(b) ? size(a) > size(b) : a < b;
  });
  struct Placed {
    int64_t offset, bytes, first, last;
  };
  std::vector<Placed> placed;
  int64_t arena = 0;
  for (size_t i : order) {
    int64_t bytes = size(i);
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const Placed &p : placed)
      if (!(p.last < first[i] || last[i] < p.first))
        busy.push_back({p.offset, p.offset + p.bytes});
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + bytes <= begin)
        break;
      offset = std::max(offset, end);
    }
    entry.buffers[i].offset = offset;
    placed.push_back({offset, bytes, first[i], last[i]});
    arena = std::max(arena, offset + bytes);
  }
  entry.arenaBytes = arena;
}

} // namespace m2c::plan
