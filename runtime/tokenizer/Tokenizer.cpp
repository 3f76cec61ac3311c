//===- Tokenizer.cpp - Hugging Face tokenizer.json: text <-> token ids ----===//

#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/support/JsonError.h"
#include "runtime/tokenizer/AddedTokens.h"
#include "runtime/tokenizer/Bpe.h"
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/JsonFields.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/Unicode.h"

#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace m2c {

using json = nlohmann::json;
using namespace tokenizer;
using namespace tokenizer::jsonfields;

namespace {

std::string describeJsonError(std::string_view text) {
  std::string why = jsonParseErrorText(text);
  return why.empty() ? "not valid JSON" : "not valid JSON: " + why;
}

enum class DecoderKind { JoinWithSpace, ByteLevel };

constexpr size_t kMaxCachedWords = 1 << 18;
constexpr size_t kMaxCachedWordBytes = 256;

} // namespace

struct Tokenizer::Impl {
  Normalizer normalizer;
  PreTokenizer pre;
  std::optional<BpeModel> bpe;
  std::vector<AddedToken> added;
  TokenMatcher rawMatcher, normalizedMatcher;
  std::unordered_map<std::string, int32_t> addedByContent;
  std::vector<std::string> tokens;   // id -> vocabulary string
  std::vector<std::string> decoded;  // id -> decoded bytes
  std::vector<uint8_t> flags;        // id -> kHas | kSpecial
  DecoderKind decoder = DecoderKind::JoinWithSpace;
  std::vector<int32_t> prefixIds, suffixIds;

  // Word cache: raw piece bytes -> a slice of cacheIds. Keys live in
  // cacheKeys (a deque, so views into it stay valid as it grows).
  mutable std::mutex cacheMutex;
  mutable std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;
  mutable std::deque<std::string> cacheKeys;
  mutable std::vector<int32_t> cacheIds;

  static constexpr uint8_t kHas = 1, kSpecial = 2;

  Status load(const json &root);
  Status loadModel(const json &model);
  Status loadAddedTokens(const json &list);
  Status loadDecoder(const json &value, const std::string &path);
  Status loadPostProcessor(const json &value, const std::string &path);
  void encodeSegment(std::string_view segment, std::vector<int32_t> &ids,
                     PreTokenizeScratch &scratch, std::string &spelled, bool useCache) const;
};

Status Tokenizer::Impl::loadModel(const json &model) {
  if (!model.is_object())
    return Status::error("model must be an object, got " + std::string(typeName(model)));
  std::string type = "BPE";
  M2C_RETURN_IF_ERROR(readString(model, "type", "model", type, false));
  if (type != "BPE")
    return Status::error("model: unsupported model type '" + type + "' (supported: BPE)");
  if (const json *dropout = member(model, "dropout")) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0)
      return Status::error("model.dropout: BPE dropout is unsupported (tokenization must be "
                           "deterministic)");
  }
  const json *vocabJson = member(model, "vocab");
  if (!vocabJson || !vocabJson->is_object())
    return Status::error("model.vocab must be an object of token -> id");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocabJson->size());
  for (auto it = vocabJson->begin(); it != vocabJson->end(); ++it) {
    int32_t id;
    M2C_RETURN_IF_ERROR(readId(it.value(), "model.vocab[\"" + it.key() + "\"]", id));
    vocab.emplace(it.key(), id);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (const json *mergesJson = member(model, "merges")) {
    if (!mergesJson->is_array())
      return Status::error("model.merges must be an array");
    merges.reserve(mergesJson->size());
    for (size_t i = 0; i < mergesJson->size(); ++i) {
      const json &m = (*mergesJson)[i];
      std::string where = "model.merges[" + std::to_string(i) + "]";
      if (m.is_string()) {
        // The legacy "left right" form: exactly one space separates the two.
        const std::string &s = m.get_ref<const std::string &>();
        size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          return Status::error(where + ": expected \"left right\", got \"" + s + "\"");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return Status::error(where + ": expected \"left right\" or [\"left\", \"right\"]");
      }
    }
  }
  BpeOptions options;
  M2C_RETURN_IF_ERROR(readString(model, "unk_token", "model", options.unkToken, false));
  M2C_RETURN_IF_ERROR(readString(model, "continuing_subword_prefix", "model",
                                 options.continuingSubwordPrefix, false));
  M2C_RETURN_IF_ERROR(
      readString(model, "end_of_word_suffix", "model", options.endOfWordSuffix, false));
  M2C_RETURN_IF_ERROR(readBool(model, "fuse_unk", "model", options.fuseUnk));
  M2C_RETURN_IF_ERROR(readBool(model, "byte_fallback", "model", options.byteFallback));
  M2C_RETURN_IF_ERROR(readBool(model, "ignore_merges", "model", options.ignoreMerges));
  StatusOr<BpeModel> created = BpeModel::create(std::move(vocab), merges, std::move(options));
  if (!created)
    return created.status();
  bpe.emplace(created.take());
  return Status::ok();
}

