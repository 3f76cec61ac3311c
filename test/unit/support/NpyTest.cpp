// Unit tests for the .npy reader/writer: round trips, the exact numpy header, malformed files.
#include "runtime/support/Npy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace m2c;

namespace {

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/m2c_npy_" + name;
}

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A format 1.0 image with the given header dict and payload (padded like
/// numpy so the dict itself is what is under test).
std::string makeNpy(const std::string &dict, const std::string &payload,
                    char major = 1) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0)
    header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(major);
  out.push_back(0);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + payload;
}

std::string parseError(const std::string &bytes) {
  StatusOr<NpyArray> a = parseNpy(bytes.data(), bytes.size());
  return a.isOk() ? "<ok>" : a.status().message();
}

} // namespace

TEST(NpyTest, WritesNumpyCompatibleHeader) {
  std::string path = tempPath("header.npy");
  const float data[6] = {0, 1, 2, 3, 4, 5};
  ASSERT_TRUE(writeNpy(path, data, {2, 3}).isOk());
  std::string bytes = slurp(path);
  ASSERT_EQ(bytes.size(), 128u + 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(uint8_t(bytes[8]) | (uint8_t(bytes[9]) << 8), 118);
  // What numpy.save(np.arange(6, dtype='<f4').reshape(2, 3)) writes.
  std::string dict = "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (2, 3), }";
  EXPECT_EQ(bytes.substr(10, dict.size()), dict);
  EXPECT_EQ(bytes[127], '\n');
  EXPECT_EQ(bytes.find_first_not_of(' ', 10 + dict.size()), 127u);
  std::remove(path.c_str());
}

TEST(NpyTest, RoundTripFloat32) {
  std::string path = tempPath("f32.npy");
  std::vector<float> data = {1.5f, -2.25f, 0.0f, 3e38f, -0.0f, 1e-45f};
  ASSERT_TRUE(writeNpy(path, data.data(), {3, 2}).isOk());
  StatusOr<NpyArray> a = readNpy(path);
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->dtype, NpyDType::Float32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a->numElements(), 6);
  EXPECT_EQ(a->f32, data);
  EXPECT_TRUE(a->i32.empty());
  EXPECT_TRUE(a->i64.empty());
  std::remove(path.c_str());
}

TEST(NpyTest, RoundTripInt32And1D) {
  std::string path = tempPath("i32.npy");
  std::vector<int32_t> data = {-1, 0, 2147483647, -2147483647 - 1, 7};
  ASSERT_TRUE(writeNpy(path, data.data(), {5}).isOk());
  std::string bytes = slurp(path);
  EXPECT_NE(bytes.find("'shape': (5,), }"), std::string::npos);
  StatusOr<NpyArray> a = readNpy(path);
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->dtype, NpyDType::Int32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(a->i32, data);
  std::remove(path.c_str());
}

TEST(NpyTest, RoundTripInt64ScalarAndEmpty) {
  std::string path = tempPath("i64.npy");
  int64_t scalar = -1234567890123LL;
  ASSERT_TRUE(writeNpy(path, &scalar, {}).isOk());
  StatusOr<NpyArray> a = readNpy(path);
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->dtype, NpyDType::Int64);
  EXPECT_TRUE(a->shape.empty());
  EXPECT_EQ(a->i64, std::vector<int64_t>{scalar});

  ASSERT_TRUE(writeNpy(path, static_cast<const float *>(nullptr), {0, 3})
                  .isOk());
  StatusOr<NpyArray> e = readNpy(path);
  ASSERT_TRUE(e.isOk()) << e.status().message();
  EXPECT_EQ(e->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(e->numElements(), 0);
  EXPECT_TRUE(e->f32.empty());
  std::remove(path.c_str());
}

