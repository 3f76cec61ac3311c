//===- CheckpointBinding.cpp - MiniMax-M2 weights resolved in a checkpoint ===//

#include "runtime/checkpoint/CheckpointBinding.h"

#include <algorithm>
#include <set>

namespace m2c {

namespace {

struct KindName {
  WeightKind kind;
  const char *suffix; // after "model.layers.N."
};

// Per-layer, non-expert weights and their original-layout suffixes.
constexpr KindName kLayerNames[] = {
    {WeightKind::InputNorm, "input_layernorm.weight"},
    {WeightKind::PostAttentionNorm, "post_attention_layernorm.weight"},
    {WeightKind::QProj, "self_attn.q_proj.weight"},
    {WeightKind::KProj, "self_attn.k_proj.weight"},
    {WeightKind::VProj, "self_attn.v_proj.weight"},
    {WeightKind::OProj, "self_attn.o_proj.weight"},
    {WeightKind::QNorm, "self_attn.q_norm.weight"},
    {WeightKind::KNorm, "self_attn.k_norm.weight"},
    {WeightKind::RouterGate, "block_sparse_moe.gate.weight"},
    {WeightKind::RouterBias, "block_sparse_moe.e_score_correction_bias"},
};

bool isGlobal(WeightKind k) {
  return k == WeightKind::Embed || k == WeightKind::FinalNorm ||
         k == WeightKind::LmHead;
}

bool isExpert(WeightKind k) {
  return k == WeightKind::ExpertW1 || k == WeightKind::ExpertW2 ||
         k == WeightKind::ExpertW3;
}

std::string layerPrefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

/// Parses a canonical decimal index: digits only, no leading zeros, and
/// small enough that no arithmetic on it can overflow.
bool parseIndex(const std::string &s, int64_t &out) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0'))
    return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

} // namespace

std::string canonicalWeightName(const WeightRef &ref) {
  switch (ref.kind) {
  case WeightKind::Embed:
    return "model.embed_tokens.weight";
  case WeightKind::FinalNorm:
    return "model.norm.weight";
  case WeightKind::LmHead:
    return "lm_head.weight";
  case WeightKind::ExpertW1:
  case WeightKind::ExpertW2:
  case WeightKind::ExpertW3: {
    const char *w = ref.kind == WeightKind::ExpertW1   ? "w1"
                    : ref.kind == WeightKind::ExpertW2 ? "w2"
                                                       : "w3";
    return layerPrefix(ref.layer) + "block_sparse_moe.experts." +
           std::to_string(ref.expert) + "." + w + ".weight";
  }
  default:
    for (const KindName &kn : kLayerNames)
      if (kn.kind == ref.kind)
        return layerPrefix(ref.layer) + kn.suffix;
    return "<unknown weight>";
  }
}

StatusOr<WeightRef> parseCanonicalWeightName(const std::string &name) {
  auto fail = [&] {
    return Status::error("'" + name + "' is not a MiniMax-M2 weight name");
  };
  for (WeightKind k :
       {WeightKind::Embed, WeightKind::FinalNorm, WeightKind::LmHead})
    if (name == canonicalWeightName(WeightRef::global(k)))
      return WeightRef::global(k);
  const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0)
    return fail();
  size_t dot = name.find('.', prefix.size());
  int64_t layer = 0;
  if (dot == std::string::npos ||
      !parseIndex(name.substr(prefix.size(), dot - prefix.size()), layer))
    return fail();
  const std::string rest = name.substr(dot + 1);
  for (const KindName &kn : kLayerNames)
    if (rest == kn.suffix)
      return WeightRef::inLayer(kn.kind, layer);
  const std::string experts = "block_sparse_moe.experts.";
  if (rest.compare(0, experts.size(), experts) != 0)
    return fail();
  size_t edot = rest.find('.', experts.size());
  int64_t expert = 0;
  if (edot == std::string::npos ||
      !parseIndex(rest.substr(experts.size(), edot - experts.size()), expert))
    return fail();
  const std::string w = rest.substr(edot + 1);
  if (w == "w1.weight")
    return WeightRef::ofExpert(WeightKind::ExpertW1, layer, expert);
  if (w == "w2.weight")
    return WeightRef::ofExpert(WeightKind::ExpertW2, layer, expert);
  if (w == "w3.weight")
    return WeightRef::ofExpert(WeightKind::ExpertW3, layer, expert);
  return fail();
}

