//===- Quantization.cpp - Names and layouts of the quantization formats ---===//

#include "runtime/plan/Quantization.h"

#include <cassert>

namespace m2c::plan {

const std::array<QuantFormat, 3> &quantFormats() {
  static const std::array<QuantFormat, 3> formats = {{
#define M2C_QUANT_FORMAT(Id, name, option, bits, floatCodes, groupRows, groupCols, qmax)      \
  {Quantization::Id, name, option, bits, floatCodes, groupRows, groupCols, qmax},
#include "runtime/plan/QuantFormats.def"
  }};
  return formats;
}

const QuantFormat &quantFormat(Quantization q) {
  assert(q != Quantization::None && "None has no packed format");
  return quantFormats()[static_cast<size_t>(q) - 1];
}

const char *quantizationName(Quantization q) {
  return q == Quantization::None ? "none" : quantFormat(q).name;
}

StatusOr<Quantization> parseQuantization(const std::string &name) {
  if (name == "none")
    return Quantization::None;
  std::string names = "none";
  for (const QuantFormat &format : quantFormats()) {
    if (name == format.name)
      return format.id;
    names += std::string(", ") + format.name;
  }
  return Status::error("unknown quantization '" + name + "' (expected " + names + ")");
}

StatusOr<Quantization> parseQuantizationOption(const std::string &option) {
  if (option == "none")
    return Quantization::None;
  for (const QuantFormat &format : quantFormats())
    if (option == format.option)
      return format.id;
  return Status::error("unknown format '" + option + "' (expected " + quantizationOptions() + ")");
}

std::string quantizationOptions() {
  std::string options = "none";
  for (const QuantFormat &format : quantFormats())
    options += std::string(", ") + format.option;
  return options;
}

PackedMatrix packedMatrix(Quantization q, int64_t rows, int64_t cols) {
  if (q == Quantization::None)
    return {};
  const QuantFormat &f = quantFormat(q);
  return {static_cast<uint64_t>(rows) * static_cast<uint64_t>(f.rowCodeBytes(cols)),
          4 * static_cast<uint64_t>(f.scaleRows(rows)) * static_cast<uint64_t>(f.scaleCols(cols))};
}

} // namespace m2c::plan
