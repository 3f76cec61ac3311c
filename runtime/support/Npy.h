//===- Npy.h - Minimal NumPy .npy reader and writer -------------*- C++ -*-===//
//
// Golden tests exchange tensors with Python as .npy files. The writer emits
// format 1.0 ('<f4' / '<i4' / '<i8', C order, header padded to 64 bytes, as
// numpy.save does). The reader accepts format 1.x-3.x files of those dtypes
// in C order and reports anything else (bad magic, truncated header, odd
// dict, big-endian or Fortran-order data, size mismatch) as an error Status.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_SUPPORT_NPY_H
#define M2C_RUNTIME_SUPPORT_NPY_H

#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace m2c {

enum class NpyDType { Float32, Int32, Int64 };

/// The numpy descr string: "<f4", "<i4" or "<i8".
const char *npyDescr(NpyDType dtype);

struct NpyArray {
  NpyDType dtype = NpyDType::Float32;
  /// Empty for a 0-d array (one element).
  std::vector<int64_t> shape;
  /// Exactly the vector matching `dtype` holds numElements() values, in
  /// C (row-major) order; the other two are empty.
  std::vector<float> f32;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;

  int64_t numElements() const;
};

/// Parses an in-memory .npy image.
StatusOr<NpyArray> parseNpy(const void *data, size_t size);
/// Reads and parses a .npy file; errors are prefixed with the path.
StatusOr<NpyArray> readNpy(const std::string &path);

/// Writes `data` (C order, product(shape) elements) as a format 1.0 .npy
/// file. Fails on negative dimensions or I/O errors, naming the path.
Status writeNpy(const std::string &path, const float *data,
                const std::vector<int64_t> &shape);
Status writeNpy(const std::string &path, const int32_t *data,
                const std::vector<int64_t> &shape);
Status writeNpy(const std::string &path, const int64_t *data,
                const std::vector<int64_t> &shape);

} // namespace m2c

#endif // M2C_RUNTIME_SUPPORT_NPY_H
