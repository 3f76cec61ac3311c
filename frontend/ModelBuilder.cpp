//===- ModelBuilder.cpp - config.json -> model IR -------------------------===//

#include "frontend/ModelBuilder.h"
#include "frontend/LinearForm.h"

#include "dialects/attn/AttnOps.h"
#include "dialects/moe/MoeOps.h"
#include "dialects/norm/NormOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;

namespace m2c {
namespace {

constexpr int64_t kDynamic = ShapedType::kDynamic;

class ModelBuilder {
public:
  ModelBuilder(MLIRContext &context, const ModelConfig &config, const FrontendOptions &options)
      : context_(context), config_(config), options_(options), builder_(&context),
        loc_(NameLoc::get(StringAttr::get(&context, "model"))) {}

  OwningOpRef<ModuleOp> build(std::vector<std::string> &notes);

private:
  Type weightElementType();
  attn::KvCacheType kvCacheType();
  void declareWeight(const std::string &symbol, ArrayRef<int64_t> shape, Type elementType,
                     const std::string &checkpointName, bool quantizable);
  void declareWeights();
  Value loadWeight(const std::string &symbol);
  Value linear(Value input, const std::string &weightSymbol);
  Value rmsNorm(Value input, const std::string &weightSymbol);
  void buildEntry(StringRef name, bool lastTokenOnly);
  Value buildLayer(int64_t layer, Value x);

  std::string layerPrefix(int64_t layer) const {
    return "model.layers." + std::to_string(layer) + ".";
  }

  MLIRContext &context_;
  const ModelConfig &config_;
  const FrontendOptions &options_;
  OpBuilder builder_;
  Location loc_;
  llvm::StringMap<RankedTensorType> weightTypes_;

