//===- SafeTensors.cpp - Hardened reader and writer for .safetensors files ===//

#include "runtime/checkpoint/SafeTensors.h"

#include "runtime/support/JsonError.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace m2c {

using nlohmann::json;

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

std::string describeJsonError(const std::string &text) {
  std::string why = jsonParseErrorText(text);
  return why.empty() ? "header is not valid JSON" : "header is not valid JSON: " + why;
}

/// Reads a JSON value as a non-negative integer that fits in int64.
/// Returns a why-string on failure, empty on success.
std::string readNonNegative(const json &value, uint64_t &out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    if (out > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return "is too large (" + std::to_string(out) + ")";
    return "";
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v < 0)
      return "is negative (" + std::to_string(v) + ")";
    out = static_cast<uint64_t>(v);
    return "";
  }
  return std::string("is not an integer (got ") + value.type_name() + ")";
}

bool mulOverflows(uint64_t a, uint64_t b, uint64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

Status parseEntry(const std::string &name, const json &value,
                  uint64_t dataSize, const std::string &origin,
                  SafeTensorsEntry &out) {
  auto fail = [&](const std::string &why) {
    return Status::error(origin + ": tensor '" + name + "': " + why);
  };
  if (!value.is_object())
    return fail(std::string("entry is not an object (got ") +
                value.type_name() + ")");
  out.name = name;

  auto dtypeIt = value.find("dtype");
  if (dtypeIt == value.end())
    return fail("missing \"dtype\"");
  if (!dtypeIt->is_string())
    return fail(std::string("\"dtype\" is not a string (got ") +
                dtypeIt->type_name() + ")");
  const std::string &dtypeText = dtypeIt->get_ref<const std::string &>();
  std::optional<DType> dtype = parseDType(dtypeText);
  if (!dtype)
    return fail("unknown dtype '" + dtypeText + "'");
  out.dtype = *dtype;

  auto shapeIt = value.find("shape");
  if (shapeIt == value.end())
    return fail("missing \"shape\"");
  if (!shapeIt->is_array())
    return fail(std::string("\"shape\" is not an array (got ") +
                shapeIt->type_name() + ")");
  uint64_t elements = 1;
  out.shape.clear();
  for (size_t i = 0; i < shapeIt->size(); ++i) {
    uint64_t dim = 0;
    std::string why = readNonNegative((*shapeIt)[i], dim);
    if (!why.empty())
      return fail("shape[" + std::to_string(i) + "] " + why);
    out.shape.push_back(static_cast<int64_t>(dim));
    if (mulOverflows(elements, dim, elements))
      return fail("shape " + formatShape(out.shape) +
                  "... has more elements than fit in 64 bits");
  }
  uint64_t needBytes = 0;
  if (mulOverflows(elements, dtypeSize(out.dtype), needBytes) ||
      needBytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail("shape " + formatShape(out.shape) + " of " +
                dtypeName(out.dtype) + " needs more bytes than fit in 63 bits");

  auto offIt = value.find("data_offsets");
  if (offIt == value.end())
    return fail("missing \"data_offsets\"");
  if (!offIt->is_array() || offIt->size() != 2)
    return fail("\"data_offsets\" is not an array of 2 integers");
  for (int i = 0; i < 2; ++i) {
    uint64_t v = 0;
    std::string why = readNonNegative((*offIt)[i], v);
    if (!why.empty())
      return fail("data_offsets[" + std::to_string(i) + "] " + why);
    (i == 0 ? out.begin : out.end) = v;
  }
  std::string offsets = "data_offsets [" + std::to_string(out.begin) + ", " +
                        std::to_string(out.end) + "]";
  if (out.begin > out.end)
    return fail(offsets + " has begin > end");
  if (out.end > dataSize)
    return fail(offsets + " end exceeds the data section size (" +
                std::to_string(dataSize) + " bytes)");
  if (out.end - out.begin != needBytes)
    return fail(offsets + " span " + std::to_string(out.end - out.begin) +
                " bytes but shape " + formatShape(out.shape) + " of " +
                dtypeName(out.dtype) + " needs " + std::to_string(needBytes) +
                " bytes");
  return Status::ok();
}

} // namespace

StatusOr<SafeTensorsHeader> parseSafeTensorsHeader(const uint8_t *data,
                                                   size_t size,
                                                   const std::string &origin) {
  auto fail = [&](const std::string &why) {
    return Status::error(origin + ": " + why);
  };
  if (size < 8)
    return fail("file is " + std::to_string(size) +
                " bytes, shorter than the 8-byte header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | data[i];
  const uint64_t available = size - 8;
  if (headerLen > kMaxSafeTensorsHeaderBytes)
    return fail("header length " + std::to_string(headerLen) +
                " exceeds the limit of " +
                std::to_string(kMaxSafeTensorsHeaderBytes) + " bytes");
  if (headerLen > available)
    return fail("header length " + std::to_string(headerLen) +
                " exceeds the file size minus 8 (" +
                std::to_string(available) + " bytes)");
  if (headerLen == 0 || data[8] != '{')
    return fail("header does not start with '{'");

  std::string text(reinterpret_cast<const char *>(data + 8),
                   static_cast<size_t>(headerLen));
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return fail(describeJsonError(text));
  if (!root.is_object())
    return fail(std::string("header is not a JSON object (got ") +
                root.type_name() + ")");

  SafeTensorsHeader header;
  header.dataOffset = 8 + headerLen;
  header.dataSize = available - headerLen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string &name = it.key();
    const json &value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object())
        return fail(std::string("\"__metadata__\" is not an object (got ") +
                    value.type_name() + ")");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string())
          return fail("\"__metadata__\" key '" + m.key() +
                      "' is not a string (got " + m.value().type_name() +
                      ")");
        header.metadata[m.key()] =
            m.value().get_ref<const std::string &>();
      }
      continue;
    }
    SafeTensorsEntry entry;
    M2C_RETURN_IF_ERROR(
        parseEntry(name, value, header.dataSize, origin, entry));
    header.entries.push_back(std::move(entry));
  }

  // Overlapping ranges would let two tensors alias the same bytes, which
  // no writer produces; reject them. Empty tensors overlap nothing.
  std::sort(header.entries.begin(), header.entries.end(),
            [](const SafeTensorsEntry &a, const SafeTensorsEntry &b) {
              if (a.begin != b.begin)
                return a.begin < b.begin;
              if (a.end != b.end)
                return a.end < b.end;
              return a.name < b.name;
            });
  const SafeTensorsEntry *previous = nullptr;
  for (const SafeTensorsEntry &e : header.entries) {
    if (e.begin == e.end)
      continue;
    if (previous && e.begin < previous->end)
      return fail("tensors '" + previous->name + "' [" +
                  std::to_string(previous->begin) + ", " +
                  std::to_string(previous->end) + ") and '" + e.name + "' [" +
                  std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  ") overlap");
    previous = &e;
  }
  return header;
}