Status Tokenizer::Impl::loadAddedTokens(const json &list) {
  if (!list.is_array())
    return Status::error("added_tokens must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const json &t = list[i];
    std::string path = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object())
      return Status::error(path + " must be an object");
    AddedToken token;
    const json *id = member(t, "id");
    if (!id)
      return Status::error(path + ".id is missing");
    M2C_RETURN_IF_ERROR(readId(*id, path + ".id", token.id));
    M2C_RETURN_IF_ERROR(readString(t, "content", path, token.content, true));
    if (token.content.empty())
      return Status::error(path + ".content is empty");
    if (!unicode::isValidUtf8(token.content))
      return Status::error(path + ".content is not valid UTF-8");
    M2C_RETURN_IF_ERROR(readBool(t, "special", path, token.special));
    token.normalized = !token.special;
    M2C_RETURN_IF_ERROR(readBool(t, "single_word", path, token.singleWord));
    M2C_RETURN_IF_ERROR(readBool(t, "lstrip", path, token.lstrip));
    M2C_RETURN_IF_ERROR(readBool(t, "rstrip", path, token.rstrip));
    M2C_RETURN_IF_ERROR(readBool(t, "normalized", path, token.normalized));
    added.push_back(std::move(token));
  }
  return Status::ok();
}

Status Tokenizer::Impl::loadDecoder(const json &value, const std::string &path) {
  if (value.is_null())
    return Status::ok();
  if (!value.is_object())
    return Status::error(path + " must be an object or null");
  std::string type;
  M2C_RETURN_IF_ERROR(readString(value, "type", path, type, true));
  if (type == "ByteLevel") {
    decoder = DecoderKind::ByteLevel;
    return Status::ok();
  }
  if (type == "Sequence") {
    const json *list = member(value, "decoders");
    if (!list || !list->is_array() || list->empty())
      return Status::error(path + ".decoders must be a non-empty array");
    for (size_t i = 0; i < list->size(); ++i)
      M2C_RETURN_IF_ERROR(loadDecoder((*list)[i], path + ".decoders[" + std::to_string(i) + "]"));
    return Status::ok();
  }
  return Status::error(path + ": unsupported decoder '" + type + "' (supported: ByteLevel)");
}

Status Tokenizer::Impl::loadPostProcessor(const json &value, const std::string &path) {
  if (value.is_null())
    return Status::ok();
  if (!value.is_object())
    return Status::error(path + " must be an object or null");
  std::string type;
  M2C_RETURN_IF_ERROR(readString(value, "type", path, type, true));
  if (type == "ByteLevel")
    return Status::ok(); // only adjusts offsets
  if (type == "Sequence") {
    const json *list = member(value, "processors");
    if (!list || !list->is_array())
      return Status::error(path + ".processors must be an array");
    for (size_t i = 0; i < list->size(); ++i)
      M2C_RETURN_IF_ERROR(
          loadPostProcessor((*list)[i], path + ".processors[" + std::to_string(i) + "]"));
    return Status::ok();
  }
  if (type != "TemplateProcessing")
    return Status::error(path + ": unsupported post-processor '" + type +
                         "' (supported: ByteLevel, TemplateProcessing, Sequence)");
  const json *single = member(value, "single");
  const json *specials = member(value, "special_tokens");
  if (!single || !single->is_array())
    return Status::error(path + ".single must be an array");
  bool sawSequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const json &item = (*single)[i];
    std::string where = path + ".single[" + std::to_string(i) + "]";
    if (const json *seq = member(item, "Sequence")) {
      std::string which;
      M2C_RETURN_IF_ERROR(readString(*seq, "id", where + ".Sequence", which, true));
      if (which != "A")
        return Status::error(where + ": a single-sequence template can only use A, got " + which);
      sawSequence = true;
      continue;
    }
    const json *special = member(item, "SpecialToken");
    if (!special)
      return Status::error(where + " must be a Sequence or a SpecialToken");
    std::string name;
    M2C_RETURN_IF_ERROR(readString(*special, "id", where + ".SpecialToken", name, true));
    const json *entry = specials ? member(*specials, name.c_str()) : nullptr;
    const json *ids = entry ? member(*entry, "ids") : nullptr;
    if (!ids || !ids->is_array())
      return Status::error(path + ".special_tokens[\"" + name + "\"].ids is missing");
    for (size_t k = 0; k < ids->size(); ++k) {
      int32_t id;
      M2C_RETURN_IF_ERROR(readId((*ids)[k], path + ".special_tokens[\"" + name + "\"].ids", id));
      (sawSequence ? suffixIds : prefixIds).push_back(id);
    }
  }
  return Status::ok();
}

