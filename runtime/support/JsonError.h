//===- JsonError.h - nlohmann's parse-error text, without exceptions ------===//
//
// json::parse with allow_exceptions=false only says "discarded", which is
// not a diagnostic a user can act on; this re-reads the text with a SAX
// handler that keeps the parser's message.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SUPPORT_JSONERROR_H
#define M2C_RUNTIME_SUPPORT_JSONERROR_H

#include <string>
#include <string_view>

namespace m2c {

/// Why `text` is not valid JSON, e.g. "syntax error while parsing object
/// key - invalid literal; last read: '{x'; expected string literal", without
/// nlohmann's "[json.exception.parse_error.101] " tag; "" if it is valid.
std::string jsonParseErrorText(std::string_view text);

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_JSONERROR_H
