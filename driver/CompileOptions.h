//===- CompileOptions.h - What compiling a model takes, typed and checked -===//
//
// Every front door that compiles a model (m2c compile, tune, and run and
// chat when they compile in memory) fills one CompileOptions from its flags
// and resolves it here: the values are checked once, with errors that name
// the flag as users type it, and turned into the frontend, pipeline and plan
// options of the compile driver. Flags map; nothing is decided in tools/.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_DRIVER_COMPILEOPTIONS_H
#define M2C_DRIVER_COMPILEOPTIONS_H

#include <cstdint>
#include <string>
#include <vector>

namespace m2c::driver {

struct CompileOptions {
  std::string model; ///< preset, directory or config.json
  std::vector<std::string> overrides; ///< --set KEY=VALUE
  std::string target = "cpu";         ///< cpu, sm_80, sm_90 or sm_90a
  /// Reject the cpu target (m2c tune tiles GPU plans only).
  bool gpuOnly = false;
  int64_t maxTokens = 1024;  ///< tokens per step the plan is sized for
  int64_t kvBlockSize = 16;  ///< tokens per KV-cache block
  /// f32, bf16 or f16; empty: f32 for the cpu target, bf16 for GPUs.
  std::string kvCacheType;
  std::string quant; ///< --quant CLASS=FORMAT,...
  std::vector<std::string> disabledPasses;
  std::vector<std::string> printIrAfter;
  bool printIrAfterAll = false;
  int64_t samplingCandidates = 64;
  std::string tuningFile; ///< GPU targets only
};

/// "cpu, sm_80, sm_90 or sm_90a" (without cpu when GPU targets only).
std::string compileTargets(bool gpuOnly);
bool isGpuTarget(const std::string &target);

} // namespace m2c::driver

#endif // M2C_DRIVER_COMPILEOPTIONS_H
