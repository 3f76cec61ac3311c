//===- ByteLevel.h - GPT-2's bytes-to-printable-characters map ---*- C++ -*-===//
//
// Byte-level BPE vocabularies spell every byte as a printable character
// (space is 'Ġ', newline 'Ċ', ...). This is that bijection, as UTF-8
// strings per byte and a reverse lookup per code point.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_BYTELEVEL_H
#define M2C_RUNTIME_TOKENIZER_BYTELEVEL_H

#include <cstdint>
#include <string>
#include <string_view>

namespace m2c::tokenizer::bytelevel {

/// The UTF-8 spelling of byte b (one or two bytes long).
const std::string &charForByte(uint8_t b);
/// The byte a code point spells, or -1 when it is not in the alphabet.
int byteForChar(char32_t cp);
/// Appends the spelling of every byte of `bytes` to `out`.
void appendSpelled(std::string_view bytes, std::string &out);
/// The GPT-2 split pattern ByteLevel uses when use_regex is true.
const char *gpt2Pattern();

} // namespace m2c::tokenizer::bytelevel

#endif // M2C_RUNTIME_TOKENIZER_BYTELEVEL_H
