//===- Weights.cpp - Random, checkpoint and embedded weight sources -------===//

#include "runtime/weights/Weights.h"
#include "runtime/weights/Quantize.h"

#include "runtime/artifact/Artifact.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/CheckpointBinding.h"
#include "runtime/checkpoint/DType.h"
#include "runtime/model/ModelConfig.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <sys/stat.h>
#include <thread>

namespace m2c {
namespace {

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hashString(const std::string &text, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

float roundTo(plan::ElementType type, float value) {
  if (type == plan::ElementType::BF16)
    return bf16ToF32(f32ToBf16(value));
  return value;
}

} // namespace

RandomWeightStream randomWeightStream(const plan::Weight &w, uint64_t seed) {
  // Keyed by the checkpoint binding, so a tied lm_head draws exactly the
  // embedding's values, as a tied checkpoint would hold.
  const std::string &s = w.binding.find("{e}") == std::string::npos ? w.binding : w.symbol;
  bool isNorm = endsWith(s, "layernorm.weight") || endsWith(s, "norm.weight");
  bool isBias = endsWith(s, "e_score_correction_bias");
  bool isEmbedding = s == "model.embed_tokens.weight";
  bool isGate = endsWith(s, "block_sparse_moe.gate.weight");
  double fanIn = static_cast<double>(w.shape.back());
  RandomWeightStream stream;
  stream.state = hashString(s, seed);
  stream.scale = isEmbedding ? 1.0 : isNorm || isBias ? 0.1 : 1.0 / std::sqrt(fanIn);
  // A wider router spread keeps top-k choices away from near-ties.
  if (isGate)
    stream.scale *= 4.0;
  stream.shift = isNorm ? 1.0 : 0.0;
  return stream;
}

namespace {

void randomTensorF32(const plan::Weight &w, uint64_t seed, float *dst) {
  RandomWeightStream stream = randomWeightStream(w, seed);
  const uint64_t state = stream.state;
  const double scale = stream.scale, shift = stream.shift;
  int64_t n = w.numElements();
  // splitmix64 is a counter: element i (even) starts from state + i * gamma,
  // so chunks fill in parallel with exactly the sequential values.
  auto fill = [&](int64_t begin, int64_t end) {
    uint64_t local = state + static_cast<uint64_t>(begin) * 0x9e3779b97f4a7c15ull;
    for (int64_t i = begin; i < end; i += 2) {
      // Box-Muller: two normals from two uniforms in (0, 1].
      double u1 = (static_cast<double>(splitmix64(local) >> 11) + 1.0) * 0x1.0p-53;
      double u2 = static_cast<double>(splitmix64(local) >> 11) * 0x1.0p-53;
      double radius = std::sqrt(-2.0 * std::log(u1));
      double normals[2] = {radius * std::cos(2 * M_PI * u2), radius * std::sin(2 * M_PI * u2)};
      for (int j = 0; j < 2 && i + j < n; ++j) {
        double value = normals[j] * scale + shift;
        dst[i + j] = roundTo(w.type, static_cast<float>(value));
      }
    }
  };
  int64_t workers = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()),
                                      n / (1 << 20) + 1);
  if (workers == 1) {
    fill(0, n);
    return;
  }
  int64_t per = (n / workers + 1) & ~int64_t(1); // even, so pairs stay whole
  std::vector<std::thread> threads;
  for (int64_t begin = 0; begin < n; begin += per)
    threads.emplace_back(fill, begin, std::min(n, begin + per));
  for (std::thread &t : threads)
    t.join();
}

} // namespace

void randomWeightF32(const plan::Weight &w, uint64_t seed, float *dst) {
  // A fused weight draws each part's own stream, as the unfused plan did.
  for (const auto &[part, row] : plan::weightParts(w))
    randomTensorF32(part, seed, dst + row * w.shape.back());
}

