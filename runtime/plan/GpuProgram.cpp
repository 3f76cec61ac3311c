//===- GpuProgram.cpp - GPU kernels of a plan as JSON, read defensively ---===//

#include "runtime/plan/GpuProgram.h"
#include "runtime/plan/Plan.h"

#include <nlohmann/json.hpp>

#include <initializer_list>

namespace m2c::plan {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char *kParamKinds[] = {"input",      "output",     "kv_cache_layer", "workspace",
                                       "num_tokens", "max_blocks", "state",          "tensor_map"};
constexpr int kNumParamKinds = sizeof(kParamKinds) / sizeof(kParamKinds[0]);

ordered_json extentToJson(const GpuExtent &e) {
  return {{"constant", e.constant},
          {"token_scale", e.tokenScale},
          {"token_divisor", e.tokenDivisor},
          {"offset", e.offset}};
}

Status fail(const std::string &path, const std::string &why) {
  return Status::error("gpu program: " + path + ": " + why);
}

/// Whether `node` is an object whose `keys` all hold strings.
bool hasStrings(const json &node, std::initializer_list<const char *> keys) {
  if (!node.is_object())
    return false;
  for (const char *key : keys)
    if (!node.contains(key) || !node[key].is_string())
      return false;
  return true;
}

bool readInt(const json &node, const char *key, int64_t &out, int64_t min, int64_t max) {
  if (!node.is_object() || !node.contains(key) || !node[key].is_number_integer())
    return false;
  out = node[key].get<int64_t>();
  return out >= min && out <= max;
}

/// A stand-alone kernel's block size: whole warps, at most 1024 threads.
bool readWarpBlock(const json &node, int64_t &block) {
  return readInt(node, "block", block, 32, 1024) && block % 32 == 0;
}

} // namespace

std::string GpuExtent::str() const {
  if (tokenScale == 0)
    return std::to_string(constant);
  std::string t = tokenScale == 1 ? "T" : "T*" + std::to_string(tokenScale);
  if (tokenDivisor != 1)
    t = "ceil(" + t + "/" + std::to_string(tokenDivisor) + ")";
  if (constant != 1)
    t = std::to_string(constant) + "*" + t;
  if (offset)
    t += "+" + std::to_string(offset);
  return t;
}

const char *GpuParam::kindName(Kind kind) {
  int k = static_cast<int>(kind);
  return k >= 0 && k < kNumParamKinds ? kParamKinds[k] : "?";
}

std::string gpuProgramToJson(const GpuProgram &program) {
  ordered_json root;
  root["target"] = program.target;
  root["grid_dependency_control"] = program.gridDependencyControl;
  ordered_json kernels = ordered_json::array();
  for (const GpuKernel &k : program.kernels) {
    ordered_json launches = ordered_json::array();
    for (const GpuLaunch &l : k.launches) {
      ordered_json params = ordered_json::array();
      for (const GpuParam &p : l.params) {
        params.push_back({{"kind", GpuParam::kindName(p.kind)}, {"index", p.index}});
        if (p.kind == GpuParam::Kind::TensorMap)
          params.back()["box"] = p.box;
      }
      launches.push_back({{"entry", l.entry},
                          {"grid", {extentToJson(l.grid[0]), extentToJson(l.grid[1]),
                                    extentToJson(l.grid[2])}},
                          {"block", l.block},
                          {"shared_bytes", l.sharedBytes},
                          {"params", std::move(params)}});
      if (l.forCandidates)
        launches.back()["for_candidates"] = true;
    }
    ordered_json kernel = {{"name", k.name}, {"workspace_bytes", k.workspaceBytes}};
    if (k.stateBytes)
      kernel["state_bytes"] = k.stateBytes;
    kernel["launches"] = std::move(launches);
    kernel["ptx"] = k.ptx;
    kernels.push_back(std::move(kernel));
  }
  root["kernels"] = std::move(kernels);
  root["kernel_of"] = program.kernelOf;
  ordered_json fills = ordered_json::array();
  for (const GpuRandomFill &f : program.randomFills)
    fills.push_back({{"logical", elementTypeName(f.logical)},
                     {"storage", elementTypeName(f.storage)},
                     {"name", f.name},
                     {"block", f.block},
                     {"ptx", f.ptx}});
  root["random_fills"] = std::move(fills);
  ordered_json packs = ordered_json::array();
  for (const GpuPackKernel &p : program.packKernels)
    packs.push_back({{"quantization", quantizationName(p.quantization)},
                     {"name", p.name},
                     {"block", p.block},
                     {"ptx", p.ptx}});
  root["pack_kernels"] = std::move(packs);
  return root.dump(1);
}

