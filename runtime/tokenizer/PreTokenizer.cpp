//===- PreTokenizer.cpp - tokenizer.json normalizers and pre-tokenizers ---===//

#include "runtime/tokenizer/PreTokenizer.h"

#include "runtime/tokenizer/ByteLevel.h"

namespace m2c::tokenizer {

using json = nlohmann::json;
using namespace jsonfields;

namespace {

Status unsupported(const std::string &path, const std::string &what, const std::string &type) {
  return Status::error(path + ": unsupported " + what + " '" + type + "'");
}

} // namespace

StatusOr<Normalizer> Normalizer::fromJson(const json &value, const std::string &path) {
  Normalizer normalizer;
  if (value.is_null())
    return normalizer;
  if (!value.is_object())
    return Status::error(path + " must be an object or null, got " + typeName(value));
  std::string type;
  M2C_RETURN_IF_ERROR(readString(value, "type", path, type, true));
  if (type == "NFC") {
    normalizer.nfc_ = true;
    return normalizer;
  }
  if (type == "Sequence") {
    const json *list = member(value, "normalizers");
    if (!list || !list->is_array())
      return Status::error(path + ".normalizers must be an array");
    for (size_t i = 0; i < list->size(); ++i) {
      StatusOr<Normalizer> inner =
          fromJson((*list)[i], path + ".normalizers[" + std::to_string(i) + "]");
      if (!inner)
        return inner.status();
      normalizer.nfc_ |= inner->nfc_;
    }
    return normalizer;
  }
  return unsupported(path, "normalizer", type);
}

std::string_view Normalizer::apply(std::string_view text, std::string &storage) const {
  if (!nfc_ || unicode::isNfcQuick(text))
    return text;
  storage = unicode::toNfc(text);
  return storage;
}

StatusOr<PreTokenizer> PreTokenizer::fromJson(const json &value, const std::string &path) {
  PreTokenizer pre;
  if (value.is_null())
    return pre;
  M2C_RETURN_IF_ERROR(pre.addStep(value, path));
  return pre;
}

Status PreTokenizer::addStep(const json &value, const std::string &path) {
  if (!value.is_object())
    return Status::error(path + " must be an object, got " + typeName(value));
  std::string type;
  M2C_RETURN_IF_ERROR(readString(value, "type", path, type, true));
  if (type == "Sequence") {
    const json *list = member(value, "pretokenizers");
    if (!list || !list->is_array())
      return Status::error(path + ".pretokenizers must be an array");
    for (size_t i = 0; i < list->size(); ++i)
      M2C_RETURN_IF_ERROR(addStep((*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]"));
    return Status::ok();
  }
  if (type == "ByteLevel") {
    bool addPrefixSpace = true, useRegex = true;
    M2C_RETURN_IF_ERROR(readBool(value, "add_prefix_space", path, addPrefixSpace));
    M2C_RETURN_IF_ERROR(readBool(value, "use_regex", path, useRegex));
    if (byteLevel_)
      return Status::error(path + ": a second ByteLevel pre-tokenizer is unsupported");
    byteLevel_ = true;
    if (addPrefixSpace) {
      Step step;
      step.kind = Step::ByteLevelPrefix;
      steps_.push_back(std::move(step));
    }
    if (useRegex) {
      StatusOr<Regex> re = Regex::compile(bytelevel::gpt2Pattern());
      if (!re)
        return re.status().withContext(path);
      Step step;
      step.regex = std::make_shared<Regex>(re.take());
      steps_.push_back(std::move(step));
    }
    return Status::ok();
  }
  if (type == "Digits") {
    Step step;
    step.kind = Step::Digits;
    M2C_RETURN_IF_ERROR(readBool(value, "individual_digits", path, step.individualDigits));
    steps_.push_back(std::move(step));
    return Status::ok();
  }
  if (type != "Split")
    return unsupported(path, "pre-tokenizer", type);
  Step step;
  const json *pattern = member(value, "pattern");
  if (!pattern || !pattern->is_object())
    return Status::error(path + ".pattern must be an object with a Regex or String member");
  if (const json *re = member(*pattern, "Regex")) {
    if (!re->is_string())
      return Status::error(path + ".pattern.Regex must be a string");
    StatusOr<Regex> compiled = Regex::compile(re->get_ref<const std::string &>());
    if (!compiled)
      return compiled.status().withContext(path + ".pattern.Regex");
    step.regex = std::make_shared<Regex>(compiled.take());
  } else if (const json *lit = member(*pattern, "String")) {
    if (!lit->is_string() || lit->get_ref<const std::string &>().empty())
      return Status::error(path + ".pattern.String must be a non-empty string");
    step.literal = lit->get<std::string>();
  } else {
    return Status::error(path + ".pattern must have a Regex or String member");
  }
  std::string behavior;
  M2C_RETURN_IF_ERROR(readString(value, "behavior", path, behavior, true));
  if (behavior == "Removed")
    step.behavior = SplitBehavior::Removed;
  else if (behavior == "Isolated")
    step.behavior = SplitBehavior::Isolated;
  else if (behavior == "MergedWithPrevious")
    step.behavior = SplitBehavior::MergedWithPrevious;
  else if (behavior == "MergedWithNext")
    step.behavior = SplitBehavior::MergedWithNext;
  else if (behavior == "Contiguous")
    step.behavior = SplitBehavior::Contiguous;
  else
    return unsupported(path + ".behavior", "split behavior", behavior);
  M2C_RETURN_IF_ERROR(readBool(value, "invert", path, step.invert));
  steps_.push_back(std::move(step));
  return Status::ok();
}

void PreTokenizer::apply(std::string_view segment, std::vector<std::string_view> &pieces,
                         PreTokenizeScratch &scratch) const {
  pieces.clear();
  if (segment.empty())
    return;
  pieces.push_back(segment);
  for (const Step &step : steps_) {
    scratch.next.clear();
    for (std::string_view piece : pieces)
      applyStep(step, piece, scratch.next, scratch);
    pieces.swap(scratch.next);
  }
}

void PreTokenizer::applyStep(const Step &step, std::string_view piece,
                             std::vector<std::string_view> &out,
                             PreTokenizeScratch &scratch) const {
  if (step.kind == Step::ByteLevelPrefix) {
    if (!piece.empty() && piece.front() == ' ') {
      out.push_back(piece);
      return;
    }
    scratch.storage.emplace_back(" ");
    scratch.storage.back().append(piece);
    out.push_back(scratch.storage.back());
    return;
  }
  // Matches as alternating byte ranges: (begin, end) with a match flag.
  auto &ranges = scratch.ranges;
  auto &isMatch = scratch.isMatch;
  ranges.clear();
  isMatch.clear();
  uint32_t prev = 0;
  auto addMatch = [&](uint32_t begin, uint32_t end) {
    if (begin > prev) {
      ranges.emplace_back(prev, begin);
      isMatch.push_back(false);
    }
    ranges.emplace_back(begin, end);
    isMatch.push_back(true);
    prev = end;
  };
  if (step.kind == Step::Digits) {
    size_t pos = 0;
    while (pos < piece.size()) {
      size_t start = pos;
      char32_t cp = unicode::decodeUtf8(piece, pos);
      unicode::Category cat = unicode::category(cp);
      if (cat == unicode::Nd || cat == unicode::Nl || cat == unicode::No)
        addMatch(static_cast<uint32_t>(start), static_cast<uint32_t>(pos));
    }
  } else if (step.regex) {
    DecodedText &text = scratch.text;
    text.assign(piece);
    size_t from = 0, begin, end;
    while (from <= text.size() && step.regex->search(text, from, begin, end, scratch.regex)) {
      if (end == begin) {
        from = begin + 1; // empty matches split nothing
        continue;
      }
      addMatch(text.offsets[begin], text.offsets[end]);
      from = end;
    }
  } else {
    size_t from = 0;
    while (true) {
      size_t at = piece.find(step.literal, from);
      if (at == std::string_view::npos)
        break;
      addMatch(static_cast<uint32_t>(at), static_cast<uint32_t>(at + step.literal.size()));
      from = at + step.literal.size();
    }
  }
  if (prev < piece.size()) {
    ranges.emplace_back(prev, static_cast<uint32_t>(piece.size()));
    isMatch.push_back(false);
  }
  if (step.invert)
    for (size_t i = 0; i < isMatch.size(); ++i)
      isMatch[i] = !isMatch[i];
  SplitBehavior behavior = step.kind == Step::Digits
                               ? (step.individualDigits ? SplitBehavior::Isolated
                                                        : SplitBehavior::Contiguous)
                               : step.behavior;
  auto emit = [&](uint32_t b, uint32_t e) {
    if (e > b)
      out.push_back(piece.substr(b, e - b));
  };
  size_t n = ranges.size();
  switch (behavior) {
  case SplitBehavior::Isolated:
    for (size_t i = 0; i < n; ++i)
      emit(ranges[i].first, ranges[i].second);
    break;
  case SplitBehavior::Removed:
    for (size_t i = 0; i < n; ++i)
      if (!isMatch[i])
        emit(ranges[i].first, ranges[i].second);
    break;
  case SplitBehavior::MergedWithPrevious: {
    // A match joins the piece before it (unless that was a match too).
    std::vector<std::pair<uint32_t, uint32_t>> acc;
    bool previousMatch = false;
    for (size_t i = 0; i < n; ++i) {
      if (isMatch[i] && !previousMatch && !acc.empty())
        acc.back().second = ranges[i].second;
      else
        acc.push_back(ranges[i]);
      previousMatch = isMatch[i];
    }
    for (auto &r : acc)
      emit(r.first, r.second);
    break;
  }
  case SplitBehavior::MergedWithNext: {
    std::vector<std::pair<uint32_t, uint32_t>> acc;
    bool previousMatch = false;
    for (size_t k = n; k-- > 0;) {
      if (isMatch[k] && !previousMatch && !acc.empty())
        acc.back().first = ranges[k].first;
      else
        acc.push_back(ranges[k]);
      previousMatch = isMatch[k];
    }
    for (size_t k = acc.size(); k-- > 0;)
      emit(acc[k].first, acc[k].second);
    break;
  }
  case SplitBehavior::Contiguous: {
    std::vector<std::pair<uint32_t, uint32_t>> acc;
    int previous = -1;
    for (size_t i = 0; i < n; ++i) {
      if (previous == int(isMatch[i]) && !acc.empty())
        acc.back().second = ranges[i].second;
      else
        acc.push_back(ranges[i]);
      previous = isMatch[i];
    }
    for (auto &r : acc)
      emit(r.first, r.second);
    break;
  }
  }
}

} // namespace m2c::tokenizer