namespace {

Status checkpointTensorF32(const CheckpointBinding &binding, const plan::Weight &w, float *dst) {
  size_t placeholder = w.binding.find("{e}");
  if (placeholder == std::string::npos) {
    StatusOr<WeightRef> ref = parseCanonicalWeightName(w.binding);
    if (!ref)
      return Status::error("weight '" + w.symbol + "': " + ref.status().message());
    if (binding.expectedShape(*ref) != w.shape)
      return Status::error("weight '" + w.symbol + "': the plan's shape disagrees with the config");
    return binding.readWeightF32(*ref, dst);
  }
  // Stacked experts: [E, rows, cols] from E per-expert tensors.
  if (w.shape.size() != 3)
    return Status::error("weight '" + w.symbol + "': expert bindings need a rank-3 shape");
  int64_t perExpert = w.shape[1] * w.shape[2];
  for (int64_t e = 0; e < w.shape[0]; ++e) {
    std::string name = w.binding;
    name.replace(placeholder, 3, std::to_string(e));
    StatusOr<WeightRef> ref = parseCanonicalWeightName(name);
    if (!ref)
      return Status::error("weight '" + w.symbol + "': " + ref.status().message());
    std::vector<int64_t> expected = {w.shape[1], w.shape[2]};
    if (binding.expectedShape(*ref) != expected)
      return Status::error("weight '" + w.symbol + "': the plan's shape disagrees with the config");
    M2C_RETURN_IF_ERROR(binding.readWeightF32(*ref, dst + e * perExpert));
  }
  return Status::ok();
}

} // namespace

Status checkpointWeightF32(const CheckpointBinding &binding, const plan::Weight &w, float *dst) {
  for (const auto &[part, row] : plan::weightParts(w))
    M2C_RETURN_IF_ERROR(checkpointTensorF32(binding, part, dst + row * w.shape.back()));
  return Status::ok();
}

Status embeddedWeightF32(const Artifact &artifact, const plan::Weight &w, float *dst) {
  const uint8_t *src = artifact.weightData() + w.storage.offset;
  int64_t n = w.numElements();
  if (w.quantization != plan::Quantization::None) {
    unpackQuantized(w, src, dst);
    return Status::ok();
  }
  switch (w.storage.type) {
  case plan::ElementType::F32:
    std::memcpy(dst, src, n * sizeof(float));
    return Status::ok();
  case plan::ElementType::BF16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, src + 2 * i, 2);
      dst[i] = bf16ToF32(bits);
    }
    return Status::ok();
  case plan::ElementType::F16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, src + 2 * i, 2);
      dst[i] = f16ToF32(bits);
    }
    return Status::ok();
  case plan::ElementType::I32:
    break;
  }
  return Status::error("weight '" + w.symbol + "': unsupported storage type " +
                       plan::elementTypeName(w.storage.type));
}

StatusOr<std::string> checkpointFingerprint(const std::string &path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    return Status::error(path + ": cannot read checkpoint");
  std::vector<std::string> files;
  std::string directory = path;
  if (S_ISDIR(info.st_mode)) {
    DIR *dir = opendir(path.c_str());
    if (!dir)
      return Status::error(path + ": cannot list checkpoint directory");
    while (dirent *entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (endsWith(name, ".safetensors") || endsWith(name, ".safetensors.index.json"))
        files.push_back(name);
    }
    closedir(dir);
  } else {
    size_t slash = path.rfind('/');
    directory = slash == std::string::npos ? "." : path.substr(0, slash);
    files.push_back(slash == std::string::npos ? path : path.substr(slash + 1));
  }
  std::sort(files.begin(), files.end());
  Checksum checksum;
  for (const std::string &name : files) {
    std::string file = directory + "/" + name;
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return Status::error(file + ": cannot read");
    in.seekg(0, std::ios::end);
    uint64_t size = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    // The safetensors header (or the whole index) identifies the content.
    uint64_t headerBytes = 0;
    if (endsWith(name, ".safetensors") && size >= 8) {
      uint8_t prefix[8];
      in.read(reinterpret_cast<char *>(prefix), 8);
      for (int i = 7; i >= 0; --i)
        headerBytes = (headerBytes << 8) | prefix[i];
      headerBytes = std::min<uint64_t>(headerBytes + 8, size);
      in.seekg(0);
    } else {
      headerBytes = std::min<uint64_t>(size, 64u << 20);
    }
    std::vector<char> bytes(headerBytes);
    in.read(bytes.data(), static_cast<std::streamsize>(headerBytes));
    checksum.update(reinterpret_cast<const uint8_t *>(name.data()), name.size());
    checksum.update(reinterpret_cast<const uint8_t *>(&size), sizeof(size));
    checksum.update(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
  }
  if (files.empty())
    return Status::error(path + ": no safetensors files");
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(checksum.value()));
  return std::string(text);
}

