//===- CudaDriverTest.cpp - Driver loading, PTX JIT and its error log -----===//
//
// Without a GPU (CI) only the no-driver path runs; the rest skips and says
// so. On the GPU machine scripts/gpu/run.sh also points M2C_PTX_DIR at the
// PTX m2c compiled, and every module must load on the real driver.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/CudaDriver.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fstream>
#include <sstream>

using namespace m2c;
using namespace m2c::cuda;

namespace {

TEST(CudaDriverTest, MissingDriverIsAClearError) {
  StatusOr<std::unique_ptr<CudaDriver>> driver = CudaDriver::load("libcuda-does-not-exist.so.1");
  ASSERT_FALSE(driver);
  EXPECT_EQ(driver.status().message().rfind("the CUDA driver (libcuda-does-not-exist.so.1) cannot "
                                            "be loaded: ",
                                            0),
            0u)
      << driver.status().message();
}

class CudaDeviceTest : public ::testing::Test {
protected:
  void SetUp() override {
    StatusOr<std::unique_ptr<CudaDriver>> loaded = CudaDriver::load();
    if (!loaded)
      GTEST_SKIP() << "no usable CUDA driver here (" << loaded.status().message() << ")";
    driver_ = loaded.take();
    Status status = driver_->useDevice(0);
    ASSERT_TRUE(status) << status.message();
  }
  std::unique_ptr<CudaDriver> driver_;
};

constexpr const char *kTinyPtx = R"(.version 7.8
.target sm_80
.address_size 64
.visible .entry m2c_test_store(.param .u64 out) {
  .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [out];
  cvta.to.global.u64 %rd1, %rd1;
  st.global.u32 [%rd1], 7;
  ret;
}
)";

TEST_F(CudaDeviceTest, LoadsPtxAndFindsTheEntry) {
  StatusOr<std::string> name = driver_->deviceName(0);
  ASSERT_TRUE(name) << name.status().message();
  StatusOr<ModuleHandle> module = driver_->loadPtx(kTinyPtx, "m2c_test_store");
  ASSERT_TRUE(module) << module.status().message();
  EXPECT_TRUE(driver_->function(*module, "m2c_test_store"));
  StatusOr<FunctionHandle> missing = driver_->function(*module, "no_such_entry");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("kernel entry no_such_entry: "), std::string::npos);
  driver_->unload(*module);
}

TEST_F(CudaDeviceTest, BadPtxNamesTheKernelAndCarriesTheJitLog) {
  std::string broken = kTinyPtx;
  broken.replace(broken.find("st.global.u32"), 13, "st.global.bogus");
  StatusOr<ModuleHandle> module = driver_->loadPtx(broken, "m2c_broken");
  ASSERT_FALSE(module);
  const std::string &message = module.status().message();
  EXPECT_EQ(message.rfind("kernel m2c_broken: the driver could not load its PTX: ", 0), 0u)
      << message;
  EXPECT_NE(message.find("JIT log:"), std::string::npos) << message;
}

TEST_F(CudaDeviceTest, EveryCompiledKernelLoads) {
  const char *dir = std::getenv("M2C_PTX_DIR");
  if (!dir)
    GTEST_SKIP() << "M2C_PTX_DIR is not set (scripts/gpu/run.sh sets it to m2c's PTX)";
  if (DIR *probe = opendir(dir))
    closedir(probe);
  else
    GTEST_SKIP() << "M2C_PTX_DIR (" << dir
                 << ") is not a folder: run scripts/gpu/prepare.sh here and carry .deps";
  int loaded = 0;
  std::vector<std::string> dirs = {dir};
  for (size_t i = 0; i < dirs.size(); ++i) {
    DIR *handle = opendir(dirs[i].c_str());
    ASSERT_TRUE(handle) << dirs[i];
    while (dirent *entry = readdir(handle)) {
      std::string name = entry->d_name;
      std::string path = dirs[i] + "/" + name;
      if (name == "." || name == "..")
        continue;
      if (entry->d_type == DT_DIR) {
        dirs.push_back(path);
        continue;
      }
      if (name.size() < 5 || name.compare(name.size() - 4, 4, ".ptx") != 0)
        continue;
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      StatusOr<ModuleHandle> module = driver_->loadPtx(text.str(), name);
      EXPECT_TRUE(module) << module.status().message();
      if (module)
        driver_->unload(*module);
      ++loaded;
    }
    closedir(handle);
  }
  EXPECT_GT(loaded, 0) << "no .ptx files under " << dir;
  std::printf("[ cuda     ] loaded %d PTX modules\n", loaded);
}

} // namespace