TEST(NpyTest, ReadsOtherHeaderSpellings) {
  // Key order, quotes and spacing vary between writers; version 2 uses a
  // 4-byte header length.
  std::string v1 = makeNpy(
      "{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<i4\"}",
      std::string(8, '\0'));
  StatusOr<NpyArray> a = parseNpy(v1.data(), v1.size());
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));

  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1L), }\n";
  std::string v2("\x93NUMPY\x02\x00", 8);
  v2.push_back(static_cast<char>(dict.size()));
  v2.append(3, '\0');
  v2 += dict + std::string(4, '\0');
  StatusOr<NpyArray> b = parseNpy(v2.data(), v2.size());
  ASSERT_TRUE(b.isOk()) << b.status().message();
  EXPECT_EQ(b->shape, (std::vector<int64_t>{1, 1}));
}

TEST(NpyTest, MalformedFilesAreErrors) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (2,), }";
  const std::string payload(8, '\0');
  ASSERT_EQ(parseError(makeNpy(ok, payload)), "<ok>");

  EXPECT_EQ(parseError("hello world, not numpy"), "not an npy file (bad magic)");
  EXPECT_EQ(parseError(""), "not an npy file (bad magic)");
  EXPECT_EQ(parseError(makeNpy(ok, payload, 9)),
            "unsupported npy format version 9.0");
  EXPECT_EQ(parseError(makeNpy(ok, payload + "x")),
            "npy data size mismatch: shape (2,) of <f4 needs 8 bytes, file "
            "has 9");
  EXPECT_EQ(parseError(makeNpy(ok, payload.substr(1))),
            "npy data size mismatch: shape (2,) of <f4 needs 8 bytes, file "
            "has 7");
  EXPECT_EQ(parseError(makeNpy("{'descr': '>f4', 'fortran_order': False, "
                               "'shape': (2,), }",
                               payload)),
            "npy header: unsupported dtype '>f4' (expected '<f4', '<i4' or "
            "'<i8')");
  EXPECT_EQ(parseError(makeNpy("{'descr': '<f4', 'fortran_order': True, "
                               "'shape': (2,), }",
                               payload)),
            "npy header: fortran_order = True is not supported");
  EXPECT_EQ(parseError(makeNpy("{'descr': '<f4', 'shape': (2,), }", payload)),
            "npy header is missing 'fortran_order'");
  EXPECT_EQ(parseError(makeNpy("{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (-2,), }",
                               payload)),
            "npy header: 'shape' is not a tuple of non-negative integers");
  EXPECT_EQ(parseError(makeNpy("{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (2,), 'extra': 1}",
                               payload)),
            "npy header: unexpected key 'extra'");
  EXPECT_EQ(parseError(makeNpy("['descr']", payload)),
            "npy header is not a dict");
  EXPECT_EQ(parseError(makeNpy("{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (4611686018427387904, 4), }",
                               payload)),
            "npy shape (4611686018427387904, 4) is too large");

  // Every truncation of a valid file is an error, never a crash.
  std::string full = makeNpy(ok, payload);
  for (size_t n = 0; n < full.size(); ++n)
    EXPECT_NE(parseError(full.substr(0, n)), "<ok>") << "length " << n;
}

TEST(NpyTest, IoErrorsNameThePath) {
  StatusOr<NpyArray> missing = readNpy("/nonexistent/m2c/x.npy");
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().message(),
            "/nonexistent/m2c/x.npy: cannot open: No such file or directory");

  std::string bad = tempPath("bad.npy");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "garbage";
  }
  StatusOr<NpyArray> garbage = readNpy(bad);
  ASSERT_FALSE(garbage.isOk());
  EXPECT_EQ(garbage.status().message(), bad + ": not an npy file (bad magic)");
  std::remove(bad.c_str());

  const float x = 1.0f;
  Status s = writeNpy("/nonexistent/m2c/y.npy", &x, {1});
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), "/nonexistent/m2c/y.npy: cannot open for writing: No "
                         "such file or directory");
  Status neg = writeNpy(tempPath("neg.npy"), &x, {-1});
  ASSERT_FALSE(neg.isOk());
  EXPECT_EQ(neg.message(), tempPath("neg.npy") + ": invalid npy shape (-1,)");
}
