//===- ThreadPool.h - Fixed worker pool for the CPU kernels --- -*- C++ -*-===//
//
// A deliberately small pool: N-1 long-lived workers plus the calling thread
// share the chunks of one parallelFor at a time. The pool promises nothing
// about which thread runs which chunk; the kernels get results that are
// bitwise independent of the thread count by computing every output element
// entirely inside one chunk with a fixed reduction order, so chunk boundaries
// and scheduling never change the arithmetic.
//
//===----------------------------------------------------------------------===//
#ifndef M2C_RUNTIME_CPU_THREADPOOL_H
#define M2C_RUNTIME_CPU_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace m2c::cpu {

class ThreadPool {
public:
  /// `numThreads` counts the caller, so numThreads - 1 workers are started;
  /// 0 means std::thread::hardware_concurrency() (at least 1). With 1 every
  /// parallelFor runs inline on the caller.
  explicit ThreadPool(int numThreads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int numThreads() const { return numThreads_; }

  /// Splits [0, n) into contiguous chunks and calls fn(begin, end) once per
  /// chunk on the workers and the caller; returns when every chunk is done.
  /// `minChunk` bounds how finely the range is cut (use it when one index is
  /// cheap). A parallelFor issued from inside a chunk runs inline, and calls
  /// from several outside threads take turns. fn must not throw.
  void parallelFor(int64_t n,
                   const std::function<void(int64_t begin, int64_t end)> &fn,
                   int64_t minChunk = 1);

private:
  void workerLoop();
  /// Claims and runs chunks of the current job until none is left; returns
  /// how many this thread ran.
  int64_t runChunks(const std::function<void(int64_t, int64_t)> &fn, int64_t n,
                    int64_t numChunks);

  int numThreads_ = 1;
  std::vector<std::thread> workers_;

  std::mutex callerMutex_; // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stop_ = false;
  bool jobOpen_ = false;    // workers join only an open job
  uint64_t generation_ = 0; // bumped per job so a worker joins each job once

  // The current job; written under mutex_ before generation_ is bumped.
  const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
  int64_t n_ = 0;
  int64_t numChunks_ = 0;
  std::atomic<int64_t> nextChunk_{0};
  int64_t chunksDone_ = 0; // guarded by mutex_
  int activeWorkers_ = 0;  // workers inside runChunks(); guarded by mutex_
};

} // namespace m2c::cpu

#endif // M2C_RUNTIME_CPU_THREADPOOL_H
