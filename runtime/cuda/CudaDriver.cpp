//===- CudaDriver.cpp - The CUDA driver API, loaded with dlopen -----------===//

#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>

#include <vector>

namespace m2c::cuda {

namespace {
// The driver ABI, declared here so no CUDA header is needed to build.
using CUresult = int;
using CUdevice = int;
enum : int { kJitInfoLogBuffer = 3, kJitInfoLogSize = 4, kJitErrorLogBuffer = 5, kJitErrorLogSize = 6 };
} // namespace

struct CudaDriver::Api {
  CUresult (*init)(unsigned);
  CUresult (*deviceGetCount)(int *);
  CUresult (*deviceGet)(CUdevice *, int);
  CUresult (*deviceGetName)(char *, int, CUdevice);
  CUresult (*primaryCtxRetain)(void **, CUdevice);
  CUresult (*ctxSetCurrent)(void *);
  CUresult (*moduleLoadDataEx)(void **, const void *, unsigned, int *, void **);
  CUresult (*moduleGetFunction)(void **, void *, const char *);
  CUresult (*moduleUnload)(void *);
  CUresult (*getErrorString)(CUresult, const char **);
};

StatusOr<std::unique_ptr<CudaDriver>> CudaDriver::load(const std::string &library) {
  void *handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    return Status::error("the CUDA driver (" + library + ") cannot be loaded: " +
                         (why ? why : "unknown error") + "; is an NVIDIA driver installed?");
  }
  std::unique_ptr<CudaDriver> driver(new CudaDriver());
  driver->library_ = handle;
  driver->api_ = std::make_unique<Api>();
  Api &api = *driver->api_;
  auto resolve = [&](auto &slot, const char *name) -> Status {
    void *symbol = dlsym(handle, name);
    if (!symbol)
      return Status::error(library + ": missing driver entry point " + name);
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
    return Status::ok();
  };
  M2C_RETURN_IF_ERROR(resolve(api.init, "cuInit"));
  M2C_RETURN_IF_ERROR(resolve(api.deviceGetCount, "cuDeviceGetCount"));
  M2C_RETURN_IF_ERROR(resolve(api.deviceGet, "cuDeviceGet"));
  M2C_RETURN_IF_ERROR(resolve(api.deviceGetName, "cuDeviceGetName"));
  M2C_RETURN_IF_ERROR(resolve(api.primaryCtxRetain, "cuDevicePrimaryCtxRetain"));
  M2C_RETURN_IF_ERROR(resolve(api.ctxSetCurrent, "cuCtxSetCurrent"));
  M2C_RETURN_IF_ERROR(resolve(api.moduleLoadDataEx, "cuModuleLoadDataEx"));
  M2C_RETURN_IF_ERROR(resolve(api.moduleGetFunction, "cuModuleGetFunction"));
  M2C_RETURN_IF_ERROR(resolve(api.moduleUnload, "cuModuleUnload"));
  M2C_RETURN_IF_ERROR(resolve(api.getErrorString, "cuGetErrorString"));
  if (CUresult r = api.init(0))
    return Status::error("cuInit failed: " + driver->errorText(r));
  if (CUresult r = api.deviceGetCount(&driver->deviceCount_))
    return Status::error("cuDeviceGetCount failed: " + driver->errorText(r));
  if (driver->deviceCount_ == 0)
    return Status::error("the CUDA driver sees no GPU");
  return driver;
}

CudaDriver::~CudaDriver() {
  // The primary context and the library stay loaded: unloading the driver
  // while other code in the process may hold handles is unsafe.
}

std::string CudaDriver::errorText(int result) const {
  const char *text = nullptr;
  if (api_ && api_->getErrorString && api_->getErrorString(result, &text) == 0 && text)
    return std::string(text) + " (" + std::to_string(result) + ")";
  return "CUDA error " + std::to_string(result);
}

StatusOr<std::string> CudaDriver::deviceName(int device) const {
  CUdevice handle = 0;
  if (CUresult r = api_->deviceGet(&handle, device))
    return Status::error("cuDeviceGet(" + std::to_string(device) + "): " + errorText(r));
  char name[256] = {};
  if (CUresult r = api_->deviceGetName(name, sizeof(name), handle))
    return Status::error("cuDeviceGetName: " + errorText(r));
  return std::string(name);
}

Status CudaDriver::useDevice(int device) {
  if (device < 0 || device >= deviceCount_)
    return Status::error("no CUDA device " + std::to_string(device) + " (" +
                         std::to_string(deviceCount_) + " present)");
  CUdevice handle = 0;
  if (CUresult r = api_->deviceGet(&handle, device))
    return Status::error("cuDeviceGet: " + errorText(r));
  if (CUresult r = api_->primaryCtxRetain(&context_, handle))
    return Status::error("cuDevicePrimaryCtxRetain: " + errorText(r));
  if (CUresult r = api_->ctxSetCurrent(context_))
    return Status::error("cuCtxSetCurrent: " + errorText(r));
  return Status::ok();
}

StatusOr<ModuleHandle> CudaDriver::loadPtx(const std::string &ptx,
                                           const std::string &kernelName) {
  std::vector<char> errorLog(16384, 0), infoLog(4096, 0);
  int options[] = {kJitErrorLogBuffer, kJitErrorLogSize, kJitInfoLogBuffer, kJitInfoLogSize};
  void *values[] = {errorLog.data(), reinterpret_cast<void *>(errorLog.size()), infoLog.data(),
                    reinterpret_cast<void *>(infoLog.size())};
  void *module = nullptr;
  if (CUresult r = api_->moduleLoadDataEx(&module, ptx.c_str(), 4, options, values)) {
    std::string log(errorLog.data());
    return Status::error("kernel " + kernelName + ": the driver could not load its PTX: " +
                         errorText(r) + (log.empty() ? "" : "\nJIT log:\n" + log));
  }
  return module;
}

StatusOr<FunctionHandle> CudaDriver::function(ModuleHandle module, const std::string &entry) {
  void *fn = nullptr;
  if (CUresult r = api_->moduleGetFunction(&fn, module, entry.c_str()))
    return Status::error("kernel entry " + entry + ": " + errorText(r));
  return fn;
}

void CudaDriver::unload(ModuleHandle module) {
  if (module)
    api_->moduleUnload(module);
}

} // namespace m2c::cuda
