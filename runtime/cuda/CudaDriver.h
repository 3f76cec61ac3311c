//===- CudaDriver.h - The CUDA driver API, loaded with dlopen --------------===//
//
// The runtime binary starts on machines without a GPU driver: libcuda.so.1
// is opened at run time, the few entry points used are resolved by name,
// and a missing driver or device is an error status, not a link failure.
// No CUDA header is needed to build this.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CUDA_CUDADRIVER_H
#define M2C_RUNTIME_CUDA_CUDADRIVER_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <string>

namespace m2c::cuda {

/// Opaque driver handles (CUmodule, CUfunction, CUstream, CUgraphExec,
/// CUevent); device pointers are CUdeviceptr values.
using ModuleHandle = void *;
using FunctionHandle = void *;
using StreamHandle = void *;
using GraphHandle = void *;
using EventHandle = void *;
using DevicePtr = uint64_t;

struct LaunchDims {
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
};

class CudaDriver {
public:
  /// Opens the driver (or `library`, for tests), resolves its entry points
  /// and initialises it. Fails with the dlopen/driver message.
  static StatusOr<std::unique_ptr<CudaDriver>> load(const std::string &library = "libcuda.so.1");
  /// The process's driver, loaded on first use and kept for its lifetime.
  static StatusOr<CudaDriver *> shared();
  ~CudaDriver();

  int deviceCount() const { return deviceCount_; }
  StatusOr<std::string> deviceName(int device) const;
  /// Makes `device`'s primary context current on this thread.
  Status useDevice(int device);

  /// JIT-compiles PTX. A failure names `kernelName` and carries the JIT
  /// error log.
  StatusOr<ModuleHandle> loadPtx(const std::string &ptx, const std::string &kernelName);
  StatusOr<FunctionHandle> function(ModuleHandle module, const std::string &entry);
  void unload(ModuleHandle module);
  /// Lets `fn` use more than 48 KiB of dynamic shared memory.
  Status setMaxDynamicShared(FunctionHandle fn, int bytes);

  /// A 2-D tiled tensor map (CUtensorMap, 128 bytes) over a row-major
  /// [rows, cols] matrix of `type` elements at `address`: boxes of
  /// {boxRows, boxCols}, the 128-byte swizzle, zero fill past the edges.
  /// Written into `out` (host memory, 64-byte aligned).
  enum class TensorMapType { BF16, F16, F32 };
  Status encodeTensorMap(void *out, TensorMapType type, DevicePtr address, uint64_t rows,
                         uint64_t cols, uint32_t boxRows, uint32_t boxCols);

  /// Device memory. Every error names what was being allocated.
  StatusOr<DevicePtr> allocate(uint64_t bytes, const std::string &what);
  void free(DevicePtr ptr);
  /// Page-locked host memory, for asynchronous copies.
  StatusOr<void *> allocateHost(uint64_t bytes, const std::string &what);
  void freeHost(void *ptr);
  /// (free, total) bytes of the current device.
  StatusOr<std::pair<uint64_t, uint64_t>> memoryInfo() const;

  StatusOr<StreamHandle> createStream();
  void destroyStream(StreamHandle stream);
  Status copyToDevice(DevicePtr dst, const void *src, uint64_t bytes, StreamHandle stream);
  Status copyToHost(void *dst, DevicePtr src, uint64_t bytes, StreamHandle stream);
  Status copyOnDevice(DevicePtr dst, DevicePtr src, uint64_t bytes, StreamHandle stream);
  Status memset(DevicePtr dst, uint8_t value, uint64_t bytes, StreamHandle stream);
  Status synchronize(StreamHandle stream);
  /// `params`: one pointer per kernel parameter, to its value. With
  /// `programmatic` (and cuLaunchKernelEx), the grid may start before the
  /// previous kernel in the stream ends (programmatic dependent launch): only
  /// for kernels that begin with griddepcontrol.wait.
  Status launch(FunctionHandle fn, const LaunchDims &dims, void **params, StreamHandle stream,
                bool programmatic = false);
  /// Whether the driver has cuLaunchKernelEx (CUDA 12+).
  bool supportsProgrammaticLaunch() const;

  /// Stream capture into a graph, and its replay.
  Status beginCapture(StreamHandle stream);
  StatusOr<GraphHandle> endCapture(StreamHandle stream);
  Status launchGraph(GraphHandle graph, StreamHandle stream);
  void destroyGraph(GraphHandle graph);

  StatusOr<EventHandle> createEvent();
  void destroyEvent(EventHandle event);
  Status record(EventHandle event, StreamHandle stream);
  Status waitEvent(EventHandle event);
  /// Milliseconds between two recorded events.
  StatusOr<float> elapsed(EventHandle start, EventHandle end);

private:
  CudaDriver() = default;
  struct Api;
  std::string errorText(int result) const;

  void *library_ = nullptr;
  std::unique_ptr<Api> api_;
  int deviceCount_ = 0;
  void *context_ = nullptr;
};

} // namespace m2c::cuda

#endif // M2C_RUNTIME_CUDA_CUDADRIVER_H