Status ValidationReport::status(bool allowUnexpected) const {
  std::vector<std::string> lines = errors;
  if (!allowUnexpected)
    for (const std::string &name : unexpected)
      lines.push_back("unexpected tensor '" + name +
                      "' (not used by a model with this config)");
  if (lines.empty())
    return Status::ok();
  std::string message = lines.size() == 1
                            ? lines[0]
                            : std::to_string(lines.size()) +
                                  " checkpoint problems:";
  if (lines.size() > 1) {
    const size_t shown = std::min<size_t>(lines.size(), 10);
    for (size_t i = 0; i < shown; ++i)
      message += "\n  " + lines[i];
    if (shown < lines.size())
      message += "\n  ... and " + std::to_string(lines.size() - shown) +
                 " more";
  }
  return Status::error(message);
}

//===----------------------------------------------------------------------===//
// CheckpointBinding
//===----------------------------------------------------------------------===//

/// One stored tensor: the name to look for (and alternatives, for the
/// router whose prefix differs between layouts), its stored shape, and
/// where the logical weight sits inside it.
struct CheckpointBinding::StoredSpec {
  std::string name;
  std::vector<std::string> alternatives;
  std::vector<int64_t> storedShape;
  std::vector<int64_t> logicalShape;
  /// Matrices may be F8_E4M3 with block scales; vectors may not.
  bool matrix = false;
  int64_t matrixIndex = 0;
  int64_t rowOffset = 0;
};

StatusOr<CheckpointBinding>
CheckpointBinding::create(const Checkpoint &checkpoint,
                          const ModelConfig &config) {
  const std::string origin = checkpoint.origin();
  struct Dim {
    const char *key;
    int64_t value;
    int64_t max;
  };
  // Caps keep every shape product and loop bound far from overflow; they
  // are orders of magnitude above any real variant.
  const Dim dims[] = {
      {"vocab_size", config.vocabSize, 1ll << 24},
      {"hidden_size", config.hiddenSize, 1ll << 20},
      {"intermediate_size", config.intermediateSize, 1ll << 20},
      {"num_hidden_layers", config.numHiddenLayers, 1ll << 12},
      {"num_attention_heads", config.numAttentionHeads, 1ll << 12},
      {"num_key_value_heads", config.numKeyValueHeads, 1ll << 12},
      {"head_dim", config.headDim, 1ll << 12},
      {"num_local_experts", config.numLocalExperts, 1ll << 12},
  };
  for (const Dim &d : dims)
    if (d.value <= 0 || d.value > d.max)
      return Status::error(origin + ": config " + d.key + " (" +
                           std::to_string(d.value) +
                           ") is outside the supported range [1, " +
                           std::to_string(d.max) + "]");
  const CheckpointQuantization &q = config.quantization;
  if (q.blockRows <= 0 || q.blockCols <= 0)
    return Status::error(origin + ": config weight_block_size [" +
                         std::to_string(q.blockRows) + ", " +
                         std::to_string(q.blockCols) +
                         "] must be positive");

  CheckpointBinding binding(checkpoint, config);
  binding.block_ = BlockSize{q.blockRows, q.blockCols};
  for (int64_t l = 0; l < config.numHiddenLayers; ++l) {
    const std::string p = layerPrefix(l) + "mlp.experts.";
    bool packed = checkpoint.has(p + "gate_up_proj") ||
                  checkpoint.has(p + "down_proj");
    binding.layouts_.push_back(packed ? ExpertLayout::Packed
                                      : ExpertLayout::PerExpert);
  }
  return binding;
}

ExpertLayout CheckpointBinding::expertLayout(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(layouts_.size()))
    return ExpertLayout::PerExpert;
  return layouts_[layer];
}

