//===- ByteLevel.cpp - GPT-2's bytes-to-printable-characters map ----------===//

#include "runtime/tokenizer/ByteLevel.h"

#include "runtime/tokenizer/Unicode.h"

#include <array>

namespace m2c::tokenizer::bytelevel {

namespace {

struct Tables {
  std::array<std::string, 256> spelling;
  std::array<char32_t, 256> codePoint;
  Tables() {
    // Printable Latin-1 bytes stand for themselves; the rest map, in byte
    // order, to U+0100 onwards (bytes_to_unicode in GPT-2's encoder.py).
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      codePoint[b] = printable ? static_cast<char32_t>(b) : next++;
      unicode::appendUtf8(spelling[b], codePoint[b]);
    }
  }
};

const Tables &tables() {
  static const Tables t;
  return t;
}

} // namespace

const std::string &charForByte(uint8_t b) { return tables().spelling[b]; }

int byteForChar(char32_t cp) {
  if (cp >= 0x100 + 68) // 68 code points are remapped above U+00FF
    return -1;
  static const std::array<int16_t, 0x100 + 68> reverse = [] {
    std::array<int16_t, 0x100 + 68> r;
    r.fill(-1);
    for (int b = 0; b < 256; ++b)
      r[tables().codePoint[b]] = static_cast<int16_t>(b);
    return r;
  }();
  return reverse[cp];
}

void appendSpelled(std::string_view bytes, std::string &out) {
  const Tables &t = tables();
  for (char c : bytes)
    out += t.spelling[static_cast<uint8_t>(c)];
}

const char *gpt2Pattern() {
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
}

} // namespace m2c::tokenizer::bytelevel
