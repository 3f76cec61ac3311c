// NumPy .npy reading and writing for golden-numerics tests.
#include "runtime/support/Npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Npy.cpp copies little-endian ('<') data as-is; port it for this host"
#endif

namespace m2c {

namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy.save aligns the data start to 64 bytes so it can be mmapped.
constexpr size_t kAlign = 64;

size_t itemSize(NpyDType dtype) {
  return dtype == NpyDType::Int64 ? 8 : 4;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

// Element count, or -1 on a negative dimension or overflow past 2^62.
int64_t elementCount(const std::vector<int64_t> &shape) {
  const int64_t limit = int64_t(1) << 62;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return -1;
    if (d != 0 && n > limit / d)
      return -1;
    n *= d;
  }
  return n;
}

// A cursor over the header's Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
public:
  HeaderParser(const char *begin, const char *end) : p_(begin), end_(end) {}

  void skipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' ||
                         *p_ == '\r'))
      ++p_;
  }
  bool consume(char c) {
    skipSpace();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool peek(char c) {
    skipSpace();
    return p_ < end_ && *p_ == c;
  }
  bool parseString(std::string &out) {
    skipSpace();
    if (p_ >= end_ || (*p_ != '\'' && *p_ != '"'))
      return false;
    char quote = *p_++;
    const char *start = p_;
    while (p_ < end_ && *p_ != quote)
      ++p_;
    if (p_ >= end_)
      return false;
    out.assign(start, p_);
    ++p_;
    return true;
  }
  bool parseWord(const char *word) {
    skipSpace();
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::strncmp(p_, word, n) != 0)
      return false;
    p_ += n;
    return true;
  }
  bool parseInt(int64_t &out) {
    skipSpace();
    const char *start = p_;
    int64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10)
        return false;
      v = v * 10 + (*p_++ - '0');
    }
    if (p_ == start)
      return false;
    if (p_ < end_ && *p_ == 'L') // Python 2 longs in old files
      ++p_;
    out = v;
    return true;
  }
  bool parseShape(std::vector<int64_t> &shape) {
    if (!consume('('))
      return false;
    shape.clear();
    while (!consume(')')) {
      int64_t d;
      if (!parseInt(d))
        return false;
      shape.push_back(d);
      if (!consume(',')) {
        if (!consume(')'))
          return false;
        break;
      }
    }
    return true;
  }
  bool atEnd() {
    skipSpace();
    return p_ == end_;
  }

private:
  const char *p_;
  const char *end_;
};

Status parseHeader(const char *begin, const char *end, NpyDType &dtype,
                   std::vector<int64_t> &shape) {
  HeaderParser hp(begin, end);
  if (!hp.consume('{'))
    return Status::error("npy header is not a dict");
  bool haveDescr = false, haveOrder = false, haveShape = false;
  while (!hp.consume('}')) {
    std::string key;
    if (!hp.parseString(key) || !hp.consume(':'))
      return Status::error("npy header: expected 'key': value");
    if (key == "descr") {
      std::string descr;
      if (!hp.parseString(descr))
        return Status::error("npy header: 'descr' is not a string");
      if (descr == "<f4")
        dtype = NpyDType::Float32;
      else if (descr == "<i4")
        dtype = NpyDType::Int32;
      else if (descr == "<i8")
        dtype = NpyDType::Int64;
      else
        return Status::error("npy header: unsupported dtype '" + descr +
                             "' (expected '<f4', '<i4' or '<i8')");
      haveDescr = true;
    } else if (key == "fortran_order") {
      if (hp.parseWord("True"))
        return Status::error(
            "npy header: fortran_order = True is not supported");
      if (!hp.parseWord("False"))
        return Status::error("npy header: 'fortran_order' is not a bool");
      haveOrder = true;
    } else if (key == "shape") {
      if (!hp.parseShape(shape))
        return Status::error(
            "npy header: 'shape' is not a tuple of non-negative integers");
      haveShape = true;
    } else {
      return Status::error("npy header: unexpected key '" + key + "'");
    }
    if (!hp.consume(',') && !hp.peek('}'))
      return Status::error("npy header: expected ',' or '}' after '" + key +
                           "'");
  }
  if (!hp.atEnd())
    return Status::error("npy header: trailing characters after the dict");
  if (!haveDescr || !haveOrder || !haveShape)
    return Status::error(std::string("npy header is missing '") +
                         (!haveDescr ? "descr" : !haveOrder ? "fortran_order"
                                                            : "shape") +
                         "'");
  return Status::ok();
}