std::vector<WeightRef> CheckpointBinding::allWeights() const {
  std::vector<WeightRef> refs;
  refs.push_back(WeightRef::global(WeightKind::Embed));
  for (int64_t l = 0; l < config_.numHiddenLayers; ++l) {
    for (WeightKind k :
         {WeightKind::InputNorm, WeightKind::QProj, WeightKind::KProj,
          WeightKind::VProj, WeightKind::OProj})
      refs.push_back(WeightRef::inLayer(k, l));
    if (config_.useQkNorm) {
      refs.push_back(WeightRef::inLayer(WeightKind::QNorm, l));
      refs.push_back(WeightRef::inLayer(WeightKind::KNorm, l));
    }
    refs.push_back(WeightRef::inLayer(WeightKind::PostAttentionNorm, l));
    refs.push_back(WeightRef::inLayer(WeightKind::RouterGate, l));
    if (config_.useRoutingBias)
      refs.push_back(WeightRef::inLayer(WeightKind::RouterBias, l));
    for (int64_t e = 0; e < config_.numLocalExperts; ++e)
      for (WeightKind k :
           {WeightKind::ExpertW1, WeightKind::ExpertW2, WeightKind::ExpertW3})
        refs.push_back(WeightRef::ofExpert(k, l, e));
  }
  refs.push_back(WeightRef::global(WeightKind::FinalNorm));
  refs.push_back(WeightRef::global(WeightKind::LmHead));
  return refs;
}

std::vector<int64_t>
CheckpointBinding::expectedShape(const WeightRef &ref) const {
  const ModelConfig &c = config_;
  const bool perLayerQk = c.qkNormType != "per_head";
  switch (ref.kind) {
  case WeightKind::Embed:
  case WeightKind::LmHead:
    return {c.vocabSize, c.hiddenSize};
  case WeightKind::FinalNorm:
  case WeightKind::InputNorm:
  case WeightKind::PostAttentionNorm:
    return {c.hiddenSize};
  case WeightKind::QProj:
    return {c.qSize(), c.hiddenSize};
  case WeightKind::KProj:
  case WeightKind::VProj:
    return {c.kvSize(), c.hiddenSize};
  case WeightKind::OProj:
    return {c.hiddenSize, c.qSize()};
  case WeightKind::QNorm:
    return {perLayerQk ? c.qSize() : c.headDim};
  case WeightKind::KNorm:
    return {perLayerQk ? c.kvSize() : c.headDim};
  case WeightKind::RouterGate:
    return {c.numLocalExperts, c.hiddenSize};
  case WeightKind::RouterBias:
    return {c.numLocalExperts};
  case WeightKind::ExpertW1:
  case WeightKind::ExpertW3:
    return {c.intermediateSize, c.hiddenSize};
  case WeightKind::ExpertW2:
    return {c.hiddenSize, c.intermediateSize};
  }
  return {};
}

StatusOr<CheckpointBinding::StoredSpec>
CheckpointBinding::storedSpec(const WeightRef &ref) const {
  const ModelConfig &c = config_;
  const std::string where = checkpoint_->origin() + ": weight " +
                            canonicalWeightName(ref) + ": ";
  if (isGlobal(ref.kind)) {
    if (ref.layer != -1 || ref.expert != -1)
      return Status::error(where + "a model-global weight takes no layer or "
                                   "expert index");
  } else {
    if (ref.layer < 0 || ref.layer >= c.numHiddenLayers)
      return Status::error(where + "layer " + std::to_string(ref.layer) +
                           " is outside [0, " +
                           std::to_string(c.numHiddenLayers) + ")");
    if (isExpert(ref.kind) &&
        (ref.expert < 0 || ref.expert >= c.numLocalExperts))
      return Status::error(where + "expert " + std::to_string(ref.expert) +
                           " is outside [0, " +
                           std::to_string(c.numLocalExperts) + ")");
    if (!isExpert(ref.kind) && ref.expert != -1)
      return Status::error(where + "takes no expert index");
  }

  StoredSpec spec;
  spec.logicalShape = expectedShape(ref);
  spec.storedShape = spec.logicalShape;
  spec.matrix = spec.logicalShape.size() == 2;
  spec.name = canonicalWeightName(ref);
  if (ref.kind == WeightKind::LmHead && c.tieWordEmbeddings)
    spec.name = canonicalWeightName(WeightRef::global(WeightKind::Embed));

  const bool packed = expertLayout(ref.layer) == ExpertLayout::Packed;
  const std::string p = isGlobal(ref.kind) ? "" : layerPrefix(ref.layer);
  if (ref.kind == WeightKind::RouterGate ||
      ref.kind == WeightKind::RouterBias) {
    // transformers 5 renamed block_sparse_moe to mlp; look for the name that
    // matches the layer's expert layout first.
    const std::string leaf = ref.kind == WeightKind::RouterGate
                                 ? "gate.weight"
                                 : "e_score_correction_bias";
    std::string original = p + "block_sparse_moe." + leaf;
    std::string renamed = p + "mlp." + leaf;
    spec.name = packed ? renamed : original;
    spec.alternatives = {packed ? original : renamed};
  }
  if (isExpert(ref.kind) && packed) {
    const int64_t e = c.numLocalExperts, i = c.intermediateSize,
                  hd = c.hiddenSize;
    spec.matrixIndex = ref.expert;
    if (ref.kind == WeightKind::ExpertW2) {
      spec.name = p + "mlp.experts.down_proj";
      spec.storedShape = {e, hd, i};
    } else {
      spec.name = p + "mlp.experts.gate_up_proj";
      spec.storedShape = {e, 2 * i, hd};
      spec.rowOffset = ref.kind == WeightKind::ExpertW3 ? i : 0;
    }
  }
  return spec;
}

