//===- KernelBuilder.h - Helpers for writing GPU kernels as MLIR -*- C++ -*-===//
//
// Kernel families build `gpu.func`s through this class: constants and index
// arithmetic that fold as they are built, structured loops and branches
// taking lambdas, 16-byte vector loads with their alignment, warp and block
// reductions, and workgroup (shared) memory. Internal to codegen/ptx.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_KERNELBUILDER_H
#define M2C_CODEGEN_PTX_KERNELBUILDER_H

#include "codegen/ptx/KernelSpec.h"
#include "codegen/ptx/PtxCodegen.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace m2c::ptx {

/// One parameter of a gpu.func under construction: its MLIR type and what
/// the runtime passes for it.
struct FuncParam {
  mlir::Type type;
  plan::GpuParam param;
};

class KernelBuilder {
public:
  /// With `gridDependencyControl` (sm_90+) every kernel begins with
  /// griddepcontrol.wait and .launch_dependents (docs/ptx-codegen.md).
  KernelBuilder(mlir::ImplicitLocOpBuilder &b, mlir::gpu::GPUModuleOp module,
                bool gridDependencyControl)
      : b(b), module_(module), gridDependencyControl_(gridDependencyControl) {}

  mlir::ImplicitLocOpBuilder &b;

  /// Creates `gpu.func @name(...) kernel` with a known block size in the
  /// module, records its launch, and leaves the builder at the start of its
  /// body (a `gpu.return` is already in place). Returns the arguments.
  llvm::SmallVector<mlir::Value> beginKernel(llvm::StringRef name, llvm::ArrayRef<FuncParam> params,
                                             std::array<int64_t, 3> block,
                                             std::array<plan::GpuExtent, 3> grid,
                                             KernelBinary &binary);

  // Types.
  mlir::Type f32() { return b.getF32Type(); }
  mlir::Type i32() { return b.getI32Type(); }
  mlir::Type indexType() { return b.getIndexType(); }
  mlir::VectorType vec(int64_t n, mlir::Type element) {
    return mlir::VectorType::get({n}, element);
  }
  static mlir::Type elementType(mlir::MLIRContext *context, plan::ElementType type);
  /// memref<shape x element> in global (default) memory.
  mlir::MemRefType memref(llvm::ArrayRef<int64_t> shape, plan::ElementType type);
  mlir::MemRefType memref(const TensorInfo &tensor) { return memref(tensor.shape, tensor.type); }

  // Constants.
  mlir::Value idx(int64_t value);
  mlir::Value ci32(int64_t value);
  mlir::Value cf32(double value);
  mlir::Value zeros(mlir::VectorType type);

  // Index arithmetic (folded when constant).
  mlir::Value add(mlir::Value a, mlir::Value c);
  mlir::Value add(mlir::Value a, int64_t c) { return add(a, idx(c)); }
  mlir::Value sub(mlir::Value a, mlir::Value c);
  mlir::Value mul(mlir::Value a, mlir::Value c);
  mlir::Value mul(mlir::Value a, int64_t c) { return mul(a, idx(c)); }
  mlir::Value divu(mlir::Value a, int64_t c);
  mlir::Value remu(mlir::Value a, int64_t c);
  mlir::Value minu(mlir::Value a, mlir::Value c);
  mlir::Value minu(mlir::Value a, int64_t c) { return minu(a, idx(c)); }
  mlir::Value ult(mlir::Value a, mlir::Value c);
  mlir::Value ult(mlir::Value a, int64_t c) { return ult(a, idx(c)); }
  mlir::Value eq(mlir::Value a, mlir::Value c);
  mlir::Value andi(mlir::Value a, mlir::Value c);
  mlir::Value select(mlir::Value cond, mlir::Value a, mlir::Value c);
  /// i32 -> index (sign-extending).
  mlir::Value toIndex(mlir::Value i32Value);
  mlir::Value toI32(mlir::Value indexValue);