Status Tokenizer::Impl::load(const json &root) {
  if (!root.is_object())
    return Status::error("expected a JSON object at the top level");
  const json *model = member(root, "model");
  if (!model)
    return Status::error("model is missing");
  M2C_RETURN_IF_ERROR(loadModel(*model));
  if (const json *list = member(root, "added_tokens"))
    M2C_RETURN_IF_ERROR(loadAddedTokens(*list));
  StatusOr<Normalizer> norm =
      Normalizer::fromJson(member(root, "normalizer") ? *member(root, "normalizer") : json(),
                           "normalizer");
  if (!norm)
    return norm.status();
  normalizer = norm.take();
  StatusOr<PreTokenizer> p = PreTokenizer::fromJson(
      member(root, "pre_tokenizer") ? *member(root, "pre_tokenizer") : json(), "pre_tokenizer");
  if (!p)
    return p.status();
  pre = p.take();
  M2C_RETURN_IF_ERROR(
      loadDecoder(member(root, "decoder") ? *member(root, "decoder") : json(), "decoder"));
  M2C_RETURN_IF_ERROR(loadPostProcessor(
      member(root, "post_processor") ? *member(root, "post_processor") : json(),
      "post_processor"));

  // The id tables: model tokens, then added tokens on top (HF looks the
  // added vocabulary up first).
  int32_t size = 0;
  for (const auto &[token, id] : bpe->vocab())
    size = std::max(size, id + 1);
  for (const AddedToken &t : added)
    size = std::max(size, t.id + 1);
  tokens.assign(size, std::string());
  flags.assign(size, 0);
  for (const auto &[token, id] : bpe->vocab()) {
    tokens[id] = token;
    flags[id] |= kHas;
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken &t = added[i];
    tokens[t.id] = t.content;
    flags[t.id] |= kHas;
    addedByContent.emplace(t.content, t.id);
    if (t.normalized) {
      std::string storage;
      normalizedMatcher.add(normalizer.apply(t.content, storage), static_cast<uint32_t>(i));
    } else {
      rawMatcher.add(t.content, static_cast<uint32_t>(i));
    }
  }
  for (const AddedToken &t : added)
    if (t.special)
      flags[t.id] |= kSpecial;
  decoded.assign(size, std::string());
  for (int32_t id = 0; id < size; ++id) {
    if (!(flags[id] & kHas))
      continue;
    const std::string &token = tokens[id];
    if (decoder == DecoderKind::JoinWithSpace) {
      decoded[id] = token;
      continue;
    }
    // Byte-level: every character back to its byte, or the token's own
    // UTF-8 when a character is outside the byte alphabet.
    std::string bytes;
    bool all = true;
    for (size_t pos = 0; pos < token.size();) {
      int b = bytelevel::byteForChar(unicode::decodeUtf8(token, pos));
      if (b < 0) {
        all = false;
        break;
      }
      bytes += static_cast<char>(b);
    }
    decoded[id] = all ? bytes : token;
  }
  return Status::ok();
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromJson(std::string_view jsonText) {
  json root = json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return Status::error(describeJsonError(jsonText));
  auto impl = std::make_unique<Impl>();
  M2C_RETURN_IF_ERROR(impl->load(root));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return Status::error(path + ": read failed");
  StatusOr<std::unique_ptr<Tokenizer>> tok = fromJson(text.str());
  if (!tok)
    return tok.status().withContext(path);
  return tok;
}

void Tokenizer::Impl::encodeSegment(std::string_view segment, std::vector<int32_t> &ids,
                                    PreTokenizeScratch &scratch, std::string &spelled,
                                    bool useCache) const {
  std::vector<std::string_view> pieces;
  scratch.storage.clear();
  pre.apply(segment, pieces, scratch);
  bool byteLevel = pre.byteLevel();
  for (std::string_view piece : pieces) {
    bool cacheable = useCache && piece.size() <= kMaxCachedWordBytes;
    bool insertable = cacheable && cache.size() < kMaxCachedWords;
    if (cacheable) {
      auto it = cache.find(piece);
      if (it != cache.end()) {
        const int32_t *slice = cacheIds.data() + it->second.first;
        ids.insert(ids.end(), slice, slice + it->second.second);
        continue;
      }
    }
    size_t before = ids.size();
    if (byteLevel) {
      spelled.clear();
      bytelevel::appendSpelled(piece, spelled);
      bpe->tokenize(spelled, ids);
    } else {
      bpe->tokenize(piece, ids);
    }
    if (insertable) {
      // Once full the cache keeps what it has (frequent words come early),
      // as HF's does, instead of thrashing.
      cacheKeys.emplace_back(piece);
      cache.emplace(cacheKeys.back(),
                    std::make_pair(static_cast<uint32_t>(cacheIds.size()),
                                   static_cast<uint32_t>(ids.size() - before)));
      cacheIds.insert(cacheIds.end(), ids.begin() + before, ids.end());
    }
  }
}

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                                 const EncodeOptions &options) const {
  const Impl &impl = *impl_;
  for (size_t pos = 0; pos < text.size();) {
    size_t before = pos;
    char32_t cp = unicode::decodeUtf8(text, pos);
    if (cp == 0xFFFD && pos - before == 1)
      return Status::error("input is not valid UTF-8 (byte " + std::to_string(before) + ")");
  }
  std::vector<int32_t> ids;
  if (options.addSpecialTokens)
    ids = impl.prefixIds;
  std::unique_lock<std::mutex> lock(impl.cacheMutex, std::try_to_lock);
  bool useCache = lock.owns_lock();
  PreTokenizeScratch scratch;
  std::string spelled, normalizedStorage;
  std::vector<Cut> rawCuts, normCuts;
  impl.rawMatcher.cut(text, impl.added, rawCuts);
  for (const Cut &raw : rawCuts) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string_view normalized =
        impl.normalizer.apply(text.substr(raw.begin, raw.end - raw.begin), normalizedStorage);
    normCuts.clear();
    impl.normalizedMatcher.cut(normalized, impl.added, normCuts);
    for (const Cut &cut : normCuts) {
      if (cut.id >= 0)
        ids.push_back(cut.id);
      else
        impl.encodeSegment(normalized.substr(cut.begin, cut.end - cut.begin), ids, scratch,
                           spelled, useCache);
    }
  }
  if (options.addSpecialTokens)
    ids.insert(ids.end(), impl.suffixIds.begin(), impl.suffixIds.end());
  return ids;
}