StatusOr<ResolvedWeight>
CheckpointBinding::resolveStored(const StoredSpec &spec,
                                 const WeightRef &ref) const {
  const Checkpoint &ckpt = *checkpoint_;
  std::string found;
  if (ckpt.has(spec.name)) {
    found = spec.name;
  } else {
    for (const std::string &alt : spec.alternatives)
      if (ckpt.has(alt)) {
        found = alt;
        break;
      }
  }
  if (found.empty()) {
    std::string also;
    for (const std::string &alt : spec.alternatives)
      also += (also.empty() ? " (also looked for '" : "', '") + alt;
    if (!also.empty())
      also += "')";
    return Status::error(ckpt.origin() + ": missing tensor '" + spec.name +
                         "'" + also);
  }
  StatusOr<TensorView> tensor = ckpt.get(found);
  if (!tensor)
    return tensor.status();
  const std::string file = ckpt.fileOf(found);
  auto fail = [&](const std::string &why) {
    return Status::error(file + ": " + found + ": " + why);
  };
  if (tensor->shape != spec.storedShape)
    return fail("expected shape " + formatShape(spec.storedShape) + ", got " +
                formatShape(tensor->shape));
  const DType dt = tensor->dtype;
  if (dt == DType::F8_E4M3 && !spec.matrix)
    return fail("dtype F8_E4M3 is not accepted for a vector weight "
                "(expected F32, F16 or BF16)");
  if (!isConvertibleToF32(dt))
    return fail(std::string("dtype ") + dtypeName(dt) +
                " is not accepted (expected F32, F16, BF16 or F8_E4M3)");

  ResolvedWeight rw;
  rw.ref = ref;
  rw.shape = spec.logicalShape;
  rw.tensor = tensor.take();
  rw.file = file;
  rw.matrixIndex = spec.matrixIndex;
  rw.rowOffset = spec.rowOffset;
  if (dt == DType::F8_E4M3) {
    const std::string scaleName = found + "_scale_inv";
    if (!ckpt.has(scaleName))
      return fail("F8_E4M3 weight has no scale tensor '" + scaleName + "'");
    StatusOr<TensorView> scale = ckpt.get(scaleName);
    if (!scale)
      return scale.status();
    M2C_RETURN_IF_ERROR(checkScaleInv(rw.tensor, *scale, block_)
                            .withContext(ckpt.fileOf(scaleName)));
    rw.scaleInv = scale.take();
  }
  return rw;
}

StatusOr<ResolvedWeight>
CheckpointBinding::resolve(const WeightRef &ref) const {
  StatusOr<StoredSpec> spec = storedSpec(ref);
  if (!spec)
    return spec.status();
  return resolveStored(*spec, ref);
}

Status CheckpointBinding::readWeightF32(const WeightRef &ref,
                                        float *dst) const {
  StatusOr<ResolvedWeight> rw = resolve(ref);
  if (!rw)
    return rw.status();
  const int64_t rows = rw->shape.size() == 2 ? rw->shape[0] : 1;
  return dequantizeRowsF32(rw->tensor, rw->scaleInv ? &*rw->scaleInv : nullptr,
                           block_, rw->matrixIndex, rw->rowOffset, rows, dst)
      .withContext(rw->file);
}

