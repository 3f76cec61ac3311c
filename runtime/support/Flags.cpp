//===- Flags.cpp - Command-line flags for the runtime-only tools ----------===//

#include "runtime/support/Flags.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace m2c {
namespace {

/// Parses all of `text` as a decimal integer in [lo, hi].
bool parseInteger(const std::string &text, int64_t lo, int64_t hi, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || value < lo || value > hi)
    return false;
  out = value;
  return true;
}

} // namespace

StatusOr<std::vector<int64_t>> parseIntList(const std::string &flag, const std::string &text,
                                            int64_t lo, int64_t hi, const std::string &what) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                     : comma - start);
    int64_t value = 0;
    if (!parseInteger(item, lo, hi, value))
      return Status::error(flag + ": '" + item + "' is not " + what);
    values.push_back(value);
    if (comma == std::string::npos)
      return values;
    start = comma + 1;
  }
}

void FlagSet::addString(const std::string &name, std::string *slot) {
  valued_[name] = [slot](const std::string &value) {
    *slot = value;
    return Status::ok();
  };
}

void FlagSet::addInt(const std::string &name, int64_t lo, int64_t hi,
                     std::function<void(int64_t)> set) {
  valued_[name] = [=](const std::string &text) -> Status {
    int64_t value = 0;
    if (!parseInteger(text, lo, hi, value))
      return Status::error("--" + name + ": expected an integer in [" + std::to_string(lo) +
                           ", " + std::to_string(hi) + "], got '" + text + "'");
    set(value);
    return Status::ok();
  };
}

void FlagSet::addReal(const std::string &name, double lo, double hi,
                      std::function<void(double)> set) {
  valued_[name] = [=](const std::string &text) -> Status {
    char *end = nullptr;
    errno = 0;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || errno || !(value >= lo && value <= hi)) {
      char range[96];
      std::snprintf(range, sizeof(range), "[%g, %g]", lo, hi);
      return Status::error("--" + name + ": expected a number in " + range + ", got '" + text +
                           "'");
    }
    set(value);
    return Status::ok();
  };
}

void FlagSet::addIntList(const std::string &name, int64_t lo, int64_t hi,
                         const std::string &what, std::vector<int64_t> *slot) {
  valued_[name] = [=](const std::string &text) -> Status {
    StatusOr<std::vector<int64_t>> values = parseIntList("--" + name, text, lo, hi, what);
    if (!values)
      return values.status();
    *slot = values.take();
    return Status::ok();
  };
}

void FlagSet::addSwitch(const std::string &name, bool *slot, bool value) {
  switches_[name] = [slot, value] { *slot = value; };
}

void FlagSet::addCustom(const std::string &name,
                        std::function<Status(const std::string &)> parse) {
  valued_[name] = std::move(parse);
}

Status FlagSet::parse(int argc, char **argv, std::vector<std::string> &positionals,
                      bool &exitNow) const {
  exitNow = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_.c_str(), stdout);
      exitNow = true;
      return Status::ok();
    }
    if (arg == "--version") {
      std::printf("%s\n", version_.c_str());
      exitNow = true;
      return Status::ok();
    }
    if (arg.rfind("--", 0) != 0) {
      positionals.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    bool hasValue = eq != std::string::npos;
    if (hasValue) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (auto sw = switches_.find(name); sw != switches_.end()) {
      if (hasValue)
        return Status::error("--" + name + ": takes no value");
      sw->second();
      continue;
    }
    auto flag = valued_.find(name);
    if (flag == valued_.end())
      return Status::error("--" + name + ": unknown flag (see --help)");
    if (!hasValue) {
      if (i + 1 >= argc)
        return Status::error("--" + name + ": needs a value");
      value = argv[++i];
    }
    M2C_RETURN_IF_ERROR(flag->second(value));
  }
  return Status::ok();
}

} // namespace m2c
