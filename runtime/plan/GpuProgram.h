//===- GpuProgram.h - Compiled GPU kernels of a plan, for the runtime -----===//
//
// What a GPU artifact carries besides the plan: each unique kernel's PTX,
// and per launch its entry name, launch geometry (a function of the step's
// token count), dynamic shared memory and parameter ABI; and which compiled
// kernel runs each plan kernel. The CUDA backend needs nothing else to
// launch a plan. No MLIR here; codegen/ptx produces it.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_PLAN_GPUPROGRAM_H
#define M2C_RUNTIME_PLAN_GPUPROGRAM_H

#include "runtime/plan/ElementType.h"
#include "runtime/plan/Quantization.h"
#include "runtime/support/Status.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace m2c::plan {

struct Plan;

/// constant, or constant * ceil(T * tokenScale / tokenDivisor) + offset
/// when tokenScale > 0, for a step of T tokens.
struct GpuExtent {
  int64_t constant = 1;
  int64_t tokenScale = 0;
  int64_t tokenDivisor = 1;
  int64_t offset = 0;

  static GpuExtent fixed(int64_t value) { return {value, 0, 1, 0}; }
  static GpuExtent tokens(int64_t scale = 1, int64_t divisor = 1, int64_t times = 1,
                          int64_t offset = 0) {
    return {times, scale, divisor, offset};
  }
  int64_t evaluate(int64_t tokens) const {
    if (tokenScale == 0)
      return constant;
    return constant * ((tokens * tokenScale + tokenDivisor - 1) / tokenDivisor) + offset;
  }
  /// "3", "T", "ceil(T*8/64)", "48*T", "ceil(T*8/64)+256".
  std::string str() const;
};

/// Kernel parameters in PTX order: pointers (16-byte aligned, 64-bit) to
/// the plan kernel's inputs/outputs, to its layer of the KV cache, into the
/// workspace or into the kernel's own state; or i32 scalars.
struct GpuParam {
  enum class Kind : uint8_t {
    Input,
    Output,
    KvCacheLayer,
    Workspace,
    NumTokens,
    MaxBlocks,
    /// The kernel's state + `index` bytes: zeroed once when the backend is
    /// made, kept across steps, never shared with another kernel.
    State,
    /// A CUtensorMap (in device memory) over input `index`, which must be
    /// an unpacked weight, seen as [rows, last dimension] (a stack of
    /// experts' matrices is one tall matrix): tiles of `box` {rows, columns}, with
    /// columns * element bytes = 128 (the 128-byte swizzle), zero fill
    /// past the edges. The backend encodes it once, after the weights load.
    TensorMap,
  };
  Kind kind = Kind::Input;
  int64_t index = 0;
  std::array<int64_t, 2> box = {0, 0}; ///< TensorMap only

  /// "input", "kv_cache_layer", ...: as in artifacts and manifests.
  static const char *kindName(Kind kind);
};

struct GpuLaunch {
  std::string entry;
  std::array<GpuExtent, 3> grid;
  std::array<int64_t, 3> block = {1, 1, 1};
  int64_t sharedBytes = 0;
  std::vector<GpuParam> params;
  /// Launched only for steps that read the entry's sampling candidates
  /// (JSON "for_candidates", optional).
  bool forCandidates = false;
};

struct GpuKernel {
  std::string name; // readable in profiles: "m2c_gemv_bf16_n6144_k3072"
  std::string ptx;
  std::vector<GpuLaunch> launches;
  int64_t workspaceBytes = 0;
  /// Bytes of the kernel's state (GpuParam::Kind::State).
  int64_t stateBytes = 0;
};

/// A kernel that writes the seeded random-weight stream (randomWeightF32,
/// runtime/weights/Weights.h) of one weight straight into device memory,
/// for `--random-weights` on the GPU. One per (logical, storage) type pair
/// of the plan's weights. Its ABI is fixed: (dst pointer, count i64,
/// state u64, scale f64, shift f64); one thread per pair of elements.
struct GpuRandomFill {
  ElementType logical = ElementType::BF16;
  ElementType storage = ElementType::BF16;
  std::string name;  // the PTX module's symbol and its entry
  std::string ptx;
  int64_t block = 256;
};

/// A kernel that packs one f32 matrix (a random fill's output, in scratch)
/// into a quantized format exactly as packQuantized does on the host, for
/// `--random-weights` of quantized weights on the GPU. Its ABI is fixed:
/// (src f32*, codes u8*, scales f32*, rows i64, cols i64), one launch per
/// matrix, `block` threads, grid by format (packGrid).
struct GpuPackKernel {
  Quantization quantization = Quantization::None;
  std::string name; // the PTX module's symbol and its entry
  std::string ptx;
  int64_t block = 0;
};
/// The grid of a pack launch: int8 one block per row; int4_g128 one per
/// (row, 128-column group); fp8_block128 one per 128 x 128 block.
std::array<int64_t, 3> packGrid(Quantization q, int64_t rows, int64_t cols);

struct GpuProgram {
  std::string target; // "sm_80", "sm_90" or "sm_90a"
  /// Every kernel begins with griddepcontrol.wait (sm_90+ codegen), so the
  /// runtime may launch them with programmatic dependent launch.
  bool gridDependencyControl = false;
  std::vector<GpuKernel> kernels;
  std::vector<GpuRandomFill> randomFills;
  std::vector<GpuPackKernel> packKernels;
  /// kernelOf[e][k]: the GpuKernel that runs plan.entries[e].kernels[k].
  std::vector<std::vector<int64_t>> kernelOf;
};

std::string gpuProgramToJson(const GpuProgram &program);
/// Reads and checks a program against its plan: every index in range,
/// every launch geometry positive, every parameter index valid.
StatusOr<GpuProgram> gpuProgramFromJson(const std::string &text, const Plan &plan);

} // namespace m2c::plan

#endif // M2C_RUNTIME_PLAN_GPUPROGRAM_H