Status CheckpointBinding::readWeightF32(const WeightRef &ref,
                                        std::vector<float> &dst) const {
  StatusOr<StoredSpec> spec = storedSpec(ref);
  if (!spec)
    return spec.status();
  dst.assign(static_cast<size_t>(numElements(spec->logicalShape)), 0.0f);
  return readWeightF32(ref, dst.data());
}

Status CheckpointBinding::readWeightF32(const std::string &canonicalName,
                                        std::vector<float> &dst) const {
  StatusOr<WeightRef> ref = parseCanonicalWeightName(canonicalName);
  if (!ref)
    return ref.status().withContext(checkpoint_->origin());
  return readWeightF32(*ref, dst);
}

std::vector<CheckpointBinding::StoredSpec>
CheckpointBinding::allStoredSpecs() const {
  // Packed layers store each expert tensor once; check it once rather than
  // once per expert (which would also repeat its errors E times).
  std::vector<StoredSpec> specs;
  for (const WeightRef &ref : allWeights()) {
    if (isExpert(ref.kind) && expertLayout(ref.layer) == ExpertLayout::Packed &&
        (ref.expert != 0 || ref.kind == WeightKind::ExpertW3))
      continue;
    StatusOr<StoredSpec> spec = storedSpec(ref);
    if (!spec)
      continue; // unreachable: allWeights() yields in-range refs
    StoredSpec s = spec.take();
    if (isExpert(ref.kind) && expertLayout(ref.layer) == ExpertLayout::Packed)
      s.logicalShape = s.storedShape;
    specs.push_back(std::move(s));
  }
  return specs;
}

ValidationReport CheckpointBinding::validate() const {
  ValidationReport report;
  const Checkpoint &ckpt = *checkpoint_;
  std::set<std::string> used;
  for (const StoredSpec &spec : allStoredSpecs()) {
    ++report.tensorsChecked;
    for (const std::string &candidate : spec.alternatives)
      if (!ckpt.has(spec.name) && ckpt.has(candidate))
        used.insert(candidate);
    used.insert(spec.name);
    StatusOr<ResolvedWeight> rw = resolveStored(spec, WeightRef());
    if (!rw) {
      report.errors.push_back(rw.status().message());
      continue;
    }
    if (rw->scaleInv)
      used.insert(rw->scaleInv->name);
  }
  // A weight whose scale failed its checks still owns the scale tensor; do
  // not report it a second time as unexpected.
  for (const std::string &name : std::vector<std::string>(used.begin(),
                                                          used.end()))
    if (ckpt.has(name + "_scale_inv")) {
      StatusOr<TensorView> t = ckpt.get(name);
      if (t && t->dtype == DType::F8_E4M3)
        used.insert(name + "_scale_inv");
    }

  if (config_.tieWordEmbeddings && ckpt.has("lm_head.weight")) {
    used.insert("lm_head.weight");
    report.notes.push_back(ckpt.fileOf("lm_head.weight") +
                           ": lm_head.weight is ignored because "
                           "tie_word_embeddings is true");
  }
  size_t mtp = 0;
  std::string firstMtp;
  for (const std::string &name : ckpt.names()) {
    if (used.count(name))
      continue;
    if (name.find("mtp") != std::string::npos) {
      if (mtp++ == 0)
        firstMtp = name;
      continue;
    }
    report.unexpected.push_back(name);
  }
  if (mtp)
    report.notes.push_back(ckpt.origin() + ": ignored " + std::to_string(mtp) +
                           " MTP tensor(s) (e.g. '" + firstMtp +
                           "'): m2c does not run multi-token-prediction "
                           "modules");
  return report;
}

Status validateCheckpoint(const Checkpoint &checkpoint,
                          const ModelConfig &config,
                          ValidationReport *report) {
  StatusOr<CheckpointBinding> binding =
      CheckpointBinding::create(checkpoint, config);
  if (!binding)
    return binding.status();
  ValidationReport r = binding->validate();
  Status status = r.status();
  if (report)
    *report = std::move(r);
  return status;
}

} // namespace m2c