//===----------------------------------------------------------------------===//
// SafeTensorsFile
//===----------------------------------------------------------------------===//

StatusOr<SafeTensorsFile> SafeTensorsFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return Status::error(path + ": cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    // mmap of an empty file fails; let the parser word the error.
    uint8_t small[8] = {};
    ssize_t got = ::pread(fd, small, size, 0);
    ::close(fd);
    StatusOr<SafeTensorsHeader> header = parseSafeTensorsHeader(
        small, got < 0 ? 0 : static_cast<size_t>(got), path);
    return header.status();
  }
  void *base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  std::string mmapWhy = base == MAP_FAILED ? std::strerror(errno) : "";
  ::close(fd); // the mapping keeps the file alive
  if (base == MAP_FAILED)
    return Status::error(path + ": cannot mmap " + std::to_string(size) +
                         " bytes: " + mmapWhy);

  SafeTensorsFile file;
  file.path_ = path;
  file.base_ = static_cast<const uint8_t *>(base);
  file.size_ = size;
  StatusOr<SafeTensorsHeader> header =
      parseSafeTensorsHeader(file.base_, size, path);
  if (!header)
    return header.status(); // ~SafeTensorsFile unmaps
  file.header_ = header.take();
  for (size_t i = 0; i < file.header_.entries.size(); ++i)
    file.byName_.emplace(file.header_.entries[i].name, i);
  return file;
}

SafeTensorsFile::SafeTensorsFile(SafeTensorsFile &&other) noexcept
    : path_(std::move(other.path_)), base_(other.base_), size_(other.size_),
      header_(std::move(other.header_)), byName_(std::move(other.byName_)) {
  other.base_ = nullptr;
  other.size_ = 0;
}

SafeTensorsFile &SafeTensorsFile::operator=(SafeTensorsFile &&other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    base_ = other.base_;
    size_ = other.size_;
    header_ = std::move(other.header_);
    byName_ = std::move(other.byName_);
    other.base_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SafeTensorsFile::~SafeTensorsFile() { unmap(); }

void SafeTensorsFile::unmap() {
  if (base_)
    ::munmap(const_cast<uint8_t *>(base_), size_);
  base_ = nullptr;
  size_ = 0;
}

bool SafeTensorsFile::has(const std::string &name) const {
  return byName_.count(name) != 0;
}

StatusOr<TensorView> SafeTensorsFile::get(const std::string &name) const {
  auto it = byName_.find(name);
  if (it == byName_.end())
    return Status::error(path_ + ": no tensor named '" + name + "'");
  const SafeTensorsEntry &e = header_.entries[it->second];
  TensorView view;
  view.name = e.name;
  view.dtype = e.dtype;
  view.shape = e.shape;
  view.data = base_ + header_.dataOffset + e.begin;
  view.byteSize = static_cast<size_t>(e.end - e.begin);
  return view;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.entries.size());
  for (const SafeTensorsEntry &e : header_.entries)
    out.push_back(e.name);
  return out;
}

//===----------------------------------------------------------------------===//
// SafeTensorsWriter
//===----------------------------------------------------------------------===//

