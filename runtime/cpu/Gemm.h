//===- Gemm.h - The dot product all CPU kernels share --------- -*- C++ -*-===//
//
// Internal to runtime/cpu. Every float dot product the kernels take (linear,
// router logits, expert projections, attention scores) goes through these
// functions so that one output element always sees the same operations in the
// same order: kDotLanes interleaved float accumulators over k (lane l sums
// indices l, l + 8, l + 16, ...), a fixed pairwise reduction of the lanes,
// then the k % 8 tail in order. Tiling only reuses loads across elements; it
// never changes an element's arithmetic, so neither tile shape, block split
// nor thread count can change a result bit. The library is compiled with
// -ffp-contract=off so the compiler cannot fuse some paths into FMAs and not
// others.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CPU_GEMM_H
#define M2C_RUNTIME_CPU_GEMM_H

#include <cstdint>

namespace m2c::cpu::detail {

constexpr int kDotLanes = 8;

/// sum_i a[i] * b[i] with the shared accumulation order.
float dot(const float *a, const float *b, int64_t k);

/// out[r * outStride + (c - colBegin)] = dot(rows[r], w + c * k, k) for r in
/// [0, numRows) and c in [colBegin, colEnd): one block of rows x W^T with w
/// [n, k] row-major. Single-threaded: callers split the work.
void gemmRows(const float *const *rows, int64_t numRows, const float *w,
              int64_t k, int64_t colBegin, int64_t colEnd, float *out,
              int64_t outStride);

} // namespace m2c::cpu::detail

#endif // M2C_RUNTIME_CPU_GEMM_H
