//===- Flags.h - Command-line flags for the runtime-only tools ------------===//
//
// The runtime tools (m2c-run, m2c-bench) build where LLVM is not, so they
// cannot use llvm::cl. This is the small part of it they need: typed flags
// with ranges, `--name value` or `--name=value`, switches, positionals,
// and errors that name the flag and the accepted range.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SUPPORT_FLAGS_H
#define M2C_RUNTIME_SUPPORT_FLAGS_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace m2c {

/// "1,2,3" -> {1, 2, 3}; every item an integer in [lo, hi]. The error
/// names the flag and the item: "--prompt-ids: 'x' is not a token id".
StatusOr<std::vector<int64_t>> parseIntList(const std::string &flag, const std::string &text,
                                            int64_t lo, int64_t hi, const std::string &what);

class FlagSet {
public:
  /// `help` is printed for --help; --version prints `version`.
  FlagSet(std::string help, std::string version)
      : help_(std::move(help)), version_(std::move(version)) {}

  void addString(const std::string &name, std::string *slot);
  void addInt(const std::string &name, int64_t lo, int64_t hi, std::function<void(int64_t)> set);
  void addReal(const std::string &name, double lo, double hi, std::function<void(double)> set);
  /// "1,8,32": every item an integer in [lo, hi] (parseIntList; `what`
  /// names an item in the error).
  void addIntList(const std::string &name, int64_t lo, int64_t hi, const std::string &what,
                  std::vector<int64_t> *slot);
  void addSwitch(const std::string &name, bool *slot, bool value = true);
  /// Called for each occurrence (repeatable flags, or custom parsing).
  void addCustom(const std::string &name, std::function<Status(const std::string &)> parse);

  /// Parses argv. Non-flag arguments go to `positionals`. Sets `exitNow`
  /// after printing --help or --version.
  Status parse(int argc, char **argv, std::vector<std::string> &positionals, bool &exitNow) const;

private:
  std::string help_, version_;
  std::map<std::string, std::function<Status(const std::string &)>> valued_;
  std::map<std::string, std::function<void()>> switches_;
};

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_FLAGS_H