Status SafeTensorsWriter::addTensor(const std::string &name, DType dtype,
                                    const std::vector<int64_t> &shape,
                                    std::vector<uint8_t> bytes) {
  auto fail = [&](const std::string &why) {
    return Status::error("tensor '" + name + "': " + why);
  };
  if (name == "__metadata__")
    return fail("the name is reserved for metadata");
  for (const Pending &p : tensors_)
    if (p.name == name)
      return fail("added twice");
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return fail("shape " + formatShape(shape) + " has a negative dimension");
    if (mulOverflows(elements, static_cast<uint64_t>(d), elements))
      return fail("shape " + formatShape(shape) + " is too large");
  }
  uint64_t need = 0;
  if (mulOverflows(elements, dtypeSize(dtype), need) || need != bytes.size())
    return fail("got " + std::to_string(bytes.size()) + " bytes but shape " +
                formatShape(shape) + " of " + dtypeName(dtype) + " needs " +
                std::to_string(elements * dtypeSize(dtype)));
  tensors_.push_back(Pending{name, dtype, shape, std::move(bytes)});
  return Status::ok();
}

Status SafeTensorsWriter::addTensor(const std::string &name, DType dtype,
                                    const std::vector<int64_t> &shape,
                                    const void *data, size_t byteSize) {
  const uint8_t *p = static_cast<const uint8_t *>(data);
  return addTensor(name, dtype, shape,
                   std::vector<uint8_t>(p, p + (p ? byteSize : 0)));
}

Status SafeTensorsWriter::addTensorFromF32(const std::string &name,
                                           DType dtype,
                                           const std::vector<int64_t> &shape,
                                           const float *values) {
  for (int64_t d : shape)
    if (d < 0)
      return Status::error("tensor '" + name + "': shape " +
                           formatShape(shape) + " has a negative dimension");
  const size_t n = static_cast<size_t>(numElements(shape));
  std::vector<uint8_t> bytes(n * dtypeSize(dtype));
  switch (dtype) {
  case DType::F32:
    if (n)
      std::memcpy(bytes.data(), values, n * 4);
    break;
  case DType::BF16:
    for (size_t i = 0; i < n; ++i) {
      uint16_t b = f32ToBf16(values[i]);
      std::memcpy(&bytes[2 * i], &b, 2);
    }
    break;
  case DType::F8_E4M3:
    for (size_t i = 0; i < n; ++i)
      bytes[i] = f32ToF8e4m3(values[i]);
    break;
  default:
    return Status::error("tensor '" + name + "': cannot encode f32 as " +
                         dtypeName(dtype));
  }
  return addTensor(name, dtype, shape, std::move(bytes));
}

void SafeTensorsWriter::setMetadata(const std::string &key,
                                    const std::string &value) {
  metadata_[key] = value;
}

std::string SafeTensorsWriter::headerText(std::vector<size_t> &order) const {
  order.clear();
  for (size_t i = 0; i < tensors_.size(); ++i)
    order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t sa = dtypeSize(tensors_[a].dtype), sb = dtypeSize(tensors_[b].dtype);
    if (sa != sb)
      return sa > sb;
    return tensors_[a].name < tensors_[b].name;
  });
  json root = json::object();
  uint64_t offset = 0;
  for (size_t i : order) {
    const Pending &p = tensors_[i];
    json entry = json::object();
    entry["dtype"] = dtypeName(p.dtype);
    entry["shape"] = p.shape;
    entry["data_offsets"] = {offset, offset + p.bytes.size()};
    root[p.name] = std::move(entry);
    offset += p.bytes.size();
  }
  if (!metadata_.empty())
    root["__metadata__"] = metadata_;
  // error_handler_t::replace: dump() would otherwise throw on a name that is
  // not valid UTF-8.
  std::string header =
      root.dump(-1, ' ', false, json::error_handler_t::replace);
  // The format pads the header with spaces so the data section starts
  // 8-byte aligned.
  while (header.size() % 8 != 0)
    header.push_back(' ');
  return header;
}

std::vector<uint8_t> SafeTensorsWriter::serialize() const {
  std::vector<size_t> order;
  std::string header = headerText(order);
  std::vector<uint8_t> out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i : order)
    out.insert(out.end(), tensors_[i].bytes.begin(), tensors_[i].bytes.end());
  return out;
}

Status SafeTensorsWriter::write(const std::string &path) const {
  std::vector<size_t> order;
  std::string header = headerText(order);

  const std::string tmp = path + ".tmp";
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return Status::error(tmp + ": cannot create: " + std::strerror(errno));
  uint8_t lenBytes[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    lenBytes[i] = static_cast<uint8_t>(n >> (8 * i));
  bool ok = std::fwrite(lenBytes, 1, 8, f) == 8 &&
            std::fwrite(header.data(), 1, n, f) == n;
  for (size_t i : order) {
    const std::vector<uint8_t> &b = tensors_[i].bytes;
    if (ok && !b.empty())
      ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
  }
  std::string why = ok ? "" : std::strerror(errno);
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    why = std::strerror(errno);
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::error(tmp + ": write failed: " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    why = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::error(path + ": cannot rename from " + tmp + ": " + why);
  }
  return Status::ok();
}

} // namespace m2c