  // Float arithmetic (scalars or vectors).
  mlir::Value addf(mlir::Value a, mlir::Value c);
  mlir::Value subf(mlir::Value a, mlir::Value c);
  mlir::Value mulf(mlir::Value a, mlir::Value c);
  mlir::Value divf(mlir::Value a, mlir::Value c);
  mlir::Value maxf(mlir::Value a, mlir::Value c);
  mlir::Value fma(mlir::Value a, mlir::Value c, mlir::Value acc);
  mlir::Value exp(mlir::Value a);
  mlir::Value splat(mlir::Value scalar, int64_t n);
  /// Sum of a vector's lanes, in lane order.
  mlir::Value reduceAdd(mlir::Value vector);
  mlir::Value extract(mlir::Value vector, int64_t position);

  // Thread coordinates (index).
  mlir::Value threadId();
  mlir::Value blockId(mlir::gpu::Dimension dim);
  mlir::Value laneId() { return remu(threadId(), 32); }
  mlir::Value warpId() { return divu(threadId(), 32); }

  // Memory.
  /// vector.load of n elements with the alignment their byte size allows
  /// (up to maxAlign, which the address must have): NVPTX splits
  /// under-aligned vector loads into smaller ones.
  mlir::Value load(mlir::Value memref, mlir::ValueRange indices, int64_t n, int64_t maxAlign = 16);
  void store(mlir::Value value, mlir::Value memref, mlir::ValueRange indices);
  mlir::Value loadScalar(mlir::Value memref, mlir::ValueRange indices);
  void storeScalar(mlir::Value value, mlir::Value memref, mlir::ValueRange indices);
  /// Loads n elements and widens them to a vector of f32, in element order.
  /// bf16 widens with integer shifts (exact, and cheaper than cvt).
  mlir::Value loadF32(mlir::Value memref, mlir::ValueRange indices, int64_t n);
  mlir::Value toF32(mlir::Value vector);
  /// f32 vector -> the element type `type` (round to nearest even).
  mlir::Value fromF32(mlir::Value vector, mlir::Type type);

  /// A statically allocated, 16-byte aligned workgroup buffer.
  mlir::Value shared(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, mlir::Type element);
  /// A constant f32 table in global memory.
  mlir::Value constantTable(llvm::StringRef name, llvm::ArrayRef<float> values);
  void barrier();

  // Control flow.
  using LoopBody =
      llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value iv, mlir::ValueRange iter)>;
  llvm::SmallVector<mlir::Value> loop(mlir::Value lb, mlir::Value ub, mlir::Value step,
                                      mlir::ValueRange init, LoopBody body);
  void loop(mlir::Value lb, mlir::Value ub, mlir::Value step,
            llvm::function_ref<void(mlir::Value iv)> body);
  void ifThen(mlir::Value cond, llvm::function_ref<void()> then);
  llvm::SmallVector<mlir::Value>
  ifElse(mlir::Value cond, mlir::TypeRange types,
         llvm::function_ref<llvm::SmallVector<mlir::Value>()> then,
         llvm::function_ref<llvm::SmallVector<mlir::Value>()> otherwise);

  // Warp collectives: every lane of the warp must take part.
  mlir::Value shuffleXor(mlir::Value value, int64_t offset);
  mlir::Value shuffleIdx(mlir::Value value, mlir::Value lane);
  /// Butterfly sum/max over groups of `width` consecutive lanes (a power of
  /// two <= 32); every lane of a group gets the result.
  mlir::Value warpSum(mlir::Value value, int64_t width = 32);
  mlir::Value warpMax(mlir::Value value, int64_t width = 32);
  /// Sum over the block: every thread gets the result. `scratch` is a
  /// workgroup memref<numWarps x f32>; the block must be whole warps.
  mlir::Value blockSum(mlir::Value value, mlir::Value scratch, int64_t numWarps) {
    return blockReduce(value, scratch, numWarps, /*max=*/false);
  }
  mlir::Value blockMax(mlir::Value value, mlir::Value scratch, int64_t numWarps) {
    return blockReduce(value, scratch, numWarps, /*max=*/true);
  }

  mlir::gpu::GPUModuleOp module() { return module_; }

private:
  mlir::Value blockReduce(mlir::Value value, mlir::Value scratch, int64_t numWarps, bool max);

  mlir::gpu::GPUModuleOp module_;
  bool gridDependencyControl_ = false;
};

/// ceil(a / b) for positive b.
inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace m2c::ptx

#endif // M2C_CODEGEN_PTX_KERNELBUILDER_H
