//===- Artifact.cpp - Reading and writing .m2a files ----------------------===//

#include "runtime/artifact/Artifact.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace m2c {
namespace {

constexpr char kMagic[8] = {'M', '2', 'C', 'A', 'R', 'T', 'F', '\x1a'};
constexpr uint64_t kAlignment = 64;

struct RawHeader {
  char magic[8];
  uint32_t version;
  uint32_t headerBytes;
  char target[16];
  uint64_t planBytes;
  uint64_t weightsOffset;
  uint64_t weightsBytes;
  uint64_t checksum;
};
static_assert(sizeof(RawHeader) == kArtifactHeaderBytes, "header layout");

uint64_t alignUp(uint64_t value) { return (value + kAlignment - 1) / kAlignment * kAlignment; }

} // namespace

void Checksum::update(const uint8_t *data, size_t size) {
  length_ += size;
  auto mix = [this](uint64_t word) {
    state_ ^= word;
    state_ *= 0x100000001b3ull;
    state_ ^= state_ >> 29;
  };
  while (size > 0) {
    if (pendingSize_ == 0 && size >= 8) {
      uint64_t word;
      std::memcpy(&word, data, 8);
      mix(word);
      data += 8;
      size -= 8;
      continue;
    }
    pending_[pendingSize_++] = *data++;
    --size;
    if (pendingSize_ == 8) {
      uint64_t word;
      std::memcpy(&word, pending_, 8);
      mix(word);
      pendingSize_ = 0;
    }
  }
}

uint64_t Checksum::value() const {
  uint64_t state = state_;
  for (size_t i = 0; i < pendingSize_; ++i) {
    state ^= pending_[i];
    state *= 0x100000001b3ull;
  }
  state ^= length_;
  state *= 0x100000001b3ull;
  return state ^ (state >> 31);
}

Artifact::Artifact(Artifact &&other) noexcept { *this = std::move(other); }

Artifact &Artifact::operator=(Artifact &&other) noexcept {
  if (this != &other) {
    if (mapping_)
      munmap(mapping_, mappingSize_);
    plan_ = std::move(other.plan_);
    weights_ = other.weights_;
    weightBytes_ = other.weightBytes_;
    mapping_ = other.mapping_;
    mappingSize_ = other.mappingSize_;
    other.mapping_ = nullptr;
    other.weights_ = nullptr;
  }
  return *this;
}

Artifact::~Artifact() {
  if (mapping_)
    munmap(mapping_, mappingSize_);
}

StatusOr<Artifact> Artifact::parse(const uint8_t *data, size_t size, const std::string &origin,
                                   const std::string &expectedTarget) {
  auto fail = [&](const std::string &why) { return Status::error(origin + ": " + why); };
  if (size < kArtifactHeaderBytes)
    return fail("not an m2c artifact (only " + std::to_string(size) + " bytes)");
  RawHeader header;
  std::memcpy(&header, data, sizeof(header));
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0)
    return fail("not an m2c artifact (bad magic)");
  if (header.version != kArtifactFormatVersion)
    return fail("artifact format version " + std::to_string(header.version) +
                " is not supported by this runtime (expected " +
                std::to_string(kArtifactFormatVersion) + "); recompile it");
  if (header.headerBytes != kArtifactHeaderBytes)
    return fail("bad header size " + std::to_string(header.headerBytes));
  uint64_t fileSize = size;
  if (header.planBytes == 0 || header.planBytes > fileSize - kArtifactHeaderBytes)
    return fail("plan size " + std::to_string(header.planBytes) + " exceeds the file size " +
                std::to_string(fileSize) + "; the file is truncated or corrupt");
  if (header.weightsOffset < kArtifactHeaderBytes + header.planBytes ||
      header.weightsOffset > fileSize || header.weightsBytes > fileSize - header.weightsOffset)
    return fail("weight section [" + std::to_string(header.weightsOffset) + ", +" +
                std::to_string(header.weightsBytes) + ") lies outside the file (" +
                std::to_string(fileSize) + " bytes); the file is truncated or corrupt");
  if (header.weightsOffset + header.weightsBytes != fileSize)
    return fail("file size " + std::to_string(fileSize) + " does not match the header (" +
                std::to_string(header.weightsOffset + header.weightsBytes) + ")");
  Checksum checksum;
  checksum.update(data + kArtifactHeaderBytes, fileSize - kArtifactHeaderBytes);
  if (checksum.value() != header.checksum)
    return fail("checksum mismatch: the artifact is corrupt");
  std::string target(header.target, strnlen(header.target, sizeof(header.target)));
  if (!expectedTarget.empty() && target != expectedTarget)
    return fail("artifact was compiled for target '" + target + "', not '" + expectedTarget +
                "'");

  std::string planText(reinterpret_cast<const char *>(data + kArtifactHeaderBytes),
                       header.planBytes);
  StatusOr<plan::Plan> plan = plan::planFromJson(planText);
  if (!plan)
    return fail(plan.status().message());
  if (plan->target != target)
    return fail("plan target '" + plan->target + "' disagrees with the header ('" + target + "')");
  if (plan->weightsMode == "embed") {
    for (const plan::Weight &w : plan->weights) {
      if (w.storage.bytes != w.storageBytes() || w.storage.offset > header.weightsBytes ||
          w.storage.bytes > header.weightsBytes - w.storage.offset)
        return fail("weight '" + w.symbol + "' storage lies outside the weight section");
    }
  } else if (plan->weightsMode != "external" && plan->weightsMode != "none") {
    return fail("unknown weights mode '" + plan->weightsMode + "'");
  }
  Artifact artifact;
  artifact.plan_ = plan.take();
  artifact.weights_ = data + header.weightsOffset;
  artifact.weightBytes_ = header.weightsBytes;
  return artifact;
}

