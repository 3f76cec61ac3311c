//===- SafeTensors.h - Hardened reader and writer for .safetensors files --===//
//
// A checkpoint is untrusted input: the header parser checks every length,
// offset and shape before any tensor byte is touched, so that a hostile
// file yields "<file>: <why>" and never an out-of-bounds read, an abort or
// an exception.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [b, e]}, ...,
//  "__metadata__": {"k": "v"}}, then the data section; offsets are
// relative to the start of the data section.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CHECKPOINT_SAFETENSORS_H
#define M2C_RUNTIME_CHECKPOINT_SAFETENSORS_H

#include "runtime/checkpoint/DType.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace m2c {

/// Headers larger than this are rejected before parsing; the released
/// 230 GB checkpoint's largest shard header is well under 1 MB.
constexpr uint64_t kMaxSafeTensorsHeaderBytes = 100ull * 1000 * 1000;

/// Formats a shape as "[6144, 3072]" for diagnostics.
std::string formatShape(const std::vector<int64_t> &shape);

/// Number of elements; 1 for a scalar. The header parser guarantees that
/// this does not overflow for any parsed tensor.
int64_t numElements(const std::vector<int64_t> &shape);

/// A tensor inside a mapped file. `data` is not necessarily aligned.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t byteSize = 0;

  int64_t numElements() const { return m2c::numElements(shape); }
};

/// One header entry; offsets are relative to the data section.
struct SafeTensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

/// A validated header: every entry lies inside the data section, entries
/// do not overlap, and byte sizes match shape x dtype.
struct SafeTensorsHeader {
  /// Sorted by `begin`.
  std::vector<SafeTensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  /// Offset of the data section from the start of the file (8 + N).
  uint64_t dataOffset = 0;
  uint64_t dataSize = 0;
};

/// Parses and validates the header of a complete safetensors file held in
/// memory (`size` is the whole file). `origin` (the file name) prefixes
/// every error. Safe on arbitrary bytes: this is the fuzzing entry point.
StatusOr<SafeTensorsHeader> parseSafeTensorsHeader(const uint8_t *data,
                                                   size_t size,
                                                   const std::string &origin);

/// A read-only, MAP_PRIVATE mapping of one .safetensors file. Move-only;
/// TensorViews point into the mapping and die with it.
class SafeTensorsFile {
public:
  static StatusOr<SafeTensorsFile> open(const std::string &path);

  SafeTensorsFile(SafeTensorsFile &&other) noexcept;
  SafeTensorsFile &operator=(SafeTensorsFile &&other) noexcept;
  SafeTensorsFile(const SafeTensorsFile &) = delete;
  SafeTensorsFile &operator=(const SafeTensorsFile &) = delete;
  ~SafeTensorsFile();

  const std::string &path() const { return path_; }
  bool has(const std::string &name) const;
  /// Fails with "<file>: no tensor named '<name>'" when absent.
  StatusOr<TensorView> get(const std::string &name) const;
  /// Names in file order (by data offset).
  std::vector<std::string> names() const;
  const std::map<std::string, std::string> &metadata() const {
    return header_.metadata;
  }
  const SafeTensorsHeader &header() const { return header_; }

private:
  SafeTensorsFile() = default;
  void unmap();

  std::string path_;
  const uint8_t *base_ = nullptr;
  size_t size_ = 0;
  SafeTensorsHeader header_;
  std::unordered_map<std::string, size_t> byName_;
};

/// Builds a safetensors file in memory and writes it. Tensors are laid out
/// the way the reference implementation does (by decreasing element size,
/// then name) so every tensor is naturally aligned after the 8-byte-aligned
/// header.
class SafeTensorsWriter {
public:
  /// Copies `byteSize` bytes; fails when they do not match shape x dtype,
  /// when a dimension is negative, or when the name is already used.
  Status addTensor(const std::string &name, DType dtype,
                   const std::vector<int64_t> &shape, const void *data,
                   size_t byteSize);
  Status addTensor(const std::string &name, DType dtype,
                   const std::vector<int64_t> &shape,
                   std::vector<uint8_t> bytes);
  /// Stores f32 values as `dtype` (F32, BF16 round-to-nearest-even, or
  /// F8_E4M3 saturating round-to-nearest-even).
  Status addTensorFromF32(const std::string &name, DType dtype,
                          const std::vector<int64_t> &shape,
                          const float *values);
  void setMetadata(const std::string &key, const std::string &value);

  /// The complete file contents.
  std::vector<uint8_t> serialize() const;
  /// Writes to `<path>.tmp` and renames, so a crash never leaves a
  /// truncated file under the final name.
  Status write(const std::string &path) const;

private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  /// The padded header JSON; `order` receives the storage order.
  std::string headerText(std::vector<size_t> &order) const;

  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

} // namespace m2c

#endif // M2C_RUNTIME_CHECKPOINT_SAFETENSORS_H
