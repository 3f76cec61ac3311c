//===- KernelSpec.cpp - Signatures and helpers shared by the families -----===//

#include "codegen/ptx/Families.h"
#include "codegen/ptx/KernelSpec.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace m2c::ptx {

const char *shortTypeName(plan::ElementType type) { return plan::elementTypeName(type); }

int64_t byteSize(plan::ElementType type) { return plan::elementSize(type); }

std::string TensorInfo::str() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  switch (kind) {
  case plan::Operand::Kind::Input:
    os << "in:" << plan::entryInputName(input);
    return s;
  case plan::Operand::Kind::Buffer:
    os << "b:";
    break;
  case plan::Operand::Kind::Weight:
    os << "w:";
    break;
  }
  os << shortTypeName(type);
  if (quantization != plan::Quantization::None)
    os << "/" << plan::quantizationName(quantization);
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      os << ",";
    if (i == 0 && tokenRows)
      os << "T<=";
    os << shape[i];
  }
  os << "]";
  return s;
}

namespace {
/// The shortest decimal form that reads back as the same double.
std::string formatDouble(double value) {
  for (int digits = 6; digits < 17; ++digits) {
    std::string s = llvm::formatv("{0}", llvm::format("%.*g", digits, value)).str();
    if (std::strtod(s.c_str(), nullptr) == value)
      return s;
  }
  return llvm::formatv("{0}", llvm::format("%.17g", value)).str();
}
} // namespace

std::string KernelSpec::key() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << plan::kernelKindName(kind);
  if (kind == plan::KernelKind::Linear)
    os << (linear == LinearVariant::Gemv  ? "/gemv"
           : linear == LinearVariant::Mma ? "/mma"
                                          : "/wgmma");
  if (kind == plan::KernelKind::Attention)
    os << (decode ? "/decode" : "/prefill");
  if (kind == plan::KernelKind::MoeExperts)
    os << (moeGrouped ? "/grouped" : "/gemv");
  os << "(";
  for (size_t i = 0; i < inputs.size(); ++i)
    os << (i ? "," : "") << inputs[i].str();
  os << ")->(";
  for (size_t i = 0; i < outputs.size(); ++i)
    os << (i ? "," : "") << outputs[i].str();
  os << ")";
  if (!attrs.empty()) {
    os << "{";
    bool first = true;
    for (const auto &[key, value] : attrs) {
      os << (first ? "" : ",") << key << "=" << formatDouble(value);
      first = false;
    }
    os << "}";
  }
  if (kind == plan::KernelKind::Attention)
    os << " kv=" << shortTypeName(kvCache.type) << "[bs=" << kvCache.blockSize
       << ",kvh=" << kvCache.kvHeads << ",d=" << kvCache.headDim << "]";
  return s;
}

int64_t vectorWidth(int64_t n, int64_t elementBytes, int64_t maxBytes) {
  int64_t width = 1;
  while ((width * 2) * elementBytes <= maxBytes && n % (width * 2) == 0)
    width *= 2;
  return width;
}

Value rowCount(KernelBuilder &kb, const TensorInfo &tensor, Value numTokens) {
  if (tensor.tokenRows)
    return kb.toIndex(numTokens);
  return kb.idx(tensor.shape[0]);
}

LogicalResult unsupported(KernelBuilder &kb, const llvm::Twine &message) {
  return emitError(kb.b.getLoc()) << message;
}

} // namespace m2c::ptx
