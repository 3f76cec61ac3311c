//===- Checkpoint.cpp - A model directory of one or many safetensors shards ===//

#include "runtime/checkpoint/Checkpoint.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sys/stat.h>

namespace m2c {

using nlohmann::json;

namespace {

constexpr const char *kSingleName = "model.safetensors";
constexpr const char *kIndexName = "model.safetensors.index.json";
/// The released model's index is ~3 MB; anything near this is hostile.
constexpr long kMaxIndexBytes = 256l * 1024 * 1024;

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool isRegularFile(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string parentDirectory(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty() || dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

StatusOr<std::string> readTextFile(const std::string &path) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), f)) > 0) {
    text.append(buffer, got);
    if (static_cast<long>(text.size()) > kMaxIndexBytes) {
      std::fclose(f);
      return Status::error(path + ": larger than the limit of " +
                           std::to_string(kMaxIndexBytes) + " bytes");
    }
  }
  bool failed = std::ferror(f);
  std::fclose(f);
  if (failed)
    return Status::error(path + ": read error");
  return text;
}

/// A shard name must stay inside the checkpoint directory: a hostile index
/// must not make the runtime map arbitrary files.
bool isSafeShardName(const std::string &name) {
  if (name.empty() || name[0] == '/' || name.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    std::string part = name.substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..")
      return false;
    if (slash == std::string::npos)
      break;
    start = slash + 1;
  }
  return true;
}

} // namespace

StatusOr<Checkpoint> Checkpoint::open(const std::string &path,
                                      const CheckpointOptions &options) {
  std::string file = path;
  if (isDirectory(path)) {
    if (isRegularFile(joinPath(path, kSingleName)))
      file = joinPath(path, kSingleName);
    else if (isRegularFile(joinPath(path, kIndexName)))
      file = joinPath(path, kIndexName);
    else
      return Status::error(path + ": holds neither " + kSingleName + " nor " +
                           kIndexName);
  }

  Checkpoint ckpt;
  ckpt.origin_ = file;
  if (!endsWith(file, ".json")) {
    StatusOr<SafeTensorsFile> single = SafeTensorsFile::open(file);
    if (!single)
      return single.status();
    auto shard = std::make_unique<Shard>();
    shard->path = file;
    shard->file = std::make_unique<SafeTensorsFile>(single.take());
    for (const SafeTensorsEntry &e : shard->file->header().entries)
      ckpt.tensorShard_.emplace(e.name, 0);
    ckpt.shards_.push_back(std::move(shard));
    return ckpt;
  }

  ckpt.sharded_ = true;
  StatusOr<std::string> text = readTextFile(file);
  if (!text)
    return text.status();
  json root = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return Status::error(file + ": not valid JSON");
  if (!root.is_object())
    return Status::error(file + ": not a JSON object (got " +
                         root.type_name() + ")");
  auto mapIt = root.find("weight_map");
  if (mapIt == root.end())
    return Status::error(file + ": missing \"weight_map\"");
  if (!mapIt->is_object())
    return Status::error(file + ": \"weight_map\" is not an object (got " +
                         mapIt->type_name() + ")");
  if (mapIt->empty())
    return Status::error(file + ": \"weight_map\" is empty");

  const std::string dir = parentDirectory(file);
  std::map<std::string, size_t> shardByName;
  for (auto it = mapIt->begin(); it != mapIt->end(); ++it) {
    const std::string &tensor = it.key();
    if (!it.value().is_string())
      return Status::error(file + ": weight_map['" + tensor +
                           "'] is not a string (got " +
                           it.value().type_name() + ")");
    const std::string &shardName = it.value().get_ref<const std::string &>();
    if (!isSafeShardName(shardName))
      return Status::error(file + ": weight_map['" + tensor +
                           "'] names shard '" + shardName +
                           "', which is outside the checkpoint directory");
    auto found = shardByName.find(shardName);
    size_t index;
    if (found != shardByName.end()) {
      index = found->second;
    } else {
      std::string shardPath = joinPath(dir, shardName);
      if (!isRegularFile(shardPath))
        return Status::error(file + ": shard '" + shardPath +
                             "' (named for tensor '" + tensor +
                             "') does not exist");
      index = ckpt.shards_.size();
      shardByName.emplace(shardName, index);
      auto shard = std::make_unique<Shard>();
      shard->path = shardPath;
      ckpt.shards_.push_back(std::move(shard));
    }
    ckpt.shards_[index]->expected.push_back(tensor);
    ckpt.tensorShard_.emplace(tensor, index);
  }
  if (options.eager)
    M2C_RETURN_IF_ERROR(ckpt.openAllShards());
  return ckpt;
}

StatusOr<const SafeTensorsFile *> Checkpoint::shard(size_t index) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  Shard &s = *shards_[index];
  if (s.file)
    return static_cast<const SafeTensorsFile *>(s.file.get());
  StatusOr<SafeTensorsFile> opened = SafeTensorsFile::open(s.path);
  if (!opened)
    return opened.status();
  for (const std::string &name : s.expected)
    if (!opened->has(name))
      return Status::error(s.path + ": tensor '" + name + "' is listed in " +
                           kIndexName + " but absent from this shard");
  s.file = std::make_unique<SafeTensorsFile>(opened.take());
  return static_cast<const SafeTensorsFile *>(s.file.get());
}

Status Checkpoint::openAllShards() const {
  for (size_t i = 0; i < shards_.size(); ++i) {
    StatusOr<const SafeTensorsFile *> s = shard(i);
    if (!s)
      return s.status();
  }
  return Status::ok();
}

bool Checkpoint::has(const std::string &name) const {
  return tensorShard_.count(name) != 0;
}

StatusOr<TensorView> Checkpoint::get(const std::string &name) const {
  auto it = tensorShard_.find(name);
  if (it == tensorShard_.end())
    return Status::error(origin_ + ": no tensor named '" + name + "'");
  StatusOr<const SafeTensorsFile *> s = shard(it->second);
  if (!s)
    return s.status();
  return (*s)->get(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensorShard_.size());
  for (const auto &kv : tensorShard_)
    out.push_back(kv.first);
  return out;
}

std::string Checkpoint::fileOf(const std::string &name) const {
  auto it = tensorShard_.find(name);
  if (it == tensorShard_.end())
    return origin_;
  return shards_[it->second]->path;
}

} // namespace m2c