std::array<int64_t, 3> packGrid(Quantization q, int64_t rows, int64_t cols) {
  if (q == Quantization::None)
    return {0, 0, 0};
  // One block per scale group.
  const QuantFormat &f = quantFormat(q);
  return {f.scaleRows(rows), f.scaleCols(cols), 1};
}

StatusOr<GpuProgram> gpuProgramFromJson(const std::string &text, const Plan &plan) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    return Status::error("gpu program: not a JSON object");
  GpuProgram program;
  if (!root.contains("target") || !root["target"].is_string())
    return fail("target", "expected a string");
  program.target = root["target"].get<std::string>();
  // Absent in artifacts compiled before programmatic dependent launch.
  if (root.contains("grid_dependency_control")) {
    if (!root["grid_dependency_control"].is_boolean())
      return fail("grid_dependency_control", "expected true or false");
    program.gridDependencyControl = root["grid_dependency_control"].get<bool>();
  }
  if (!root.contains("kernels") || !root["kernels"].is_array())
    return fail("kernels", "expected an array");
  constexpr int64_t kMax = int64_t(1) << 31;
  for (size_t i = 0; i < root["kernels"].size(); ++i) {
    const json &node = root["kernels"][i];
    std::string path = "kernels[" + std::to_string(i) + "]";
    GpuKernel kernel;
    if (!hasStrings(node, {"name", "ptx"}))
      return fail(path, "expected an object with a name and ptx");
    kernel.name = node["name"].get<std::string>();
    kernel.ptx = node["ptx"].get<std::string>();
    if (!readInt(node, "workspace_bytes", kernel.workspaceBytes, 0, int64_t(1) << 40))
      return fail(path + ".workspace_bytes", "expected a non-negative integer");
    if (node.contains("state_bytes") &&
        !readInt(node, "state_bytes", kernel.stateBytes, 0, int64_t(1) << 30))
      return fail(path + ".state_bytes", "expected 0 to 1 GiB");
    if (!node.contains("launches") || !node["launches"].is_array() || node["launches"].empty())
      return fail(path + ".launches", "expected a non-empty array");
    for (size_t j = 0; j < node["launches"].size(); ++j) {
      const json &l = node["launches"][j];
      std::string lpath = path + ".launches[" + std::to_string(j) + "]";
      GpuLaunch launch;
      if (!hasStrings(l, {"entry"}))
        return fail(lpath, "expected an object with an entry name");
      launch.entry = l["entry"].get<std::string>();
      if (!l.contains("grid") || !l["grid"].is_array() || l["grid"].size() != 3 ||
          !l.contains("block") || !l["block"].is_array() || l["block"].size() != 3)
        return fail(lpath, "expected a 3-D grid and block");
      for (int d = 0; d < 3; ++d) {
        GpuExtent &e = launch.grid[d];
        if (!readInt(l["grid"][d], "constant", e.constant, 1, kMax) ||
            !readInt(l["grid"][d], "token_scale", e.tokenScale, 0, kMax) ||
            !readInt(l["grid"][d], "token_divisor", e.tokenDivisor, 1, kMax) ||
            !readInt(l["grid"][d], "offset", e.offset, 0, kMax))
          return fail(lpath + ".grid", "extents must be positive integers");
        if (!l["block"][d].is_number_integer() || l["block"][d].get<int64_t>() < 1 ||
            l["block"][d].get<int64_t>() > 1024)
          return fail(lpath + ".block", "block sizes must be in [1, 1024]");
        launch.block[d] = l["block"][d].get<int64_t>();
      }
      if (launch.block[0] * launch.block[1] * launch.block[2] > 1024)
        return fail(lpath + ".block", "more than 1024 threads per block");
      if (!readInt(l, "shared_bytes", launch.sharedBytes, 0, 256 * 1024))
        return fail(lpath + ".shared_bytes", "expected 0 to 256 KiB");
      if (l.contains("for_candidates")) {
        if (!l["for_candidates"].is_boolean())
          return fail(lpath + ".for_candidates", "expected a boolean");
        launch.forCandidates = l["for_candidates"].get<bool>();
      }
      if (!l.contains("params") || !l["params"].is_array())
        return fail(lpath + ".params", "expected an array");
      for (const json &p : l["params"]) {
        GpuParam param;
        if (!hasStrings(p, {"kind"}))
          return fail(lpath + ".params", "expected {kind, index} objects");
        std::string kind = p["kind"].get<std::string>();
        int k = 0;
        while (k < kNumParamKinds && kind != kParamKinds[k])
          ++k;
        if (k == kNumParamKinds)
          return fail(lpath + ".params", "unknown parameter kind '" + kind + "'");
        param.kind = static_cast<GpuParam::Kind>(k);
        if (!readInt(p, "index", param.index, 0, kMax))
          return fail(lpath + ".params", "expected a non-negative index");
        if (param.kind == GpuParam::Kind::State && param.index >= kernel.stateBytes)
          return fail(lpath + ".params", "a state offset lies outside the kernel's state");
        if (param.kind == GpuParam::Kind::Workspace && param.index > kernel.workspaceBytes)
          return fail(lpath + ".params", "a workspace offset lies outside the workspace");
        if (param.kind == GpuParam::Kind::TensorMap) {
          // The copy engine's limits: at most 256 elements a box side.
          bool valid = p.contains("box") && p["box"].is_array() && p["box"].size() == 2;
          for (size_t d = 0; valid && d < 2; ++d) {
            valid = p["box"][d].is_number_integer() && p["box"][d].get<int64_t>() >= 1 &&
                    p["box"][d].get<int64_t>() <= 256;
            if (valid)
              param.box[d] = p["box"][d].get<int64_t>();
          }
          if (!valid)
            return fail(lpath + ".params", "a tensor_map needs a box of two sides in [1, 256]");
        }
        launch.params.push_back(param);
      }
      kernel.launches.push_back(std::move(launch));
    }
    program.kernels.push_back(std::move(kernel));
  }
  if (!root.contains("kernel_of") || !root["kernel_of"].is_array() ||
      root["kernel_of"].size() != plan.entries.size())
    return fail("kernel_of", "expected one list per entry point");
  for (size_t e = 0; e < plan.entries.size(); ++e) {
    const json &list = root["kernel_of"][e];
    if (!list.is_array() || list.size() != plan.entries[e].kernels.size())
      return fail("kernel_of[" + std::to_string(e) + "]", "expected one index per plan kernel");
    std::vector<int64_t> row;
    for (size_t k = 0; k < list.size(); ++k) {
      if (!list[k].is_number_integer() || list[k].get<int64_t>() < 0 ||
          list[k].get<int64_t>() >= static_cast<int64_t>(program.kernels.size()))
        return fail("kernel_of", "index out of range");
      int64_t index = list[k].get<int64_t>();
      // Every pointer parameter must name an operand the plan kernel has.
      const Kernel &planKernel = plan.entries[e].kernels[k];
      for (const GpuLaunch &launch : program.kernels[index].launches)
        for (const GpuParam &p : launch.params) {
          if (((p.kind == GpuParam::Kind::Input || p.kind == GpuParam::Kind::TensorMap) &&
               p.index >= static_cast<int64_t>(planKernel.inputs.size())) ||
              (p.kind == GpuParam::Kind::Output &&
               p.index >= static_cast<int64_t>(planKernel.outputs.size())))
            return fail("kernel_of", "kernel '" + program.kernels[index].name +
                                         "' reads an operand plan kernel '" + planKernel.name +
                                         "' does not have");
          if (p.kind != GpuParam::Kind::TensorMap)
            continue;
          const Operand &op = planKernel.inputs[p.index];
          const Weight *w = op.kind == Operand::Kind::Weight ? &plan.weights[op.index] : nullptr;
          // The map covers the stored matrix as [rows, last dimension]
          // (stacked experts' leading dimensions folded into the rows): rows
          // 16-byte aligned, one box row one 128-byte swizzle row.
          if (!w || w->quantization != Quantization::None || w->shape.size() < 2 ||
              (w->shape.back() * elementSize(w->storage.type)) % 16 != 0 ||
              p.box[1] * elementSize(w->storage.type) != 128)
            return fail("kernel_of", "kernel '" + program.kernels[index].name + "' maps input " +
                                         std::to_string(p.index) + " of plan kernel '" +
                                         planKernel.name +
                                         "' as a tensor, which needs an unpacked weight "
                                         "with 128-byte box rows");
        }
      row.push_back(index);
    }
    program.kernelOf.push_back(std::move(row));
  }
  // Optional: artifacts from before random fills have none.
  if (root.contains("random_fills")) {
    const json &fills = root["random_fills"];
    if (!fills.is_array())
      return fail("random_fills", "expected an array");
    for (size_t i = 0; i < fills.size(); ++i) {
      const json &node = fills[i];
      std::string path = "random_fills[" + std::to_string(i) + "]";
      GpuRandomFill fill;
      if (!hasStrings(node, {"logical", "storage", "name", "ptx"}))
        return fail(path, "expected an object with logical, storage, name and ptx");
      StatusOr<ElementType> logical = parseElementType(node["logical"].get<std::string>());
      StatusOr<ElementType> storage = parseElementType(node["storage"].get<std::string>());
      if (!logical || !storage)
        return fail(path, "unknown element type");
      fill.logical = *logical;
      fill.storage = *storage;
      fill.name = node["name"].get<std::string>();
      fill.ptx = node["ptx"].get<std::string>();
      if (!readWarpBlock(node, fill.block))
        return fail(path + ".block", "expected whole warps, at most 1024 threads");
      program.randomFills.push_back(std::move(fill));
    }
  }
  // Optional: artifacts without quantized weights, or from before, have none.
  if (root.contains("pack_kernels")) {
    const json &packs = root["pack_kernels"];
    if (!packs.is_array())
      return fail("pack_kernels", "expected an array");
    for (size_t i = 0; i < packs.size(); ++i) {
      const json &node = packs[i];
      std::string path = "pack_kernels[" + std::to_string(i) + "]";
      if (!hasStrings(node, {"quantization", "name", "ptx"}))
        return fail(path, "expected an object with quantization, name and ptx");
      StatusOr<Quantization> q = parseQuantization(node["quantization"].get<std::string>());
      if (!q || *q == Quantization::None)
        return fail(path + ".quantization", "expected int8, int4_g128 or fp8_block128");
      GpuPackKernel pack;
      pack.quantization = *q;
      pack.name = node["name"].get<std::string>();
      pack.ptx = node["ptx"].get<std::string>();
      if (!readWarpBlock(node, pack.block))
        return fail(path + ".block", "expected whole warps, at most 1024 threads");
      program.packKernels.push_back(std::move(pack));
    }
  }
  return program;
}

} // namespace m2c::plan
