//===- AttnDialect.cpp - attn dialect registration and verifiers ----------===//

#include "dialects/attn/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace m2c::attn;

#include "dialects/attn/AttnDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/attn/AttnTypes.cpp.inc"

void AttnDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/attn/AttnTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/attn/AttnOps.cpp.inc"
      >();
}

LogicalResult KvCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t layers, int64_t kvHeads, int64_t headDim,
                                  int64_t blockSize, Type dtype) {
  if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || blockSize <= 0)
    return emitError() << "expects positive layers, kv_heads, head_dim and block_size, got "
                       << layers << ", " << kvHeads << ", " << headDim << ", " << blockSize;
  if (!isa<FloatType>(dtype))
    return emitError() << "expects a float dtype, got " << dtype;
  return success();
}

namespace {
/// Static size of dim `i`, or -1 when dynamic; keeps shape checks short.
int64_t dimOrDynamic(RankedTensorType type, int64_t i) {
  int64_t size = type.getDimSize(i);
  return ShapedType::isDynamic(size) ? -1 : size;
}

bool conflicts(int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; }
} // namespace

LogicalResult GqaOp::verify() {
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(), headDim = getHeadDim();
  int64_t rotary = getRotaryDim();
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0)
    return emitOpError("expects positive num_heads, num_kv_heads and head_dim, got ")
           << heads << ", " << kvHeads << ", " << headDim;
  if (heads % kvHeads != 0)
    return emitOpError("expects num_heads (")
           << heads << ") to be a multiple of num_kv_heads (" << kvHeads << ")";
  if (rotary < 0 || rotary % 2 != 0)
    return emitOpError("expects rotary_dim (") << rotary << ") to be even and non-negative";
  if (rotary > headDim)
    return emitOpError("expects rotary_dim (")
           << rotary << ") to be at most head_dim (" << headDim << ")";
  if (!(getRopeTheta().convertToDouble() > 0.0))
    return emitOpError("expects a positive rope_theta, got ") << getRopeTheta().convertToDouble();

  auto checkRows = [&](RankedTensorType type, StringRef name,
                       int64_t width) -> LogicalResult {
    if (type.getRank() != 2)
      return emitOpError("expects ") << name << " of rank 2 [tokens, heads * head_dim], got "
                                     << type;
    if (conflicts(dimOrDynamic(type, 1), width))
      return emitOpError("expects ")
             << name << " to have " << width << " columns, got " << type.getDimSize(1);
    return success();
  };
  RankedTensorType qType = getQueries().getType();
  RankedTensorType kType = getKeys().getType();
  RankedTensorType vType = getValues().getType();
  if (failed(checkRows(qType, "queries", heads * headDim)) ||
      failed(checkRows(kType, "keys", kvHeads * headDim)) ||
      failed(checkRows(vType, "values", kvHeads * headDim)))
    return failure();

  RankedTensorType posType = getPositions().getType();
  RankedTensorType seqType = getTokenSeqs().getType();
  if (posType.getRank() != 1 || seqType.getRank() != 1)
    return emitOpError("expects rank-1 positions and seqs, got ")
           << posType << " and " << seqType;
  int64_t tokens = dimOrDynamic(qType, 0);
  for (RankedTensorType type : {kType, vType}) {
    if (conflicts(dimOrDynamic(type, 0), tokens))
      return emitOpError("expects queries, keys and values to have the same number of "
                         "tokens, got ")
             << qType.getDimSize(0) << " and " << type.getDimSize(0);
  }
  for (RankedTensorType type : {posType, seqType}) {
    if (conflicts(dimOrDynamic(type, 0), tokens))
      return emitOpError("expects one position and one seq per token (")
             << qType.getDimSize(0) << "), got " << type.getDimSize(0);
  }
  if (getBlockTables().getType().getRank() != 2)
    return emitOpError("expects block_tables of rank 2 [seqs, blocks], got ")
           << getBlockTables().getType();

  KvCacheType cache = getCache().getType();
  if (cache.getKvHeads() != kvHeads || cache.getHeadDim() != headDim)
    return emitOpError("expects the cache's kv_heads x head_dim (")
           << cache.getKvHeads() << " x " << cache.getHeadDim()
           << ") to match num_kv_heads x head_dim (" << kvHeads << " x " << headDim << ")";
  if (getLayer() < 0 || getLayer() >= cache.getLayers())
    return emitOpError("expects layer (")
           << getLayer() << ") to index one of the cache's " << cache.getLayers() << " layers";
  if (getResult().getType() != qType)
    return emitOpError("expects the result type ")
           << getResult().getType() << " to equal the queries type " << qType;
  if (static_cast<bool>(getQNorm()) != static_cast<bool>(getKNorm()) ||
      static_cast<bool>(getQNorm()) != getQkNormEps().has_value())
    return emitOpError("expects q_norm, k_norm and qk_norm_eps together or not at all");
  if (Value qNorm = getQNorm()) {
    auto qw = cast<RankedTensorType>(qNorm.getType());
    auto kw = cast<RankedTensorType>(getKNorm().getType());
    if (qw.getRank() != 1 || conflicts(dimOrDynamic(qw, 0), heads * headDim) ||
        kw.getRank() != 1 || conflicts(dimOrDynamic(kw, 0), kvHeads * headDim))
      return emitOpError("expects QK-norm weights of shapes [")
             << heads * headDim << "] and [" << kvHeads * headDim << "], got " << qw << " and "
             << kw;
    if (!(getQkNormEps()->convertToDouble() > 0.0))
      return emitOpError("expects a positive qk_norm_eps");
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/attn/AttnOps.cpp.inc"
