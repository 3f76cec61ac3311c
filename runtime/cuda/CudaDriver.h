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

#include <memory>
#include <string>

namespace m2c::cuda {

/// Opaque driver handles (CUmodule, CUfunction, CUcontext).
using ModuleHandle = void *;
using FunctionHandle = void *;

class CudaDriver {
public:
  /// Opens the driver (or `library`, for tests), resolves its entry points
  /// and initialises it. Fails with the dlopen/driver message.
  static StatusOr<std::unique_ptr<CudaDriver>> load(const std::string &library = "libcuda.so.1");
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
