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

/// cuLaunchKernelEx's configuration (cuda.h, CUDA 12+), with the one
/// attribute m2c sets.
struct LaunchAttribute {
  int id;
  char pad[4];
  union {
    char bytes[64];
    int programmaticStreamSerializationAllowed;
  } value;
};
static_assert(sizeof(LaunchAttribute) == 72, "CUlaunchAttribute is 72 bytes");
struct LaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
  void *stream;
  LaunchAttribute *attrs;
  unsigned numAttrs;
};
constexpr int kLaunchAttributeProgrammaticStreamSerialization = 6;

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
  CUresult (*funcSetAttribute)(void *, int, int);
  CUresult (*memAlloc)(uint64_t *, size_t);
  CUresult (*memFree)(uint64_t);
  CUresult (*memHostAlloc)(void **, size_t, unsigned);
  CUresult (*memFreeHost)(void *);
  CUresult (*memGetInfo)(size_t *, size_t *);
  CUresult (*streamCreate)(void **, unsigned);
  CUresult (*streamDestroy)(void *);
  CUresult (*memcpyHtoDAsync)(uint64_t, const void *, size_t, void *);
  CUresult (*memcpyDtoHAsync)(void *, uint64_t, size_t, void *);
  CUresult (*memcpyDtoDAsync)(uint64_t, uint64_t, size_t, void *);
  CUresult (*memsetD8Async)(uint64_t, unsigned char, size_t, void *);
  CUresult (*streamSynchronize)(void *);
  CUresult (*launchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, void *, void **, void **);
  /// Null when the driver predates CUDA 12.
  CUresult (*launchKernelEx)(const LaunchConfig *, void *, void **, void **) = nullptr;
  CUresult (*streamBeginCapture)(void *, int);
  CUresult (*streamEndCapture)(void *, void **);
  CUresult (*graphInstantiate)(void **, void *, unsigned long long);
  CUresult (*graphLaunch)(void *, void *);
  CUresult (*graphExecDestroy)(void *);
  CUresult (*graphDestroy)(void *);
  CUresult (*eventCreate)(void **, unsigned);
  CUresult (*eventDestroy)(void *);
  CUresult (*eventRecord)(void *, void *);
  CUresult (*eventSynchronize)(void *);
  CUresult (*eventElapsedTime)(float *, void *, void *);
  /// Null before CUDA 12.
  CUresult (*tensorMapEncodeTiled)(void *, int, unsigned, void *, const uint64_t *,
                                   const uint64_t *, const unsigned *, const unsigned *, int, int,
                                   int, int) = nullptr;
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
  M2C_RETURN_IF_ERROR(resolve(api.funcSetAttribute, "cuFuncSetAttribute"));
  M2C_RETURN_IF_ERROR(resolve(api.memAlloc, "cuMemAlloc_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memFree, "cuMemFree_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memHostAlloc, "cuMemHostAlloc"));
  M2C_RETURN_IF_ERROR(resolve(api.memFreeHost, "cuMemFreeHost"));
  M2C_RETURN_IF_ERROR(resolve(api.memGetInfo, "cuMemGetInfo_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.streamCreate, "cuStreamCreate"));
  M2C_RETURN_IF_ERROR(resolve(api.streamDestroy, "cuStreamDestroy_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.memsetD8Async, "cuMemsetD8Async"));
  M2C_RETURN_IF_ERROR(resolve(api.streamSynchronize, "cuStreamSynchronize"));
  M2C_RETURN_IF_ERROR(resolve(api.launchKernel, "cuLaunchKernel"));
  if (void *symbol = dlsym(handle, "cuLaunchKernelEx"))
    api.launchKernelEx = reinterpret_cast<decltype(api.launchKernelEx)>(symbol);
  if (void *symbol = dlsym(handle, "cuTensorMapEncodeTiled"))
    api.tensorMapEncodeTiled = reinterpret_cast<decltype(api.tensorMapEncodeTiled)>(symbol);
  M2C_RETURN_IF_ERROR(resolve(api.streamBeginCapture, "cuStreamBeginCapture_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.streamEndCapture, "cuStreamEndCapture"));
  M2C_RETURN_IF_ERROR(resolve(api.graphInstantiate, "cuGraphInstantiateWithFlags"));
  M2C_RETURN_IF_ERROR(resolve(api.graphLaunch, "cuGraphLaunch"));
  M2C_RETURN_IF_ERROR(resolve(api.graphExecDestroy, "cuGraphExecDestroy"));
  M2C_RETURN_IF_ERROR(resolve(api.graphDestroy, "cuGraphDestroy"));
  M2C_RETURN_IF_ERROR(resolve(api.eventCreate, "cuEventCreate"));
  M2C_RETURN_IF_ERROR(resolve(api.eventDestroy, "cuEventDestroy_v2"));
  M2C_RETURN_IF_ERROR(resolve(api.eventRecord, "cuEventRecord"));
  M2C_RETURN_IF_ERROR(resolve(api.eventSynchronize, "cuEventSynchronize"));
  // CUDA 12.8 added a _v2; older drivers have only the first.
  if (!dlsym(handle, "cuEventElapsedTime_v2"))
    M2C_RETURN_IF_ERROR(resolve(api.eventElapsedTime, "cuEventElapsedTime"));
  else
    M2C_RETURN_IF_ERROR(resolve(api.eventElapsedTime, "cuEventElapsedTime_v2"));
  if (CUresult r = api.init(0))
    return Status::error("cuInit failed: " + driver->errorText(r));
  if (CUresult r = api.deviceGetCount(&driver->deviceCount_))
    return Status::error("cuDeviceGetCount failed: " + driver->errorText(r));
  if (driver->deviceCount_ == 0)
    return Status::error("the CUDA driver sees no GPU");
  return driver;
}

StatusOr<CudaDriver *> CudaDriver::shared() {
  static StatusOr<std::unique_ptr<CudaDriver>> driver = load();
  if (!driver)
    return driver.status();
  return driver->get();
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

Status CudaDriver::setMaxDynamicShared(FunctionHandle fn, int bytes) {
  constexpr int kMaxDynamicSharedSizeBytes = 8; // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
  if (CUresult r = api_->funcSetAttribute(fn, kMaxDynamicSharedSizeBytes, bytes))
    return Status::error("cuFuncSetAttribute(max dynamic shared = " + std::to_string(bytes) +
                         "): " + errorText(r));
  return Status::ok();
}

Status CudaDriver::encodeTensorMap(void *out, TensorMapType type, DevicePtr address,
                                   uint64_t rows, uint64_t cols, uint32_t boxRows,
                                   uint32_t boxCols) {
  if (!api_->tensorMapEncodeTiled)
    return Status::error("the CUDA driver has no cuTensorMapEncodeTiled (CUDA 12+ is needed for "
                         "sm_90a kernels)");
  // CUtensorMapDataType, CUtensorMapSwizzle and CUtensorMapL2promotion of cuda.h.
  constexpr int kFloat16 = 6, kFloat32 = 7, kBFloat16 = 9, kSwizzle128B = 3, kL2Promote256B = 3;
  int dataType = type == TensorMapType::BF16 ? kBFloat16 : type == TensorMapType::F16 ? kFloat16
                                                                                       : kFloat32;
  uint64_t elementBytes = type == TensorMapType::F32 ? 4 : 2;
  // Innermost dimension first; the stride of dimension 1 in bytes.
  uint64_t dims[2] = {cols, rows}, strides[1] = {cols * elementBytes};
  unsigned box[2] = {boxCols, boxRows}, elementStrides[2] = {1, 1};
  if (CUresult r = api_->tensorMapEncodeTiled(out, dataType, 2, reinterpret_cast<void *>(address),
                                              dims, strides, box, elementStrides,
                                              /*interleave none*/ 0, kSwizzle128B, kL2Promote256B,
                                              /*oob fill zeros*/ 0))
    return Status::error("cuTensorMapEncodeTiled([" + std::to_string(rows) + ", " +
                         std::to_string(cols) + "], box [" + std::to_string(boxRows) + ", " +
                         std::to_string(boxCols) + "]): " + errorText(r));
  return Status::ok();
}

StatusOr<DevicePtr> CudaDriver::allocate(uint64_t bytes, const std::string &what) {
  DevicePtr ptr = 0;
  if (CUresult r = api_->memAlloc(&ptr, bytes ? bytes : 1)) {
    std::string free;
    if (StatusOr<std::pair<uint64_t, uint64_t>> info = memoryInfo())
      free = " (" + std::to_string(info->first >> 20) + " MiB of " +
             std::to_string(info->second >> 20) + " MiB free)";
    return Status::error("cannot allocate " + std::to_string(bytes >> 20) + " MiB on the GPU for " +
                         what + free + ": " + errorText(r));
  }
  return ptr;
}

void CudaDriver::free(DevicePtr ptr) {
  if (ptr)
    api_->memFree(ptr);
}

StatusOr<void *> CudaDriver::allocateHost(uint64_t bytes, const std::string &what) {
  void *ptr = nullptr;
  if (CUresult r = api_->memHostAlloc(&ptr, bytes ? bytes : 1, 0))
    return Status::error("cannot allocate " + std::to_string(bytes >> 20) +
                         " MiB of pinned host memory for " + what + ": " + errorText(r));
  return ptr;
}

void CudaDriver::freeHost(void *ptr) {
  if (ptr)
    api_->memFreeHost(ptr);
}

StatusOr<std::pair<uint64_t, uint64_t>> CudaDriver::memoryInfo() const {
  size_t free = 0, total = 0;
  if (CUresult r = api_->memGetInfo(&free, &total))
    return Status::error("cuMemGetInfo: " + errorText(r));
  return std::make_pair(static_cast<uint64_t>(free), static_cast<uint64_t>(total));
}

StatusOr<StreamHandle> CudaDriver::createStream() {
  void *stream = nullptr;
  constexpr unsigned kNonBlocking = 1;
  if (CUresult r = api_->streamCreate(&stream, kNonBlocking))
    return Status::error("cuStreamCreate: " + errorText(r));
  return stream;
}

void CudaDriver::destroyStream(StreamHandle stream) {
  if (stream)
    api_->streamDestroy(stream);
}

Status CudaDriver::copyToDevice(DevicePtr dst, const void *src, uint64_t bytes,
                                StreamHandle stream) {
  if (CUresult r = api_->memcpyHtoDAsync(dst, src, bytes, stream))
    return Status::error("host-to-device copy of " + std::to_string(bytes) + " bytes: " +
                         errorText(r));
  return Status::ok();
}

Status CudaDriver::copyToHost(void *dst, DevicePtr src, uint64_t bytes, StreamHandle stream) {
  if (CUresult r = api_->memcpyDtoHAsync(dst, src, bytes, stream))
    return Status::error("device-to-host copy of " + std::to_string(bytes) + " bytes: " +
                         errorText(r));
  return Status::ok();
}

Status CudaDriver::copyOnDevice(DevicePtr dst, DevicePtr src, uint64_t bytes,
                                StreamHandle stream) {
  if (CUresult r = api_->memcpyDtoDAsync(dst, src, bytes, stream))
    return Status::error("device-to-device copy of " + std::to_string(bytes) + " bytes: " +
                         errorText(r));
  return Status::ok();
}

Status CudaDriver::memset(DevicePtr dst, uint8_t value, uint64_t bytes, StreamHandle stream) {
  if (CUresult r = api_->memsetD8Async(dst, value, bytes, stream))
    return Status::error("memset of " + std::to_string(bytes) + " bytes: " + errorText(r));
  return Status::ok();
}

Status CudaDriver::synchronize(StreamHandle stream) {
  if (CUresult r = api_->streamSynchronize(stream))
    return Status::error("the GPU reported an error: " + errorText(r));
  return Status::ok();
}

Status CudaDriver::launch(FunctionHandle fn, const LaunchDims &d, void **params,
                          StreamHandle stream, bool programmatic) {
  if (programmatic && api_->launchKernelEx) {
    LaunchAttribute attribute = {};
    attribute.id = kLaunchAttributeProgrammaticStreamSerialization;
    attribute.value.programmaticStreamSerializationAllowed = 1;
    LaunchConfig config = {d.grid[0],  d.grid[1],  d.grid[2],     d.block[0], d.block[1],
                           d.block[2], d.sharedBytes, stream, &attribute, 1};
    if (CUresult r = api_->launchKernelEx(&config, fn, params, nullptr))
      return Status::error("cuLaunchKernelEx: " + errorText(r));
    return Status::ok();
  }
  if (CUresult r = api_->launchKernel(fn, d.grid[0], d.grid[1], d.grid[2], d.block[0], d.block[1],
                                      d.block[2], d.sharedBytes, stream, params, nullptr))
    return Status::error("cuLaunchKernel: " + errorText(r));
  return Status::ok();
}

bool CudaDriver::supportsProgrammaticLaunch() const { return api_->launchKernelEx != nullptr; }

Status CudaDriver::beginCapture(StreamHandle stream) {
  constexpr int kCaptureModeThreadLocal = 1;
  if (CUresult r = api_->streamBeginCapture(stream, kCaptureModeThreadLocal))
    return Status::error("cuStreamBeginCapture: " + errorText(r));
  return Status::ok();
}

StatusOr<GraphHandle> CudaDriver::endCapture(StreamHandle stream) {
  void *graph = nullptr;
  if (CUresult r = api_->streamEndCapture(stream, &graph))
    return Status::error("cuStreamEndCapture: " + errorText(r));
  void *exec = nullptr;
  CUresult r = api_->graphInstantiate(&exec, graph, 0);
  api_->graphDestroy(graph);
  if (r)
    return Status::error("cuGraphInstantiate: " + errorText(r));
  return exec;
}

Status CudaDriver::launchGraph(GraphHandle graph, StreamHandle stream) {
  if (CUresult r = api_->graphLaunch(graph, stream))
    return Status::error("cuGraphLaunch: " + errorText(r));
  return Status::ok();
}

void CudaDriver::destroyGraph(GraphHandle graph) {
  if (graph)
    api_->graphExecDestroy(graph);
}

StatusOr<EventHandle> CudaDriver::createEvent() {
  void *event = nullptr;
  if (CUresult r = api_->eventCreate(&event, 0))
    return Status::error("cuEventCreate: " + errorText(r));
  return event;
}

void CudaDriver::destroyEvent(EventHandle event) {
  if (event)
    api_->eventDestroy(event);
}

Status CudaDriver::record(EventHandle event, StreamHandle stream) {
  if (CUresult r = api_->eventRecord(event, stream))
    return Status::error("cuEventRecord: " + errorText(r));
  return Status::ok();
}

Status CudaDriver::waitEvent(EventHandle event) {
  if (CUresult r = api_->eventSynchronize(event))
    return Status::error("the GPU reported an error: " + errorText(r));
  return Status::ok();
}

StatusOr<float> CudaDriver::elapsed(EventHandle start, EventHandle end) {
  float ms = 0;
  if (CUresult r = api_->eventElapsedTime(&ms, start, end))
    return Status::error("cuEventElapsedTime: " + errorText(r));
  return ms;
}

} // namespace m2c::cuda
