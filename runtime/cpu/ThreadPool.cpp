//===- ThreadPool.cpp - Fixed worker pool for the CPU kernels -------------===//
//
// One job at a time: the caller publishes (fn, n, numChunks) under the mutex,
// bumps the generation and then works on chunks itself. Chunks are claimed
// through an atomic counter, so a slow or late worker only means less work
// for it. The caller closes the job only once every chunk is done and no
// worker is still inside it, which is what lets fn live on the caller's stack.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/ThreadPool.h"

#include <algorithm>

namespace m2c::cpu {
namespace {
// Set while a thread runs chunks, so a nested parallelFor runs inline instead
// of deadlocking on a pool whose threads are all busy.
thread_local bool tInsideChunk = false;

struct ChunkRange {
  int64_t begin, end;
};

ChunkRange chunkRange(int64_t n, int64_t numChunks, int64_t i) {
  int64_t base = n / numChunks, rem = n % numChunks;
  int64_t begin = i * base + std::min(i, rem);
  return {begin, begin + base + (i < rem ? 1 : 0)};
}
} // namespace

ThreadPool::ThreadPool(int numThreads) {
  if (numThreads <= 0)
    numThreads = static_cast<int>(std::thread::hardware_concurrency());
  numThreads_ = std::max(1, numThreads);
  workers_.reserve(numThreads_ - 1);
  for (int i = 1; i < numThreads_; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::parallelFor(int64_t n,
                             const std::function<void(int64_t, int64_t)> &fn,
                             int64_t minChunk) {
  if (n <= 0)
    return;
  minChunk = std::max<int64_t>(1, minChunk);
  // A few chunks per thread evens out uneven chunk costs.
  int64_t numChunks = std::min<int64_t>((n + minChunk - 1) / minChunk,
                                        int64_t(numThreads_) * 4);
  if (numThreads_ == 1 || numChunks <= 1 || tInsideChunk) {
    fn(0, n);
    return;
  }

  std::lock_guard<std::mutex> callerLock(callerMutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_ = n;
    numChunks_ = numChunks;
    nextChunk_.store(0, std::memory_order_relaxed);
    chunksDone_ = 0;
    jobOpen_ = true;
    ++generation_;
  }
  wake_.notify_all();

  int64_t mine = runChunks(fn, n, numChunks);

  std::unique_lock<std::mutex> lock(mutex_);
  chunksDone_ += mine;
  done_.wait(lock,
             [&] { return chunksDone_ == numChunks_ && activeWorkers_ == 0; });
  jobOpen_ = false;
  fn_ = nullptr;
}

int64_t ThreadPool::runChunks(const std::function<void(int64_t, int64_t)> &fn,
                              int64_t n, int64_t numChunks) {
  bool wasInside = tInsideChunk;
  tInsideChunk = true;
  int64_t done = 0;
  for (;;) {
    int64_t i = nextChunk_.fetch_add(1, std::memory_order_relaxed);
    if (i >= numChunks)
      break;
    ChunkRange r = chunkRange(n, numChunks, i);
    fn(r.begin, r.end);
    ++done;
  }
  tInsideChunk = wasInside;
  return done;
}

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock,
               [&] { return stop_ || (jobOpen_ && generation_ != seen); });
    if (stop_)
      return;
    seen = generation_;
    // Copies taken under the mutex: the job cannot close while we are active.
    const std::function<void(int64_t, int64_t)> *fn = fn_;
    int64_t n = n_, numChunks = numChunks_;
    ++activeWorkers_;
    lock.unlock();
    int64_t done = runChunks(*fn, n, numChunks);
    lock.lock();
    --activeWorkers_;
    chunksDone_ += done;
    done_.notify_all();
  }
}

} // namespace m2c::cpu
