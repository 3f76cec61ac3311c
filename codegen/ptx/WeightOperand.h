//===- WeightOperand.h - Reading a weight matrix, packed or not -*- C++ -*-===//
//
// Every kernel that reads a weight matrix ([N, K], or [E, N, K] stacked
// experts) reads it through this class, in 16-byte chunks of one row: the
// weight's storage type widened to f32, or one of the packed formats of
// plan::Quantization (docs/quantization.md) dequantized as it loads. A chunk
// never straddles a scale group, so it carries one scale.
//
// Packed weights are one byte array per weight (each expert: data, then f32
// scales) and the kernel gets two views of it: bytes for the data, f32 for
// the scales. Dequantization is integer work, no conversion instructions:
//   int8  q: f32 bits 0x4B000000 | (q ^ 0x80) is 2^23 + 128 + q exactly;
//   int4  q: 0x4B000000 | (q ^ 0x8) is 2^23 + 8 + q;
//   e4m3 b: (b & 0x7f) << 20 | (b & 0x80) << 24 is b's value times 2^-120,
//          subnormals included (they land on f32 subnormals).
// Internal to codegen/ptx.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_CODEGEN_PTX_WEIGHTOPERAND_H
#define M2C_CODEGEN_PTX_WEIGHTOPERAND_H

#include "codegen/ptx/KernelBuilder.h"

namespace m2c::ptx {

class WeightOperand {
public:
  explicit WeightOperand(const TensorInfo &info);

  /// Why the kernels cannot read this weight, or empty when they can.
  std::string unsupportedReason() const;

  bool packed() const { return info_.quantization != plan::Quantization::None; }
  int64_t rows() const { return info_.shape[info_.shape.size() - 2]; }
  int64_t cols() const { return info_.shape.back(); }
  /// "bf16", "f32", "int8", "int4", "fp8": for kernel names.
  std::string typeName() const;
  /// Elements per chunk: 16 bytes of the stored row.
  int64_t chunkElements() const;
  /// Bytes of the stored row per element, rounded up (for tile choices).
  int64_t loadBytes() const;

  /// Appends the kernel parameters for plan input `index`.
  void appendParams(KernelBuilder &kb, llvm::SmallVectorImpl<FuncParam> &params,
                    int64_t index) const;
  int64_t numParams() const { return packed() ? 2 : 1; }
  /// Takes the arguments appendParams declared, from the front of `args`.
  void bind(mlir::ValueRange args);

  /// One chunk as loaded: the raw vector and, when packed, its scale.
  struct Chunk {
    mlir::Value data, scale;
  };
  /// The chunk of row `row` of matrix `expert` (null for [N, K]) at column
  /// `k`, a multiple of chunkElements(); without its scale when
  /// `withScale` is false.
  Chunk loadChunk(KernelBuilder &kb, mlir::Value expert, mlir::Value row, mlir::Value k,
                  bool withScale = true) const;
  /// Its values as a vector of f32, in column order; codes only (exact
  /// small integers or e4m3 values, all exact in bf16) when it has no scale.
  mlir::Value dequantize(KernelBuilder &kb, const Chunk &chunk) const;

  /// Whether a row has one scale over all of K (int8), so tensor-core tiles
  /// can hold the exact codes and the GEMM's epilogue apply rowScale(): the
  /// bf16 tile then rounds nothing.
  bool scalesInEpilogue() const {
    return info_.quantization == plan::Quantization::Int8;
  }
  mlir::Value rowScale(KernelBuilder &kb, mlir::Value expert, mlir::Value row) const;

private:
  int64_t rowBytes() const;    ///< packed formats: one stored row
  int64_t dataBytes() const;   ///< one matrix's codes
  int64_t matrixBytes() const; ///< one matrix's codes and scales
  int64_t experts() const;
  /// The largest power of two (<= 16) every chunk address is a multiple of.
  int64_t chunkAlign() const;
  /// Byte offset of matrix `expert` (null: 0).
  mlir::Value matrixBase(KernelBuilder &kb, mlir::Value expert) const;
  /// The scale of the chunk of `row` at column `k`.
  mlir::Value loadScale(KernelBuilder &kb, mlir::Value expert, mlir::Value row,
                        mlir::Value k) const;

  TensorInfo info_;
  mlir::Value matrix_; ///< unpacked: the typed memref
  mlir::Value bytes_, scales_;
};

} // namespace m2c::ptx

#endif // M2C_CODEGEN_PTX_WEIGHTOPERAND_H