bool Tokenizer::hasId(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(impl_->flags.size()) &&
         (impl_->flags[id] & Impl::kHas);
}

bool Tokenizer::isSpecial(int32_t id) const {
  return hasId(id) && (impl_->flags[id] & Impl::kSpecial);
}

int32_t Tokenizer::vocabSize() const { return static_cast<int32_t>(impl_->flags.size()); }

std::optional<int32_t> Tokenizer::tokenToId(std::string_view token) const {
  std::string key(token);
  auto a = impl_->addedByContent.find(key);
  if (a != impl_->addedByContent.end())
    return a->second;
  auto m = impl_->bpe->vocab().find(key);
  if (m != impl_->bpe->vocab().end())
    return m->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::idToToken(int32_t id) const {
  if (!hasId(id))
    return std::nullopt;
  return impl_->tokens[id];
}

void Tokenizer::appendTokenBytes(int32_t id, bool first, std::string &out) const {
  if (!hasId(id))
    return;
  if (!first && impl_->decoder == DecoderKind::JoinWithSpace)
    out += ' ';
  out += impl_->decoded[id];
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecialTokens) const {
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    if (!hasId(id) || (skipSpecialTokens && isSpecial(id)))
      continue;
    appendTokenBytes(id, first, bytes);
    first = false;
  }
  return decodeUtf8Lossy(bytes, /*final=*/true);
}

std::string decodeUtf8Lossy(std::string &bytes, bool final) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0, n = bytes.size();
  auto byteAt = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < n) {
    unsigned char c = byteAt(i);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Well-formed sequences (Unicode Table 3-7): length and second-byte range.
    int length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      length = 2;
    else if (c == 0xE0)
      length = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      length = 3;
    else if (c == 0xED)
      length = 3, hi = 0x9F;
    else if (c == 0xF0)
      length = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      length = 4;
    else if (c == 0xF4)
      length = 4, hi = 0x8F;
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    int k = 1;
    bool broken = false;
    while (k < length) {
      if (i + k >= n)
        break;
      unsigned char b = byteAt(i + k);
      unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) {
        broken = true;
        break;
      }
      ++k;
    }
    if (k == length) {
      out.append(bytes, i, length);
      i += length;
    } else if (!broken && !final) {
      break; // incomplete at the end: keep for later
    } else {
      out += "\xEF\xBF\xBD"; // the maximal subpart seen so far
      i += k;
    }
  }
  bytes.erase(0, i);
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  if (!tokenizer_.hasId(id) || (skipSpecial_ && tokenizer_.isSpecial(id)))
    return std::string();
  tokenizer_.appendTokenBytes(id, first_, pending_);
  first_ = false;
  return decodeUtf8Lossy(pending_, /*final=*/false);
}

std::string StreamDecoder::finish() { return decodeUtf8Lossy(pending_, /*final=*/true); }

} // namespace m2c
