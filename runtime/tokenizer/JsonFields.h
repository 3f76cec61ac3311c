//===- JsonFields.h - Checked reads of tokenizer.json fields ----*- C++ -*-===//
//
// nlohmann::json throws on a wrong-typed get<>(); these helpers check the
// type first and turn every surprise into a Status naming the JSON path, so
// a malformed tokenizer.json is an error message, never an exception.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_TOKENIZER_JSONFIELDS_H
#define M2C_RUNTIME_TOKENIZER_JSONFIELDS_H

#include "runtime/support/Status.h"

#include <nlohmann/json.hpp>

#include <string>

namespace m2c::tokenizer::jsonfields {

using json = nlohmann::json;

/// The member `key` of object `obj`, or nullptr when absent or null.
inline const json *member(const json &obj, const char *key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return nullptr;
  return &*it;
}

inline const char *typeName(const json &value) { return value.type_name(); }

inline Status readString(const json &obj, const char *key, const std::string &path,
                         std::string &out, bool required) {
  const json *v = member(obj, key);
  if (!v)
    return required ? Status::error(path + "." + key + " is missing") : Status::ok();
  if (!v->is_string())
    return Status::error(path + "." + key + " must be a string, got " + typeName(*v));
  out = v->get_ref<const std::string &>();
  return Status::ok();
}

inline Status readBool(const json &obj, const char *key, const std::string &path, bool &out) {
  const json *v = member(obj, key);
  if (!v)
    return Status::ok();
  if (!v->is_boolean())
    return Status::error(path + "." + key + " must be a boolean, got " + typeName(*v));
  out = v->get<bool>();
  return Status::ok();
}

inline Status readId(const json &value, const std::string &path, int32_t &out) {
  if (!value.is_number_integer())
    return Status::error(path + " must be an integer id, got " + typeName(value));
  int64_t id = value.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(
                                                value.get<uint64_t>(), uint64_t(INT64_MAX)))
                                          : value.get<int64_t>();
  if (id < 0 || id > INT32_MAX - 1)
    return Status::error(path + " is out of range (" + std::to_string(id) + ")");
  out = static_cast<int32_t>(id);
  return Status::ok();
}

} // namespace m2c::tokenizer::jsonfields

#endif // M2C_RUNTIME_TOKENIZER_JSONFIELDS_H
