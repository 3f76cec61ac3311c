//===- Manifest.cpp - The launch ABI of a plan's kernels as JSON ----------===//

#include "codegen/ptx/PtxCodegen.h"

namespace m2c::ptx {
namespace {

llvm::json::Object extentJson(const plan::GpuExtent &extent) {
  return llvm::json::Object{{"constant", extent.constant},
                            {"token_scale", extent.tokenScale},
                            {"token_divisor", extent.tokenDivisor},
                            {"offset", extent.offset}};
}

} // namespace

llvm::json::Value planPtxManifest(const plan::Plan &plan, const PlanPtx &result) {
  llvm::json::Array kernels;
  for (const KernelBinary &binary : result.kernels) {
    llvm::json::Array launches;
    for (const plan::GpuLaunch &launch : binary.launches) {
      llvm::json::Array params;
      for (const plan::GpuParam &param : launch.params) {
        llvm::json::Object p{{"kind", plan::GpuParam::kindName(param.kind)}, {"index", param.index}};
        if (param.kind == plan::GpuParam::Kind::TensorMap)
          p["box"] = llvm::json::Array{param.box[0], param.box[1]};
        params.push_back(std::move(p));
      }
      launches.push_back(llvm::json::Object{
          {"entry", launch.entry},
          {"grid", llvm::json::Array{extentJson(launch.grid[0]), extentJson(launch.grid[1]),
                                     extentJson(launch.grid[2])}},
          {"block", llvm::json::Array{launch.block[0], launch.block[1], launch.block[2]}},
          {"shared_bytes", launch.sharedBytes},
          {"for_candidates", launch.forCandidates},
          {"params", std::move(params)}});
    }
    kernels.push_back(llvm::json::Object{{"name", binary.name},
                                         {"signature", binary.key},
                                         {"ptx_file", binary.name + ".ptx"},
                                         {"workspace_bytes", binary.workspaceBytes},
                                         {"state_bytes", binary.stateBytes},
                                         {"launches", std::move(launches)}});
  }
  llvm::json::Array entries;
  for (size_t e = 0; e < plan.entries.size(); ++e) {
    llvm::json::Array ids;
    for (int64_t id : result.kernelOf[e])
      ids.push_back(id);
    entries.push_back(
        llvm::json::Object{{"name", plan.entries[e].name}, {"kernels", std::move(ids)}});
  }
  return llvm::json::Object{{"format", "m2c-ptx-manifest"},
                            {"target", ptxTargetName(result.target)},
                            {"kernels", std::move(kernels)},
                            {"entries", std::move(entries)}};
}


} // namespace m2c::ptx