std::string encodeHeader(NpyDType dtype, const std::vector<int64_t> &shape) {
  std::string dict = std::string("{'descr': '") + npyDescr(dtype) +
                     "', 'fortran_order': False, 'shape': " +
                     shapeString(shape) + ", }";
  // magic + version + uint16 length + dict + padding + '\n' = k * 64.
  size_t unpadded = kMagicLen + 2 + 2 + dict.size() + 1;
  size_t padded = (unpadded + kAlign - 1) / kAlign * kAlign;
  dict.append(padded - unpadded, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  return out + dict;
}

Status writeRaw(const std::string &path, NpyDType dtype, const void *data,
                const std::vector<int64_t> &shape) {
  int64_t n = elementCount(shape);
  if (n < 0)
    return Status::error(path + ": invalid npy shape " + shapeString(shape));
  if (n > 0 && !data)
    return Status::error(path + ": null data for npy shape " +
                         shapeString(shape));
  std::string header = encodeHeader(dtype, shape);
  // 65535 is the format 1.0 limit; only absurd ranks get near it.
  if (header.size() - 10 > 0xffff)
    return Status::error(path + ": npy shape of rank " +
                         std::to_string(shape.size()) +
                         " does not fit a format 1.0 header");
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return Status::error(path + ": cannot open for writing: " +
                         std::strerror(errno));
  size_t bytes = static_cast<size_t>(n) * itemSize(dtype);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  ok = ok && (bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes);
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok)
    return Status::error(path + ": write failed: " + std::strerror(err));
  return Status::ok();
}

} // namespace

const char *npyDescr(NpyDType dtype) {
  switch (dtype) {
  case NpyDType::Float32:
    return "<f4";
  case NpyDType::Int32:
    return "<i4";
  case NpyDType::Int64:
    return "<i8";
  }
  return "?";
}

int64_t NpyArray::numElements() const { return elementCount(shape); }

StatusOr<NpyArray> parseNpy(const void *data, size_t size) {
  const char *bytes = static_cast<const char *>(data);
  if (size < kMagicLen + 2 || std::memcmp(bytes, kMagic, kMagicLen) != 0)
    return Status::error("not an npy file (bad magic)");
  unsigned major = static_cast<unsigned char>(bytes[6]);
  unsigned minor = static_cast<unsigned char>(bytes[7]);
  size_t lenBytes = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
  if (lenBytes == 0)
    return Status::error("unsupported npy format version " +
                         std::to_string(major) + "." + std::to_string(minor));
  size_t headerStart = kMagicLen + 2 + lenBytes;
  if (size < headerStart)
    return Status::error("truncated npy header length");
  size_t headerLen = 0;
  for (size_t i = 0; i < lenBytes; ++i)
    headerLen |= static_cast<size_t>(
                     static_cast<unsigned char>(bytes[kMagicLen + 2 + i]))
                 << (8 * i);
  if (headerLen > size - headerStart)
    return Status::error("truncated npy header: declares " +
                         std::to_string(headerLen) + " bytes, file has " +
                         std::to_string(size - headerStart));

  NpyArray array;
  M2C_RETURN_IF_ERROR(parseHeader(bytes + headerStart,
                                  bytes + headerStart + headerLen,
                                  array.dtype, array.shape));
  int64_t n = array.numElements();
  if (n < 0)
    return Status::error("npy shape " + shapeString(array.shape) +
                         " is too large");
  size_t dataStart = headerStart + headerLen;
  size_t have = size - dataStart;
  size_t item = itemSize(array.dtype);
  if (static_cast<uint64_t>(n) > std::numeric_limits<size_t>::max() / item ||
      have != static_cast<size_t>(n) * item)
    return Status::error("npy data size mismatch: shape " +
                         shapeString(array.shape) + " of " +
                         npyDescr(array.dtype) + " needs " +
                         std::to_string(static_cast<uint64_t>(n) * item) +
                         " bytes, file has " + std::to_string(have));
  const char *src = bytes + dataStart;
  if (n == 0)
    return array; // memcpy from/to an empty vector's null data() is UB
  // memcpy: the data offset need not be aligned for the element type.
  switch (array.dtype) {
  case NpyDType::Float32:
    array.f32.resize(static_cast<size_t>(n));
    std::memcpy(array.f32.data(), src, have);
    break;
  case NpyDType::Int32:
    array.i32.resize(static_cast<size_t>(n));
    std::memcpy(array.i32.data(), src, have);
    break;
  case NpyDType::Int64:
    array.i64.resize(static_cast<size_t>(n));
    std::memcpy(array.i64.data(), src, have);
    break;
  }
  return array;
}

StatusOr<NpyArray> readNpy(const std::string &path) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::string contents;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0)
    contents.append(buf, got);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed)
    return Status::error(path + ": read failed: " + std::strerror(err));
  StatusOr<NpyArray> array = parseNpy(contents.data(), contents.size());
  if (!array)
    return array.status().withContext(path);
  return array;
}

Status writeNpy(const std::string &path, const float *data,
                const std::vector<int64_t> &shape) {
  return writeRaw(path, NpyDType::Float32, data, shape);
}
Status writeNpy(const std::string &path, const int32_t *data,
                const std::vector<int64_t> &shape) {
  return writeRaw(path, NpyDType::Int32, data, shape);
}
Status writeNpy(const std::string &path, const int64_t *data,
                const std::vector<int64_t> &shape) {
  return writeRaw(path, NpyDType::Int64, data, shape);
}

} // namespace m2c
