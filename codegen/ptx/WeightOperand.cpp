//===- WeightOperand.cpp - Reading a weight matrix, packed or not ---------===//

#include "codegen/ptx/WeightOperand.h"

#include "codegen/ptx/Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace m2c::ptx {

using plan::Quantization;

WeightOperand::WeightOperand(const TensorInfo &info) : info_(info) {}

std::string WeightOperand::unsupportedReason() const {
  if (info_.shape.size() != 2 && info_.shape.size() != 3)
    return "a weight matrix must be [N, K] or [E, N, K]";
  if (packed() && cols() % chunkElements() != 0)
    return std::string("a ") + plan::quantizationName(info_.quantization) +
           " weight's rows must hold whole 16-byte chunks (" + std::to_string(chunkElements()) +
           " columns); it has " + std::to_string(cols());
  return "";
}

std::string WeightOperand::typeName() const {
  return packed() ? plan::quantFormat(info_.quantization).option : shortTypeName(info_.type);
}

int64_t WeightOperand::chunkElements() const {
  if (packed())
    return 16 * 8 / plan::quantFormat(info_.quantization).codeBits;
  return vectorWidth(cols(), byteSize(info_.type));
}

int64_t WeightOperand::loadBytes() const { return packed() ? 1 : byteSize(info_.type); }

int64_t WeightOperand::experts() const {
  return info_.shape.size() == 3 ? info_.shape[0] : 1;
}

int64_t WeightOperand::rowBytes() const {
  return packed() ? plan::quantFormat(info_.quantization).rowCodeBytes(cols()) : cols();
}

int64_t WeightOperand::dataBytes() const {
  if (!packed())
    return matrixBytes();
  return static_cast<int64_t>(plan::packedMatrix(info_.quantization, rows(), cols()).codeBytes);
}

int64_t WeightOperand::matrixBytes() const {
  if (!packed())
    return rows() * cols() * byteSize(info_.type);
  return static_cast<int64_t>(plan::packedMatrix(info_.quantization, rows(), cols()).bytes());
}

int64_t WeightOperand::chunkAlign() const {
  int64_t align = 16;
  auto fit = [&](int64_t stride) {
    while (stride % align)
      align /= 2;
  };
  fit(rowBytes());
  if (experts() > 1)
    fit(matrixBytes());
  return align;
}

void WeightOperand::appendParams(KernelBuilder &kb, SmallVectorImpl<FuncParam> &params,
                                 int64_t index) const {
  if (!packed()) {
    params.push_back(inputParam(kb, info_, index));
    return;
  }
  const int64_t total = experts() * matrixBytes();
  params.push_back({MemRefType::get({total}, kb.b.getI8Type()), {plan::GpuParam::Kind::Input, index}});
  params.push_back({MemRefType::get({total / 4}, kb.f32()), {plan::GpuParam::Kind::Input, index}});
}

void WeightOperand::bind(ValueRange args) {
  if (packed()) {
    bytes_ = args[0];
    scales_ = args[1];
  } else {
    matrix_ = args[0];
  }
}

WeightOperand::Chunk WeightOperand::loadChunk(KernelBuilder &kb, Value expert, Value row,
                                              Value k, bool withScale) const {
  const int64_t n = chunkElements();
  if (!packed()) {
    SmallVector<Value> indices;
    if (expert)
      indices.push_back(expert);
    indices.append({row, k});
    return {kb.load(matrix_, indices, n), Value()};
  }
  Value column = packed() && plan::quantFormat(info_.quantization).codeBits == 4 ? kb.divu(k, 2) : k;
  Value offset = kb.add(matrixBase(kb, expert), kb.add(kb.mul(row, rowBytes()), column));
  Chunk chunk;
  chunk.data = kb.load(bytes_, {offset}, 16, chunkAlign());
  if (withScale)
    chunk.scale = loadScale(kb, expert, row, k);
  return chunk;
}

Value WeightOperand::matrixBase(KernelBuilder &kb, Value expert) const {
  return expert ? kb.mul(expert, matrixBytes()) : kb.idx(0);
}