struct WeightReader::Bound {
  ModelConfig config;
  std::optional<Checkpoint> checkpoint;
  std::optional<CheckpointBinding> binding;
};

WeightReader::WeightReader() = default;
WeightReader::~WeightReader() = default;

const Checkpoint *WeightReader::checkpoint() const {
  return bound_ ? &*bound_->checkpoint : nullptr;
}

const ModelConfig *WeightReader::config() const { return bound_ ? &bound_->config : nullptr; }

StatusOr<std::unique_ptr<WeightReader>> WeightReader::open(const plan::Plan &plan,
                                                           const Artifact *artifact,
                                                           const WeightSourceOptions &options) {
  std::unique_ptr<WeightReader> reader(new WeightReader());
  if (options.random) {
    reader->random_ = true;
    reader->seed_ = options.seed;
    return reader;
  }
  if (artifact && plan.weightsMode == "embed") {
    reader->artifact_ = artifact;
    return reader;
  }
  if (options.checkpointPath.empty() && plan.weightsMode != "external")
    return Status::error("the artifact holds no weights: pass --random-weights or a checkpoint");
  std::string path = options.checkpointPath.empty() ? plan.checkpointPath : options.checkpointPath;
  if (options.checkpointPath.empty()) {
    StatusOr<std::string> fingerprint = checkpointFingerprint(path);
    if (!fingerprint)
      return fingerprint.status();
    if (*fingerprint != plan.checkpointFingerprint)
      return Status::error(path + ": checkpoint changed since the artifact was compiled "
                                  "(fingerprint " + *fingerprint + ", expected " +
                           plan.checkpointFingerprint + ")");
  }
  StatusOr<ModelConfig> config = parseModelConfig(plan.configJson, "artifact config");
  if (!config)
    return config.status();
  StatusOr<Checkpoint> opened = Checkpoint::open(path);
  if (!opened)
    return opened.status();
  // Heap-held and never moved: the binding points into the checkpoint.
  reader->bound_ = std::make_unique<Bound>();
  reader->bound_->config = config.take();
  reader->bound_->checkpoint.emplace(opened.take());
  StatusOr<CheckpointBinding> bound =
      CheckpointBinding::create(*reader->bound_->checkpoint, reader->bound_->config);
  if (!bound)
    return bound.status();
  reader->bound_->binding.emplace(bound.take());
  return reader;
}

Status WeightReader::read(const plan::Weight &w, float *dst) const {
  if (random_) {
    randomWeightF32(w, seed_, dst);
    return Status::ok();
  }
  if (artifact_)
    return embeddedWeightF32(*artifact_, w, dst);
  return checkpointWeightF32(*bound_->binding, w, dst);
}

Status WeightReader::readPacked(const plan::Weight &w, uint8_t *dst) const {
  if (w.quantization == plan::Quantization::None)
    return Status::error("weight '" + w.symbol + "' is not quantized");
  if (artifact_) {
    std::memcpy(dst, artifact_->weightData() + w.storage.offset, w.storageBytes());
    return Status::ok();
  }
  std::vector<float> values(static_cast<size_t>(w.numElements()));
  M2C_RETURN_IF_ERROR(read(w, values.data()));
  packQuantized(w, values.data(), dst);
  return Status::ok();
}

StatusOr<WeightSet> loadWeights(const plan::Plan &plan, const Artifact *artifact,
                                const WeightSourceOptions &options) {
  StatusOr<std::unique_ptr<WeightReader>> reader = WeightReader::open(plan, artifact, options);
  if (!reader)
    return reader.status();
  WeightSet set;
  set.tensors.resize(plan.weights.size());
  uint64_t bytesDone = 0;
  for (size_t i = 0; i < plan.weights.size(); ++i) {
    const plan::Weight &w = plan.weights[i];
    std::vector<float> &dst = set.tensors[i];
    dst.resize(static_cast<size_t>(w.numElements()));
    M2C_RETURN_IF_ERROR((*reader)->read(w, dst.data()));
    if (!(*reader)->quantized() && !options.fullPrecision)
      fakeQuantize(w, dst.data());
    bytesDone += dst.size() * plan::elementSize(w.type);
    if (options.progress)
      options.progress(i + 1, plan.weights.size(), bytesDone);
  }
  return set;
}

} // namespace m2c
