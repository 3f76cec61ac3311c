//===- Status.h - Explicit error values for the runtime --------*- C++ -*-===//
//
// The runtime never throws or aborts on bad input: every fallible call
// returns a Status or a StatusOr<T> whose message names the offending file,
// key or value. The tools print it as "m2c: error: <message>".
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SUPPORT_STATUS_H
#define M2C_RUNTIME_SUPPORT_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace m2c {

class [[nodiscard]] Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string &message() const { return message_; }
  /// Prefixes the message with context, e.g. the file name.
  Status withContext(const std::string &context) const {
    if (!failed_)
      return *this;
    return error(context + ": " + message_);
  }

private:
  bool failed_ = false;
  std::string message_;
};

template <typename T> class [[nodiscard]] StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)) {}
  StatusOr(Status status) : status_(std::move(status)) {
    assert(!status_.isOk() && "StatusOr built from an ok Status");
  }
  bool isOk() const { return value_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const Status &status() const { return status_; }
  T &value() { return *value_; }
  const T &value() const { return *value_; }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }
  T take() { return std::move(*value_); }

private:
  std::optional<T> value_;
  Status status_;
};

} // namespace m2c

#define M2C_RETURN_IF_ERROR(expr)                                              \
  do {                                                                         \
    ::m2c::Status m2cStatus_ = (expr);                                         \
    if (!m2cStatus_.isOk())                                                    \
      return m2cStatus_;                                                       \
  } while (0)

#endif // M2C_RUNTIME_SUPPORT_STATUS_H
