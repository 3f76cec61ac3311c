//===- SafeTensorsFuzzer.cpp - libFuzzer target for the safetensors parser ===//
//
// Feeds arbitrary bytes to parseSafeTensorsHeader as a whole file, then
// converts every accepted tensor to f32, so ASan sees any read the header
// checks failed to bound. Built with -fno-exceptions: a would-be throw
// inside nlohmann::json aborts and counts as a crash.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Dequantize.h"
#include "runtime/checkpoint/SafeTensors.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

using namespace m2c;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  StatusOr<SafeTensorsHeader> header =
      parseSafeTensorsHeader(data, size, "fuzz");
  if (!header) {
    // Every error must name its origin.
    if (header.status().message().rfind("fuzz: ", 0) != 0)
      std::abort();
    return 0;
  }
  std::vector<float> buffer;
  for (const SafeTensorsEntry &e : header->entries) {
    if (e.begin > e.end || header->dataOffset + e.end > size)
      std::abort(); // the parser promised in-bounds ranges
    TensorView view;
    view.name = e.name;
    view.dtype = e.dtype;
    view.shape = e.shape;
    view.data = data + header->dataOffset + e.begin;
    view.byteSize = static_cast<size_t>(e.end - e.begin);
    if (!isConvertibleToF32(view.dtype) || view.numElements() > (1 << 16))
      continue;
    buffer.resize(static_cast<size_t>(view.numElements()));
    Status st = dequantizeF32(view, nullptr, BlockSize{}, buffer.data());
    if (!st.isOk())
      std::abort(); // a validated, convertible tensor must convert
  }
  return 0;
}
