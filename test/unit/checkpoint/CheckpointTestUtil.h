//===- CheckpointTestUtil.h - Temp dirs and tiny MiniMax-M2 checkpoints ---===//
//
// Tests build their checkpoints with SafeTensorsWriter into a temp dir, so
// no binary fixtures are checked in. The tiny model's sizes are chosen so
// that 4x4 FP8 blocks leave partial edge blocks (hidden 10, heads of 3).
//
//===----------------------------------------------------------------------===//
#ifndef M2C_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H
#define M2C_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H

#include "runtime/checkpoint/SafeTensors.h"
#include "runtime/model/ModelConfig.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace m2c {
namespace test {

/// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base && *base ? base : "/tmp") + "/m2c-ckpt-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (char *made = ::mkdtemp(buf.data()))
      path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

inline void writeBytes(const std::string &path,
                       const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline void writeText(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// A raw file: declared header length, header text, then `dataBytes` bytes.
inline std::vector<uint8_t> rawSafeTensors(const std::string &header,
                                           size_t dataBytes,
                                           uint64_t declaredLength = ~0ull) {
  uint64_t n = declaredLength == ~0ull ? header.size() : declaredLength;
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + dataBytes, 0xab);
  return out;
}

/// A hand-filled config (ModelConfig.cpp's parser is not needed).
inline ModelConfig tinyConfig() {
  ModelConfig c;
  c.vocabSize = 12;
  c.hiddenSize = 10;
  c.intermediateSize = 8;
  c.numHiddenLayers = 2;
  c.numAttentionHeads = 2;
  c.numKeyValueHeads = 1;
  c.headDim = 3;
  c.rotaryDim = 2;
  c.ropeTheta = 5e6;
  c.numLocalExperts = 3;
  c.numExpertsPerTok = 2;
  c.quantization.blockRows = 4;
  c.quantization.blockCols = 4;
  return c;
}

struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;
};

/// Every tensor of the original layout, derived independently of
/// CheckpointBinding so that the tests cross-check it.
inline std::vector<NamedShape> originalTensors(const ModelConfig &c) {
  const int64_t V = c.vocabSize, Hd = c.hiddenSize, I = c.intermediateSize,
                Q = c.numAttentionHeads * c.headDim,
                KV = c.numKeyValueHeads * c.headDim, E = c.numLocalExperts;
  std::vector<NamedShape> out = {{"model.embed_tokens.weight", {V, Hd}},
                                 {"model.norm.weight", {Hd}}};
  if (!c.tieWordEmbeddings)
    out.push_back({"lm_head.weight", {V, Hd}});
  for (int64_t l = 0; l < c.numHiddenLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {Hd}});
    out.push_back({p + "post_attention_layernorm.weight", {Hd}});
    out.push_back({p + "self_attn.q_proj.weight", {Q, Hd}});
    out.push_back({p + "self_attn.k_proj.weight", {KV, Hd}});
    out.push_back({p + "self_attn.v_proj.weight", {KV, Hd}});
    out.push_back({p + "self_attn.o_proj.weight", {Hd, Q}});
    out.push_back({p + "self_attn.q_norm.weight", {Q}});
    out.push_back({p + "self_attn.k_norm.weight", {KV}});
    out.push_back({p + "block_sparse_moe.gate.weight", {E, Hd}});
    out.push_back({p + "block_sparse_moe.e_score_correction_bias", {E}});
    for (int64_t e = 0; e < E; ++e) {
      std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      out.push_back({x + "w1.weight", {I, Hd}});
      out.push_back({x + "w2.weight", {Hd, I}});
      out.push_back({x + "w3.weight", {I, Hd}});
    }
  }
  return out;
}

/// Deterministic f32 values for every original-layout tensor.
inline std::map<std::string, std::vector<float>>
randomWeights(const ModelConfig &c, uint32_t seed = 1234) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::map<std::string, std::vector<float>> out;
  for (const NamedShape &t : originalTensors(c)) {
    std::vector<float> v(static_cast<size_t>(numElements(t.shape)));
    for (float &x : v)
      x = dist(rng);
    out[t.name] = std::move(v);
  }
  return out;
}

enum class ExpertLayoutForTest { Original, Packed };

struct TinyCheckpointOptions {
  ExpertLayoutForTest layout = ExpertLayoutForTest::Original;
  /// Dtype of the quantizable matrices (q/k/v/o, experts); others are F32.
  DType matrixDtype = DType::F32;
  /// 0 writes model.safetensors; N > 0 writes N shards and an index.
  int shards = 0;
  /// Names to leave out, and extra tensors to add.
  std::vector<std::string> omit;
  std::map<std::string, std::vector<float>> extra;
};

/// FP8-quantizes a [M, R, C] tensor with per-matrix block scale grids.
inline void quantizeFp8(const std::vector<float> &w, int64_t M, int64_t R,
                        int64_t C, int64_t br, int64_t bc,
                        std::vector<uint8_t> &codes,
                        std::vector<float> &scaleInv) {
  const int64_t SR = (R + br - 1) / br, SC = (C + bc - 1) / bc;
  codes.assign(w.size(), 0);
  scaleInv.assign(static_cast<size_t>(M * SR * SC), 1.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t sr = 0; sr < SR; ++sr)
      for (int64_t sc = 0; sc < SC; ++sc) {
        float amax = 0;
        for (int64_t r = sr * br; r < std::min(R, (sr + 1) * br); ++r)
          for (int64_t col = sc * bc; col < std::min(C, (sc + 1) * bc); ++col)
            amax = std::max(amax, std::fabs(w[(m * R + r) * C + col]));
        float s = amax > 0 ? amax / 448.0f : 1.0f;
        scaleInv[(m * SR + sr) * SC + sc] = s;
        for (int64_t r = sr * br; r < std::min(R, (sr + 1) * br); ++r)
          for (int64_t col = sc * bc; col < std::min(C, (sc + 1) * bc); ++col)
            codes[(m * R + r) * C + col] =
                f32ToF8e4m3(w[(m * R + r) * C + col] / s);
      }
}

bool isQuantizable(const std::string &name);

/// Writes a tiny checkpoint; returns "" or the first writer error.
std::string writeTinyCheckpoint(const std::string &dir, const ModelConfig &c,
                                const std::map<std::string, std::vector<float>>
                                    &weights,
                                const TinyCheckpointOptions &options);

} // namespace test
} // namespace m2c

#endif // M2C_TEST_UNIT_CHECKPOINT_CHECKPOINTTESTUTIL_H
