//===- ArtifactFuzzer.cpp - libFuzzer target for the artifact loader -------===//
//
// Feeds arbitrary bytes to Artifact::parse. The input's checksum is
// recomputed first, so mutations get past the integrity check and reach the
// plan JSON reader and verifier, which is where hostile input matters. Every
// accepted artifact is then walked the way a backend walks it, so ASan sees
// any index or extent the verifier failed to bound.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace m2c;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= kArtifactHeaderBytes) {
    Checksum checksum;
    checksum.update(bytes.data() + kArtifactHeaderBytes, size - kArtifactHeaderBytes);
    uint64_t value = checksum.value();
    std::memcpy(bytes.data() + 56, &value, 8);
  }
  StatusOr<Artifact> artifact = Artifact::parse(bytes.data(), bytes.size(), "fuzz");
  if (!artifact) {
    if (artifact.status().message().rfind("fuzz: ", 0) != 0)
      std::abort(); // every error names its file
    return 0;
  }
  const plan::Plan &plan = artifact->plan();
  volatile uint8_t sink = 0;
  if (plan.weightsMode == "embed")
    for (const plan::Weight &w : plan.weights)
      if (w.storage.bytes) {
        sink = sink + artifact->weightData()[w.storage.offset];
        sink = sink + artifact->weightData()[w.storage.offset + w.storage.bytes - 1];
      }
  for (const plan::Entry &entry : plan.entries) {
    std::vector<uint8_t> arena(static_cast<size_t>(std::min<int64_t>(entry.arenaBytes, 1 << 26)));
    for (const plan::Kernel &kernel : entry.kernels) {
      for (const plan::Operand &op : kernel.inputs) {
        if (op.kind == plan::Operand::Kind::Buffer) {
          const plan::Buffer &b = entry.buffers.at(op.index);
          int64_t end = b.offset + b.bytesFor(plan.maxTokens);
          if (end > entry.arenaBytes)
            std::abort(); // the verifier promised in-arena buffers
          if (end <= static_cast<int64_t>(arena.size()) && end > 0)
            sink = sink + arena[end - 1];
        } else if (op.kind == plan::Operand::Kind::Weight) {
          sink = sink + static_cast<uint8_t>(plan.weights.at(op.index).shape.size());
        }
      }
      for (int64_t out : kernel.outputs)
        sink = sink + static_cast<uint8_t>(entry.buffers.at(out).cols);
    }
    // The tensor maps the CUDA backend encodes: over an unpacked weight seen
    // as [rows, last dimension], boxes of 128-byte rows.
    size_t e = &entry - plan.entries.data();
    for (size_t k = 0; e < plan.gpu.kernelOf.size() && k < entry.kernels.size(); ++k)
      for (const plan::GpuLaunch &launch :
           plan.gpu.kernels.at(plan.gpu.kernelOf[e].at(k)).launches)
        for (const plan::GpuParam &p : launch.params) {
          if (p.kind != plan::GpuParam::Kind::TensorMap)
            continue;
          const plan::Operand &op = entry.kernels[k].inputs.at(p.index);
          if (op.kind != plan::Operand::Kind::Weight)
            std::abort(); // the verifier promised a weight
          const plan::Weight &w = plan.weights.at(op.index);
          if (w.numElements() / w.shape.back() < 1 || p.box[0] < 1 || p.box[0] > 256 ||
              p.box[1] * plan::elementSize(w.storage.type) != 128)
            std::abort(); // ... and a box the copy engine takes
        }
    // The results a backend copies out after the last kernel.
    sink = sink + static_cast<uint8_t>(entry.buffers.at(entry.output).cols);
    if (entry.greedyIds >= 0 && entry.buffers.at(entry.greedyIds).cols != 1)
      std::abort(); // the verifier promised [rows, 1] ids
    if (entry.candidateIds >= 0) {
      const plan::Buffer &ids = entry.buffers.at(entry.candidateIds);
      const plan::Buffer &values = entry.buffers.at(entry.candidateLogits);
      if (ids.cols != values.cols || ids.cols > plan.vocabSize)
        std::abort(); // the verifier promised [rows, K] pairs, K <= vocab
    }
  }
  return 0;
}
