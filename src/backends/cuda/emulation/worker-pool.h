// Spreads a grid's blocks over OS threads. Blocks of one launch are independent, so each
// worker takes the next block number until none are left, and a launch uses every core.
//
// Why persistent threads: a worker's fibers (and their stacks) belong to its OS thread for
// good (see fiber.h), so starting threads per launch would mean new fibers per launch. Why
// `__shared__` is `static thread_local`: a worker runs one block at a time, so its thread's copy
// of each shared array is exactly one block's. The pool lives as long as the kernels object;
// dlclose (cuModuleUnload) or exit runs its destructor, which lets the threads finish.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "block-scheduler.h"
#include "emulated-abi.h"

namespace convc_emu {

class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool pool;
    return pool;
  }

  /** Runs every block of `job` on `workers` threads and returns when all are done. */
  void run(const Job& job, unsigned int workers) {
    // One launch at a time: launches on one context are ordered anyway (no streams here).
    std::lock_guard<std::mutex> launching(launch_mutex_);
    std::unique_lock<std::mutex> lock(mutex_);
    while (threads_.size() < workers) {
      const unsigned int index = static_cast<unsigned int>(threads_.size());
      threads_.emplace_back([this, index] { serve(index); });
    }
    job_ = &job;
    active_ = workers;
    running_ = workers;
    ++generation_;
    wake_.notify_all();
    // The mutex hand-off orders every worker's writes before the caller reads the results.
    finished_.wait(lock, [this] { return running_ == 0; });
    job_ = nullptr;
  }

  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quitting_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

 private:
  WorkerPool() = default;

  void serve(unsigned int index) {
    Worker worker;
    current_worker = &worker;
    unsigned long long seen = 0;
    for (;;) {
      const Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quitting_ || generation_ != seen; });
        if (quitting_) break;
        seen = generation_;
        if (index >= active_) continue;  // this launch has fewer blocks than workers
        job = job_;
      }
      worker.run(*job);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--running_ == 0) finished_.notify_all();
    }
  }

  std::mutex launch_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::vector<std::thread> threads_;
  const Job* job_ = nullptr;
  unsigned long long generation_ = 0;
  unsigned int active_ = 0;
  unsigned int running_ = 0;
  bool quitting_ = false;
};

/** Runs a whole grid: `run_thread(arguments)` once per thread of every block. */
inline int run_grid(const convc_emulated_launch& launch, void (*run_thread)(const void*), const void* arguments) {
  Job job;
  job.kernel_name = launch.kernel_name;
  job.run_thread = run_thread;
  job.arguments = arguments;
  job.grid = dim3(launch.grid[0], launch.grid[1], launch.grid[2]);
  job.block = dim3(launch.block[0], launch.block[1], launch.block[2]);
  job.blocks = static_cast<unsigned long long>(launch.grid[0]) * launch.grid[1] * launch.grid[2];
  job.threads = launch.block[0] * launch.block[1] * launch.block[2];
  if (job.blocks == 0 || job.threads == 0) return 1;  // CUDA_ERROR_INVALID_VALUE; the driver checks first
#ifdef __SANITIZE_ADDRESS__
  // Shared arrays are plain statics under AddressSanitizer (cuda-emulation.h): one block at a time.
  unsigned long long workers = 1;
#else
  unsigned long long workers = launch.workers == 0 ? 1 : launch.workers;
#endif
  if (workers > job.blocks) workers = job.blocks;
  WorkerPool::instance().run(job, static_cast<unsigned int>(workers));
  return 0;
}

}  // namespace convc_emu