Value WeightOperand::loadScale(KernelBuilder &kb, Value expert, Value row, Value k) const {
  // Scales follow each matrix's codes; all offsets here are multiples of 4.
  // (row / groupRows) * scaleCols + k / groupCols, the terms a format
  // does not need left out.
  const plan::QuantFormat &format = plan::quantFormat(info_.quantization);
  Value scaleIndex = format.groupRows == 1 ? row : kb.divu(row, format.groupRows);
  if (format.groupCols)
    scaleIndex = kb.add(kb.mul(scaleIndex, format.scaleCols(cols())),
                        kb.divu(k, format.groupCols));
  Value scalesBase = kb.add(kb.divu(matrixBase(kb, expert), 4), kb.idx(dataBytes() / 4));
  return kb.loadScalar(scales_, {kb.add(scalesBase, scaleIndex)});
}

Value WeightOperand::dequantize(KernelBuilder &kb, const Chunk &chunk) const {
  if (!packed())
    return kb.toF32(chunk.data);
  ImplicitLocOpBuilder &b = kb.b;
  VectorType wordType = kb.vec(4, kb.i32()), floatType = kb.vec(4, kb.f32());
  auto splatI32 = [&](uint32_t v) -> Value {
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(wordType, b.getI32IntegerAttr(static_cast<int32_t>(v))));
  };
  auto splatF32 = [&](float v) -> Value {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(floatType, b.getF32FloatAttr(v)));
  };
  Value words = vector::BitCastOp::create(b, wordType, chunk.data);
  auto field = [&](int64_t shift, uint32_t mask) -> Value {
    Value shifted = shift ? arith::ShRUIOp::create(b, words, splatI32(shift)).getResult() : words;
    return arith::AndIOp::create(b, shifted, splatI32(mask));
  };
  auto asFloat = [&](Value bits) -> Value {
    return vector::BitCastOp::create(b, floatType, bits);
  };

  // fields[j][i] is element i * perWord + j.
  SmallVector<Value> fields;
  int64_t perWord = 4;
  switch (info_.quantization) {
  case Quantization::Int8:
    for (int64_t j = 0; j < 4; ++j) {
      Value biased = arith::XOrIOp::create(b, field(8 * j, 0xFF), splatI32(0x4B000080u));
      fields.push_back(kb.subf(asFloat(biased), splatF32(8388608.0f + 128.0f)));
    }
    break;
  case Quantization::Int4G128:
    perWord = 8;
    for (int64_t j = 0; j < 8; ++j) {
      Value biased = arith::XOrIOp::create(b, field(4 * j, 0xF), splatI32(0x4B000008u));
      fields.push_back(kb.subf(asFloat(biased), splatF32(8388608.0f + 8.0f)));
    }
    break;
  case Quantization::Fp8Block128:
    for (int64_t j = 0; j < 4; ++j) {
      Value magnitude = arith::ShLIOp::create(b, field(8 * j, 0x7F), splatI32(20));
      Value sign = arith::ShLIOp::create(b, field(8 * j, 0x80), splatI32(24));
      Value bits = arith::OrIOp::create(b, magnitude, sign);
      fields.push_back(kb.mulf(asFloat(bits), splatF32(0x1p120f)));
    }
    break;
  case Quantization::None:
    break;
  }
  Value all = fields[0];
  for (size_t j = 1; j < fields.size(); ++j) {
    SmallVector<int64_t> concat;
    for (int64_t i = 0; i < 4 * static_cast<int64_t>(j + 1); ++i)
      concat.push_back(i);
    all = vector::ShuffleOp::create(b, all, fields[j], concat);
  }
  SmallVector<int64_t> order;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < perWord; ++j)
      order.push_back(4 * j + i);
  Value values = vector::ShuffleOp::create(b, all, all, order);
  if (!chunk.scale)
    return values;
  return kb.mulf(values, kb.splat(chunk.scale, 4 * perWord));
}

Value WeightOperand::rowScale(KernelBuilder &kb, Value expert, Value row) const {
  assert(scalesInEpilogue() && "only int8 rows have one scale");
  return loadScale(kb, expert, row, kb.idx(0));
}

} // namespace m2c::ptx
