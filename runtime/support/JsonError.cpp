//===- JsonError.cpp - nlohmann's parse-error text, without exceptions ----===//

#include "runtime/support/JsonError.h"

#include <nlohmann/json.hpp>

namespace m2c {

namespace {

using json = nlohmann::json;

/// Accepts every event and keeps the first parse error's text.
struct ParseErrorRecorder {
  std::string message;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string &) { return true; }
  bool string(std::string &) { return true; }
  bool binary(json::binary_t &) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(std::string &) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &ex) {
    message = ex.what();
    return false;
  }
};

} // namespace

std::string jsonParseErrorText(std::string_view text) {
  ParseErrorRecorder recorder;
  json::sax_parse(text, &recorder);
  std::string msg = recorder.message;
  size_t tagEnd = msg.find("] ");
  if (msg.rfind("[json.exception", 0) == 0 && tagEnd != std::string::npos)
    msg = msg.substr(tagEnd + 2);
  return msg;
}

} // namespace m2c