StatusOr<Artifact> Artifact::load(const std::string &path, const std::string &expectedTarget) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  size_t size = static_cast<size_t>(info.st_size);
  if (size < kArtifactHeaderBytes) {
    ::close(fd);
    return Status::error(path + ": not an m2c artifact (only " + std::to_string(size) +
                         " bytes)");
  }
  void *mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED)
    return Status::error(path + ": cannot map: " + std::strerror(errno));
  StatusOr<Artifact> artifact =
      parse(static_cast<const uint8_t *>(mapping), size, path, expectedTarget);
  if (!artifact) {
    munmap(mapping, size);
    return artifact.status();
  }
  artifact->mapping_ = mapping;
  artifact->mappingSize_ = size;
  return artifact;
}

uint64_t layoutEmbeddedWeights(plan::Plan &plan) {
  uint64_t offset = 0;
  for (plan::Weight &w : plan.weights) {
    w.storage.offset = offset;
    w.storage.bytes = w.storageBytes();
    offset = alignUp(offset + w.storage.bytes);
  }
  return offset;
}

Status writeArtifact(const std::string &path, const plan::Plan &plan,
                     const std::function<Status(size_t, const WeightSink &)> &writeWeight) {
  std::string planText = plan::planToJson(plan);
  RawHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kArtifactFormatVersion;
  header.headerBytes = kArtifactHeaderBytes;
  if (plan.target.size() >= sizeof(header.target))
    return Status::error("target name '" + plan.target + "' is too long");
  std::memcpy(header.target, plan.target.data(), plan.target.size());
  header.planBytes = planText.size();
  header.weightsOffset = alignUp(kArtifactHeaderBytes + planText.size());

  std::string temporary = path + ".partial";
  FILE *file = std::fopen(temporary.c_str(), "wb");
  if (!file)
    return Status::error(path + ": cannot write: " + std::strerror(errno));
  Checksum checksum;
  uint64_t written = kArtifactHeaderBytes;
  auto emit = [&](const void *data, size_t size) -> Status {
    if (size && std::fwrite(data, 1, size, file) != size)
      return Status::error(path + ": write failed: " + std::strerror(errno));
    checksum.update(static_cast<const uint8_t *>(data), size);
    written += size;
    return Status::ok();
  };
  static const uint8_t zeros[kAlignment] = {};
  auto padTo = [&](uint64_t target) -> Status {
    while (written < target)
      M2C_RETURN_IF_ERROR(emit(zeros, std::min<uint64_t>(kAlignment, target - written)));
    return Status::ok();
  };
  Status status = [&]() -> Status {
    if (std::fwrite(&header, sizeof(header), 1, file) != 1)
      return Status::error(path + ": write failed");
    M2C_RETURN_IF_ERROR(emit(planText.data(), planText.size()));
    M2C_RETURN_IF_ERROR(padTo(header.weightsOffset));
    if (plan.weightsMode == "embed") {
      for (size_t i = 0; i < plan.weights.size(); ++i) {
        const plan::Weight &w = plan.weights[i];
        M2C_RETURN_IF_ERROR(padTo(header.weightsOffset + w.storage.offset));
        uint64_t before = written;
        M2C_RETURN_IF_ERROR(writeWeight(i, emit));
        if (written - before != w.storage.bytes)
          return Status::error("weight '" + w.symbol + "' wrote " +
                               std::to_string(written - before) + " bytes, expected " +
                               std::to_string(w.storage.bytes));
      }
    }
    header.weightsBytes = written - header.weightsOffset;
    header.checksum = checksum.value();
    if (std::fseek(file, 0, SEEK_SET) != 0 || std::fwrite(&header, sizeof(header), 1, file) != 1)
      return Status::error(path + ": write failed");
    return Status::ok();
  }();
  if (std::fclose(file) != 0 && status)
    status = Status::error(path + ": write failed: " + std::strerror(errno));
  if (!status) {
    std::remove(temporary.c_str());
    return status;
  }
  // Renamed into place only when complete: a failed compile never leaves
  // a truncated artifact behind (or clobbers a good one).
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return Status::error(path + ": cannot write: " + std::strerror(errno));
  }
  return Status::ok();
}

} // namespace m2c