  // Values of the entry point being built.
  Value tokens_;
  Value positions_, tokenSeqs_, blockTables_, kvCache_;
};

Type ModelBuilder::weightElementType() {
  if (config_.torchDtype == "float32")
    return builder_.getF32Type();
  if (config_.torchDtype == "float16")
    return builder_.getF16Type();
  return builder_.getBF16Type();
}

attn::KvCacheType ModelBuilder::kvCacheType() {
  Type dtype;
  switch (options_.kvCacheType) {
  case plan::ElementType::F32:
    dtype = builder_.getF32Type();
    break;
  case plan::ElementType::F16:
    dtype = builder_.getF16Type();
    break;
  case plan::ElementType::BF16:
    dtype = builder_.getBF16Type();
    break;
  case plan::ElementType::I32:
    assert(false && "an i32 KV cache is rejected by plan::parseKvCacheType");
    dtype = builder_.getBF16Type();
    break;
  }
  return attn::KvCacheType::get(&context_, config_.numHiddenLayers, config_.numKeyValueHeads,
                                config_.headDim, options_.kvBlockSize, dtype);
}

void ModelBuilder::declareWeight(const std::string &symbol, ArrayRef<int64_t> shape,
                                 Type elementType, const std::string &checkpointName,
                                 bool quantizable) {
  auto type = RankedTensorType::get(shape, elementType);
  auto global = ml_program::GlobalOp::create(
      builder_, loc_, symbol, type, /*is_mutable=*/false,
      ml_program::ExternAttr::get(&context_, type), builder_.getStringAttr("private"));
  global->setAttr("m2c.checkpoint", builder_.getStringAttr(checkpointName));
  // The IR keeps the logical type; an FP8 checkpoint's storage is recorded
  // here and dequantized by the loader until the quantization passes take
  // the format over.
  if (quantizable && config_.quantization.appliesTo(checkpointName))
    global->setAttr("m2c.checkpoint_format", builder_.getStringAttr("fp8_e4m3_block128"));
  weightTypes_[symbol] = type;
}

void ModelBuilder::declareWeights() {
  const ModelConfig &c = config_;
  Type wt = weightElementType();
  Type f32 = builder_.getF32Type();
  auto plain = [&](const std::string &name, ArrayRef<int64_t> shape, Type type) {
    declareWeight(name, shape, type, name, /*quantizable=*/false);
  };
  auto linearWeight = [&](const std::string &name, ArrayRef<int64_t> shape) {
    declareWeight(name, shape, wt, name, /*quantizable=*/true);
  };
  plain("model.embed_tokens.weight", {c.vocabSize, c.hiddenSize}, wt);
  for (int64_t layer = 0; layer < c.numHiddenLayers; ++layer) {
    std::string p = layerPrefix(layer);
    plain(p + "input_layernorm.weight", {c.hiddenSize}, wt);
    linearWeight(p + "self_attn.q_proj.weight", {c.qSize(), c.hiddenSize});
    linearWeight(p + "self_attn.k_proj.weight", {c.kvSize(), c.hiddenSize});
    linearWeight(p + "self_attn.v_proj.weight", {c.kvSize(), c.hiddenSize});
    if (c.useQkNorm) {
      plain(p + "self_attn.q_norm.weight", {c.qSize()}, wt);
      plain(p + "self_attn.k_norm.weight", {c.kvSize()}, wt);
    }
    linearWeight(p + "self_attn.o_proj.weight", {c.hiddenSize, c.qSize()});
    plain(p + "post_attention_layernorm.weight", {c.hiddenSize}, wt);
    plain(p + "block_sparse_moe.gate.weight", {c.numLocalExperts, c.hiddenSize}, wt);
    if (c.useRoutingBias)
      plain(p + "block_sparse_moe.e_score_correction_bias", {c.numLocalExperts}, f32);
    // One stacked symbol per expert matrix; the binding names the
    // per-expert checkpoint tensors, {e} standing for the expert index.
    for (StringRef matrix : {"w1", "w3", "w2"}) {
      SmallVector<int64_t> shape =
          matrix == "w2"
              ? SmallVector<int64_t>{c.numLocalExperts, c.hiddenSize, c.intermediateSize}
              : SmallVector<int64_t>{c.numLocalExperts, c.intermediateSize, c.hiddenSize};
      declareWeight(p + "block_sparse_moe.experts." + matrix.str(), shape, wt,
                    p + "block_sparse_moe.experts.{e}." + matrix.str() + ".weight",
                    /*quantizable=*/true);
    }
  }
  plain("model.norm.weight", {c.hiddenSize}, wt);
  declareWeight("lm_head.weight", {c.vocabSize, c.hiddenSize}, wt,
                c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight",
                /*quantizable=*/true);
}

Value ModelBuilder::loadWeight(const std::string &symbol) {
  RankedTensorType type = weightTypes_.lookup(symbol);
  assert(type && "weight used before it was declared");
  return ml_program::GlobalLoadConstOp::create(builder_, loc_, type,
                                               FlatSymbolRefAttr::get(&context_, symbol));
}

Value ModelBuilder::linear(Value input, const std::string &weightSymbol) {
  // y[t, n] = sum_k x[t, k] * W[n, k]: a matmul reading B transposed, which
  // is the checkpoint's [out, in] layout, so weights are never copied.
  Value weight = loadWeight(weightSymbol);
  auto inputType = cast<RankedTensorType>(input.getType());
  int64_t outFeatures = cast<RankedTensorType>(weight.getType()).getDimSize(0);
  Type f32 = builder_.getF32Type();
  auto resultType = RankedTensorType::get({inputType.getDimSize(0), outFeatures}, f32);
  SmallVector<Value> dynamicSizes;
  if (resultType.isDynamicDim(0))
    dynamicSizes.push_back(tokens_);
  Value init = tensor::EmptyOp::create(builder_, loc_, resultType, dynamicSizes);
  Value zero = arith::ConstantOp::create(builder_, loc_, builder_.getF32FloatAttr(0.0f));
  Value filled = linalg::FillOp::create(builder_, loc_, zero, init).getResult(0);

  auto maps = builder_.getAffineMapArrayAttr(linearIndexingMaps(&context_));
  auto matmul = linalg::MatmulOp::create(builder_, loc_, TypeRange{resultType},
                                         ValueRange{input, weight}, ValueRange{filled});
  matmul.setIndexingMapsAttr(maps);
  return matmul.getResult(0);
}

Value ModelBuilder::rmsNorm(Value input, const std::string &weightSymbol) {
  Value weight = loadWeight(weightSymbol);
  return norm::RmsOp::create(builder_, loc_, input.getType(), input, weight,
                             builder_.getF64FloatAttr(config_.rmsNormEps));
}

Value ModelBuilder::buildLayer(int64_t layer, Value x) {
  const ModelConfig &c = config_;
  std::string p = layerPrefix(layer);
  Location layerLoc = NameLoc::get(builder_.getStringAttr("layer" + std::to_string(layer)));
  Location savedLoc = loc_;
  loc_ = layerLoc;

  Value h = rmsNorm(x, p + "input_layernorm.weight");
  Value q = linear(h, p + "self_attn.q_proj.weight");
  Value k = linear(h, p + "self_attn.k_proj.weight");
  Value v = linear(h, p + "self_attn.v_proj.weight");
  if (c.useQkNorm) {
    // per_layer QK-norm: one RMS over all heads, before the head split.
    q = rmsNorm(q, p + "self_attn.q_norm.weight");
    k = rmsNorm(k, p + "self_attn.k_norm.weight");
  }
  Value attended = attn::GqaOp::create(
      builder_, loc_, q.getType(), q, k, v, positions_, tokenSeqs_, kvCache_, blockTables_,
      /*q_norm=*/Value(), /*k_norm=*/Value(), builder_.getI64IntegerAttr(layer), builder_.getI64IntegerAttr(c.numAttentionHeads),
      builder_.getI64IntegerAttr(c.numKeyValueHeads), builder_.getI64IntegerAttr(c.headDim),
      builder_.getI64IntegerAttr(c.rotaryDim), builder_.getF64FloatAttr(c.ropeTheta),
      builder_.getBoolAttr(true), /*qk_norm_eps=*/FloatAttr());
  Value projected = linear(attended, p + "self_attn.o_proj.weight");
  Value afterAttention = arith::AddFOp::create(builder_, loc_, x, projected);

  Value h2 = rmsNorm(afterAttention, p + "post_attention_layernorm.weight");
  Value gate = loadWeight(p + "block_sparse_moe.gate.weight");
  Value bias;
  if (c.useRoutingBias)
    bias = loadWeight(p + "block_sparse_moe.e_score_correction_bias");
  auto routeType = [&](Type element) {
    return RankedTensorType::get({kDynamic, c.numExpertsPerTok}, element);
  };
  auto scoring = moe::ScoringFuncAttr::get(
      &context_, c.scoringFunc == "softmax" ? moe::ScoringFunc::softmax
                                            : moe::ScoringFunc::sigmoid);
  // MiniMax-M2 always renormalises the chosen weights (sigmoid scores do
  // not sum to one).
  auto route = moe::RouteOp::create(
      builder_, loc_, routeType(builder_.getI32Type()), routeType(builder_.getF32Type()), h2,
      gate, bias, scoring, builder_.getI64IntegerAttr(c.numExpertsPerTok),
      builder_.getI64IntegerAttr(c.numLocalExperts), builder_.getBoolAttr(true));
  Value experts = moe::ExpertsOp::create(
      builder_, loc_, h2.getType(), h2, route.getExpertIds(), route.getExpertWeights(),
      loadWeight(p + "block_sparse_moe.experts.w1"), loadWeight(p + "block_sparse_moe.experts.w3"),
      loadWeight(p + "block_sparse_moe.experts.w2"), /*residual=*/Value());
  Value out = arith::AddFOp::create(builder_, loc_, afterAttention, experts);
  loc_ = savedLoc;
  return out;
}

void ModelBuilder::buildEntry(StringRef name, bool lastTokenOnly) {
  const ModelConfig &c = config_;
  Type i32 = builder_.getI32Type();
  auto idsType = RankedTensorType::get({kDynamic}, i32);
  auto tablesType = RankedTensorType::get({kDynamic, kDynamic}, i32);
  auto logitsType = RankedTensorType::get({lastTokenOnly ? 1 : kDynamic, c.vocabSize},
                                          builder_.getF32Type());
  auto funcType = builder_.getFunctionType(
      {idsType, idsType, idsType, tablesType, kvCacheType()}, {logitsType});
  auto func = func::FuncOp::create(builder_, loc_, name, funcType);
  func->setAttr("m2c.entry", builder_.getStringAttr(name));
  static constexpr const char *kArgNames[] = {"token_ids", "positions", "token_seqs",
                                              "block_tables", "kv_cache"};
  for (unsigned i = 0; i < 5; ++i)
    func.setArgAttr(i, "m2c.name", builder_.getStringAttr(kArgNames[i]));

  OpBuilder::InsertionGuard guard(builder_);
  Block *body = func.addEntryBlock();
  builder_.setInsertionPointToStart(body);
  Value tokenIds = body->getArgument(0);
  positions_ = body->getArgument(1);
  tokenSeqs_ = body->getArgument(2);
  blockTables_ = body->getArgument(3);
  kvCache_ = body->getArgument(4);
  Value c0 = arith::ConstantIndexOp::create(builder_, loc_, 0);
  tokens_ = tensor::DimOp::create(builder_, loc_, tokenIds, c0);

  // Embedding: gather rows, then widen to the fp32 residual stream.
  Value table = loadWeight("model.embed_tokens.weight");
  auto columnType = RankedTensorType::get({kDynamic, 1}, i32);
  Value ids2d = tensor::ExpandShapeOp::create(
      builder_, loc_, columnType, tokenIds, ArrayRef<ReassociationIndices>{{0, 1}},
      ArrayRef<OpFoldResult>{tokens_, builder_.getIndexAttr(1)});
  auto rowsType = RankedTensorType::get({kDynamic, c.hiddenSize}, weightElementType());
  Value rows = tensor::GatherOp::create(builder_, loc_, rowsType, table, ids2d,
                                        ArrayRef<int64_t>{0});
  auto hiddenType = RankedTensorType::get({kDynamic, c.hiddenSize}, builder_.getF32Type());
  Value x = rows;
  if (weightElementType() != builder_.getF32Type())
    x = arith::ExtFOp::create(builder_, loc_, hiddenType, rows);

  for (int64_t layer = 0; layer < c.numHiddenLayers; ++layer)
    x = buildLayer(layer, x);

  if (lastTokenOnly) {
    // Prefill only needs the logits of the chunk's last token.
    Value c1 = arith::ConstantIndexOp::create(builder_, loc_, 1);
    Value last = arith::SubIOp::create(builder_, loc_, tokens_, c1);
    auto lastType = RankedTensorType::get({1, c.hiddenSize}, builder_.getF32Type());
    x = tensor::ExtractSliceOp::create(
        builder_, loc_, lastType, x, ArrayRef<OpFoldResult>{last, builder_.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{builder_.getIndexAttr(1), builder_.getIndexAttr(c.hiddenSize)},
        ArrayRef<OpFoldResult>{builder_.getIndexAttr(1), builder_.getIndexAttr(1)});
  }
  Value normed = rmsNorm(x, "model.norm.weight");
  Value logits = linear(normed, "lm_head.weight");
  func::ReturnOp::create(builder_, loc_, logits);
}

OwningOpRef<ModuleOp> ModelBuilder::build(std::vector<std::string> &notes) {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc_);
  const ModelConfig &c = config_;
  module->getOperation()->setAttr("m2c.model_type", builder_.getStringAttr(c.modelType));
  module->getOperation()->setAttr("m2c.vocab_size", builder_.getI64IntegerAttr(c.vocabSize));
  if (c.quantization.isFp8()) {
    // The checkpoint's exclusions bind every later quantization decision.
    SmallVector<Attribute> keep;
    for (const std::string &name : c.quantization.modulesToNotConvert)
      keep.push_back(builder_.getStringAttr(name));
    module->getOperation()->setAttr("m2c.modules_to_not_convert", builder_.getArrayAttr(keep));
  }
  builder_.setInsertionPointToStart(module->getBody());
  declareWeights();
  buildEntry("prefill", /*lastTokenOnly=*/true);
  buildEntry("decode", /*lastTokenOnly=*/false);
  if (c.useMtp || c.numMtpModules > 0)
    notes.push_back("config declares " + std::to_string(c.numMtpModules) +
                    " MTP module(s) (use_mtp); no MTP weights are compiled, so the model is "
                    "built without multi-token prediction");
  if (c.quantization.isFp8())
    notes.push_back("checkpoint is FP8 block-" + std::to_string(c.quantization.blockRows) +
                    "; its weights are dequantized when loaded");
  return module;
}

} // namespace

void loadFrontendDialects(MLIRContext &context) {
  context.loadDialect<arith::ArithDialect, func::FuncDialect, linalg::LinalgDialect,
                      ml_program::MLProgramDialect, tensor::TensorDialect, attn::AttnDialect,
                      moe::MoeDialect, norm::NormDialect>();
}

OwningOpRef<ModuleOp> buildModelModule(MLIRContext &context, const ModelConfig &config,
                                       const FrontendOptions &options,
                                       std::vector<std::string> &notes) {
  loadFrontendDialects(context);
  ModelBuilder builder(context, config, options);
  OwningOpRef<ModuleOp> module = builder.build(notes);
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace m2c
