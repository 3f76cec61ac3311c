//===- ThreadPoolTest.cpp - Coverage, nesting, concurrency ----------------===//
#include "runtime/cpu/ThreadPool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace m2c::cpu {
namespace {

TEST(CpuThreadPool, DefaultHasAtLeastOneThread) {
  ThreadPool pool;
  EXPECT_GE(pool.numThreads(), 1);
  ThreadPool three(3);
  EXPECT_EQ(three.numThreads(), 3);
}

TEST(CpuThreadPool, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 4, 7}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 63, 1000, 100003}) {
      for (int64_t minChunk : {1, 16, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallelFor(
            n,
            [&](int64_t begin, int64_t end) {
              ASSERT_LE(0, begin);
              ASSERT_LT(begin, end);
              ASSERT_LE(end, n);
              for (int64_t i = begin; i < end; ++i)
                hits[i].fetch_add(1);
            },
            minChunk);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1)
              << "threads " << threads << " n " << n << " index " << i;
      }
    }
  }
}

TEST(CpuThreadPool, UsesWorkersAndCaller) {
  ThreadPool pool(4);
  std::mutex m;
  std::vector<std::thread::id> seen;
  // Enough slow chunks that more than one thread must pick some up.
  pool.parallelFor(16, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard<std::mutex> lock(m);
    seen.push_back(std::this_thread::get_id());
  });
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_GT(seen.size(), 1u);
}

TEST(CpuThreadPool, NestedParallelForRunsInline) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  pool.parallelFor(8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      pool.parallelFor(100, [&](int64_t b, int64_t e) { total += e - b; });
  });
  EXPECT_EQ(total.load(), 800);
}

TEST(CpuThreadPool, CallersFromSeveralThreadsTakeTurns) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep)
        pool.parallelFor(1000, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (std::thread &t : callers)
    t.join();
  EXPECT_EQ(total.load(), 4 * 50 * 1000);
}

TEST(CpuThreadPool, ManyShortJobsDoNotLoseWork) {
  // Stresses the hand-over between jobs: a worker that wakes late must not
  // run a chunk of the next job with the previous job's function.
  ThreadPool pool(4);
  for (int rep = 0; rep < 2000; ++rep) {
    std::vector<int> out(9, -1);
    pool.parallelFor(9, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        out[i] = rep;
    });
    for (int v : out)
      ASSERT_EQ(v, rep);
  }
}

} // namespace
} // namespace m2c::cpu
