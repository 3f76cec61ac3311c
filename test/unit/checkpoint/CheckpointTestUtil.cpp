//===- CheckpointTestUtil.cpp - Tiny MiniMax-M2 checkpoints for the tests -===//

#include "CheckpointTestUtil.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace m2c {
namespace test {

bool isQuantizable(const std::string &name) {
  const std::string scaleSuffix = "_scale_inv";
  if (name.size() >= scaleSuffix.size() &&
      name.compare(name.size() - scaleSuffix.size(), scaleSuffix.size(),
                   scaleSuffix) == 0)
    return false;
  for (const char *frag : {"self_attn.q_proj", "self_attn.k_proj",
                           "self_attn.v_proj", "self_attn.o_proj", "experts"})
    if (name.find(frag) != std::string::npos)
      return true;
  return false;
}

namespace {

struct Stored {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

std::string replaceAll(std::string s, const std::string &from,
                       const std::string &to) {
  size_t pos = s.find(from);
  if (pos != std::string::npos)
    s.replace(pos, from.size(), to);
  return s;
}

std::vector<Stored>
storedTensors(const ModelConfig &c,
              const std::map<std::string, std::vector<float>> &weights,
              const TinyCheckpointOptions &options) {
  std::vector<Stored> out;
  const bool packed = options.layout == ExpertLayoutForTest::Packed;
  for (const NamedShape &t : originalTensors(c)) {
    if (packed && t.name.find(".experts.") != std::string::npos)
      continue;
    std::string name = t.name;
    if (packed)
      name = replaceAll(name, "block_sparse_moe.", "mlp.");
    out.push_back({name, t.shape, weights.at(t.name)});
  }
  if (packed) {
    const int64_t E = c.numLocalExperts, I = c.intermediateSize,
                  Hd = c.hiddenSize;
    for (int64_t l = 0; l < c.numHiddenLayers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      Stored gateUp{p + "mlp.experts.gate_up_proj", {E, 2 * I, Hd}, {}};
      Stored down{p + "mlp.experts.down_proj", {E, Hd, I}, {}};
      for (int64_t e = 0; e < E; ++e) {
        std::string x =
            p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        for (const char *w : {"w1.weight", "w3.weight"}) {
          const std::vector<float> &v = weights.at(x + w);
          gateUp.values.insert(gateUp.values.end(), v.begin(), v.end());
        }
        const std::vector<float> &w2 = weights.at(x + "w2.weight");
        down.values.insert(down.values.end(), w2.begin(), w2.end());
      }
      out.push_back(std::move(gateUp));
      out.push_back(std::move(down));
    }
  }
  // Omit first, so that `extra` can replace a tensor with a bad one.
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](const Stored &s) {
                             return std::find(options.omit.begin(),
                                              options.omit.end(),
                                              s.name) != options.omit.end();
                           }),
            out.end());
  for (const auto &kv : options.extra)
    out.push_back({kv.first, {static_cast<int64_t>(kv.second.size())},
                   kv.second});
  return out;
}

} // namespace

std::string writeTinyCheckpoint(
    const std::string &dir, const ModelConfig &c,
    const std::map<std::string, std::vector<float>> &weights,
    const TinyCheckpointOptions &options) {
  std::vector<Stored> tensors = storedTensors(c, weights, options);
  const int shardCount = std::max(1, options.shards);
  std::vector<SafeTensorsWriter> writers(shardCount);
  nlohmann::json weightMap = nlohmann::json::object();
  auto shardName = [&](int k) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", k + 1,
                  shardCount);
    return std::string(buf);
  };

  for (size_t i = 0; i < tensors.size(); ++i) {
    const Stored &t = tensors[i];
    const int k = static_cast<int>(i % shardCount);
    SafeTensorsWriter &w = writers[k];
    Status st;
    const bool quantize = isQuantizable(t.name) &&
                          std::find(options.omit.begin(), options.omit.end(),
                                    t.name + "_scale_inv") ==
                              options.omit.end();
    const bool matrix = t.shape.size() == 2 || t.shape.size() == 3;
    if (isQuantizable(t.name) && matrix &&
        options.matrixDtype == DType::F8_E4M3) {
      const bool is3d = t.shape.size() == 3;
      const int64_t M = is3d ? t.shape[0] : 1;
      const int64_t R = is3d ? t.shape[1] : t.shape[0];
      const int64_t C = is3d ? t.shape[2] : t.shape[1];
      std::vector<uint8_t> codes;
      std::vector<float> scale;
      quantizeFp8(t.values, M, R, C, c.quantization.blockRows,
                  c.quantization.blockCols, codes, scale);
      st = w.addTensor(t.name, DType::F8_E4M3, t.shape, std::move(codes));
      if (st && quantize) {
        std::vector<int64_t> sshape = {(R + c.quantization.blockRows - 1) /
                                           c.quantization.blockRows,
                                       (C + c.quantization.blockCols - 1) /
                                           c.quantization.blockCols};
        if (is3d)
          sshape.insert(sshape.begin(), M);
        st = w.addTensorFromF32(t.name + "_scale_inv", DType::F32, sshape,
                                scale.data());
        weightMap[t.name + "_scale_inv"] = shardName(k);
      }
    } else {
      DType dt = isQuantizable(t.name) && options.matrixDtype != DType::F8_E4M3
                     ? options.matrixDtype
                     : DType::F32;
      st = w.addTensorFromF32(t.name, dt, t.shape, t.values.data());
    }
    if (!st)
      return st.message();
    weightMap[t.name] = shardName(k);
  }

  if (options.shards == 0) {
    Status st = writers[0].write(dir + "/model.safetensors");
    return st ? "" : st.message();
  }
  for (int k = 0; k < shardCount; ++k) {
    Status st = writers[k].write(dir + "/" + shardName(k));
    if (!st)
      return st.message();
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", weightMap}};
  writeText(dir + "/model.safetensors.index.json", index.dump(2));
  return "";
}

} // namespace test
} // namespace m2c
