// Runs one block: its threads are fibers on the calling OS thread, resumed in turn until each
// stops at a barrier, a shuffle, or the kernel's end. When all have stopped, the scheduler
// checks they stopped at the same place and releases them together, so __syncthreads() is a
// real barrier and __shfl_xor_sync a real exchange. A block whose threads stop at different
// barriers, or where some return while others wait, is a bug that a GPU turns into a hang or
// garbage; here it is reported (kernel, block, which threads stopped where) and aborts.
//
// Shuffles are resolved block-wide: every thread publishes its value, the scheduler computes
// each thread's result from its warp's values, and all resume. That is exact as long as every
// thread of the block reaches the shuffle together, which is how convc's kernels use them (and
// anything else is reported like a divergent barrier).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "builtins.h"
#include "fiber.h"

namespace convc_emu {

constexpr unsigned int warp_size = 32;

enum class Stop : uint8_t { running, barrier, shuffle, returned };

/** One CUDA thread of a block: its fiber and where it stopped. */
struct ThreadSlot {
  Fiber fiber;
  unsigned int linear = 0;  // the thread's number within its block, x fastest
  Stop stop = Stop::running;
  const char* file = nullptr;
  int line = 0;
  // A shuffle under way: what the thread offers and asks for, then what it receives.
  uint64_t offered = 0;
  uint64_t received = 0;
  unsigned int member_mask = 0;
  unsigned int lane_mask = 0;
  int width = 0;
};

/** One launch, as every worker sees it. */
struct Job {
  const char* kernel_name = "";
  void (*run_thread)(const void* arguments) = nullptr;
  const void* arguments = nullptr;
  dim3 grid, block;
  unsigned long long blocks = 0;
  unsigned int threads = 0;  // per block
  // Workers take blocks in order from here; mutable, as workers hold the job const.
  mutable std::atomic<unsigned long long> next_block{0};
};

struct Worker;
inline thread_local Worker* current_worker = nullptr;
inline thread_local ThreadSlot* current_thread = nullptr;

inline void fiber_main();

/** An OS thread that runs blocks, with one fiber per thread of the largest block it has run. */
struct Worker {
  HostContext host;
  std::vector<std::unique_ptr<ThreadSlot>> slots;
  const Job* job = nullptr;
  bool quitting = false;

  Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Lets each fiber leave its loop for good (ASan then forgets its fake stack), then frees the
  // stacks. Runs on the worker's own OS thread, as fibers never change threads.
  ~Worker() {
    quitting = true;
    current_worker = this;
    for (auto& slot : slots) {
      current_thread = slot.get();
      switch_to_fiber(host, slot->fiber);
      fiber_destroy(slot->fiber);
    }
    current_thread = nullptr;
    current_worker = nullptr;
  }

  void reserve_threads(unsigned int threads) {
    while (slots.size() < threads) {
      auto slot = std::make_unique<ThreadSlot>();
      slot->linear = static_cast<unsigned int>(slots.size());
      fiber_create(slot->fiber, &fiber_main);
      slots.push_back(std::move(slot));
    }
  }

  void run(const Job& launch);
  void run_block(unsigned long long block);
};

/** Every fiber runs this: a kernel thread, then a wait for the next block, until quitting. */
inline void fiber_main() {
  Worker& worker = *current_worker;
  ThreadSlot& self = *current_thread;
  fiber_started(worker.host);
  for (;;) {
    if (worker.quitting) {
      switch_to_host(self.fiber, worker.host, /*last=*/true);
      fatal("a finished fiber was resumed");
    }
    worker.job->run_thread(worker.job->arguments);
    self.stop = Stop::returned;
    switch_to_host(self.fiber, worker.host, /*last=*/false);
  }
}

inline bool same_stop(const ThreadSlot& a, const ThreadSlot& b) {
  return a.stop == b.stop && a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

inline std::string stop_text(const ThreadSlot& s) {
  switch (s.stop) {
    case Stop::barrier:
      return std::string("wait at __syncthreads() at ") + s.file + ":" + std::to_string(s.line);
    case Stop::shuffle:
      return std::string("wait at __shfl_xor_sync() at ") + s.file + ":" + std::to_string(s.line);
    case Stop::returned:
      return "returned from the kernel";
    case Stop::running:
      break;
  }
  return "are running";
}

/** "0-31, 40, 42-63" */
inline std::string thread_ranges(const std::vector<unsigned int>& threads) {
  std::string text;
  for (size_t i = 0; i < threads.size();) {
    size_t j = i;
    while (j + 1 < threads.size() && threads[j + 1] == threads[j] + 1) ++j;
    if (!text.empty()) text += ", ";
    text += std::to_string(threads[i]);
    if (j > i) text += "-" + std::to_string(threads[j]);
    i = j + 1;
  }
  return text;
}

inline std::string block_text(const Job& job) {
  const uint3 b = builtins().block_idx;
  return std::string("kernel '") + job.kernel_name + "', block (" + std::to_string(b.x) + ", " + std::to_string(b.y) + ", " +
         std::to_string(b.z) + ") of " + std::to_string(job.threads) + " threads";
}

/** Prints which threads stopped where, grouped, and aborts. */
[[noreturn]] inline void report_stops(const Job& job, const std::vector<std::unique_ptr<ThreadSlot>>& slots, const char* problem) {
  std::vector<const ThreadSlot*> places;
  std::vector<std::vector<unsigned int>> threads;
  for (unsigned int t = 0; t < job.threads; ++t) {
    size_t k = 0;
    while (k < places.size() && !same_stop(*places[k], *slots[t])) ++k;
    if (k == places.size()) {
      places.push_back(slots[t].get());
      threads.emplace_back();
    }
    threads[k].push_back(t);
  }
  std::string text = "convc emulated CUDA: " + block_text(job) + ": " + problem + "\n";
  for (size_t k = 0; k < places.size(); ++k) text += "  threads " + thread_ranges(threads[k]) + " " + stop_text(*places[k]) + "\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] inline void report_shuffle(const Job& job, const ThreadSlot& s, const std::string& problem) {
  const std::string text = "convc emulated CUDA: " + block_text(job) + ": __shfl_xor_sync() at " + s.file + ":" + std::to_string(s.line) +
                           ", thread " + std::to_string(s.linear) + ": " + problem + "\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

/**
 * Gives each thread the value of its butterfly partner, as PTX's shfl.sync.bfly does: the
 * partner is lane ^ laneMask, and a partner past the end of the caller's width-sized segment
 * means the caller's own value.
 */
inline void exchange_shuffles(const Job& job, const std::vector<std::unique_ptr<ThreadSlot>>& slots) {
  for (unsigned int t = 0; t < job.threads; ++t) {
    ThreadSlot& s = *slots[t];
    const unsigned int lane = t % warp_size;
    const unsigned int warp_first = t - lane;
    const unsigned int warp_threads = job.threads - warp_first < warp_size ? job.threads - warp_first : warp_size;
    const unsigned int lanes = warp_threads == warp_size ? 0xffffffffu : (1u << warp_threads) - 1u;
    if (s.width < 1 || s.width > static_cast<int>(warp_size) || (s.width & (s.width - 1)) != 0) {
      report_shuffle(job, s, "width " + std::to_string(s.width) + " is not a power of two from 1 to 32");
    }
    if (s.member_mask != lanes) {
      char text[200];
      std::snprintf(text, sizeof text,
                    "the mask is 0x%08x, but its warp (threads %u-%u) has lanes 0x%08x; every thread of the block reaches a shuffle "
                    "together here, so the mask must name exactly the warp's threads",
                    s.member_mask, warp_first, warp_first + warp_threads - 1, lanes);
      report_shuffle(job, s, text);
    }
    const unsigned int width = static_cast<unsigned int>(s.width);
    const unsigned int segment_last = (lane & ~(width - 1)) | (width - 1);
    unsigned int source = lane ^ (s.lane_mask & (warp_size - 1));
    if (source > segment_last) source = lane;
    if (source >= warp_threads) {
      report_shuffle(job, s, "it reads lane " + std::to_string(source) + ", which a warp of " + std::to_string(warp_threads) + " threads lacks");
    }
    s.received = slots[warp_first + source]->offered;
  }
}

inline void Worker::run(const Job& launch) {
  job = &launch;
  builtins_of_this_thread.block_dim = launch.block;
  builtins_of_this_thread.grid_dim = launch.grid;
  reserve_threads(launch.threads);
  for (;;) {
    const unsigned long long block = launch.next_block.fetch_add(1, std::memory_order_relaxed);
    if (block >= launch.blocks) break;
    run_block(block);
  }
  job = nullptr;
}

inline void Worker::run_block(unsigned long long block) {
  const dim3 grid = job->grid;
  const dim3 shape = job->block;
  const unsigned int n = job->threads;
  builtins_of_this_thread.block_idx = uint3{static_cast<unsigned int>(block % grid.x), static_cast<unsigned int>(block / grid.x % grid.y),
                                            static_cast<unsigned int>(block / grid.x / grid.y)};
  for (unsigned int t = 0; t < n; ++t) slots[t]->stop = Stop::running;
  for (;;) {
    // One round: every released thread runs to its next stop. Odd blocks run their threads in
    // descending order, so a missing barrier between a write and another thread's read shows
    // whichever of the two threads the kernel numbers first.
    for (unsigned int i = 0; i < n; ++i) {
      const unsigned int t = block % 2 == 0 ? i : n - 1 - i;
      ThreadSlot& slot = *slots[t];
      if (slot.stop != Stop::running) continue;
      current_thread = &slot;
      builtins_of_this_thread.thread_idx = uint3{t % shape.x, t / shape.x % shape.y, t / shape.x / shape.y};
      switch_to_fiber(host, slot.fiber);
    }
    current_thread = nullptr;
    unsigned int returned = 0;
    const ThreadSlot* waiting = nullptr;
    bool agree = true;
    for (unsigned int t = 0; t < n; ++t) {
      const ThreadSlot& slot = *slots[t];
      if (slot.stop == Stop::returned) {
        ++returned;
      } else if (waiting == nullptr) {
        waiting = &slot;
      } else if (!same_stop(slot, *waiting)) {
        agree = false;
      }
    }
    if (returned == n) return;
    if (returned > 0) {
      report_stops(*job, slots,
                   "some threads returned while others wait at a barrier; on a GPU this block hangs or runs on without them. Every "
                   "thread of a block must reach each __syncthreads() (return only after the last one).");
    }
    if (!agree) {
      report_stops(*job, slots,
                   "threads of one block wait at different barriers; on a GPU that is undefined behaviour, usually a hang. Every "
                   "thread of a block must reach the same __syncthreads() (and __shfl_xor_sync()) each time.");
    }
    if (waiting->stop == Stop::shuffle) exchange_shuffles(*job, slots);
    for (unsigned int t = 0; t < n; ++t) slots[t]->stop = Stop::running;
  }
}

/** Switches from a kernel thread back to the scheduler, recording where it stopped. */
inline void stop_here(Stop stop, const char* file, int line) {
  ThreadSlot* self = current_thread;
  if (self == nullptr) fatal("__syncthreads() or __shfl_xor_sync() called outside a kernel launch");
  self->stop = stop;
  self->file = file;
  self->line = line;
  switch_to_host(self->fiber, current_worker->host, /*last=*/false);
}

inline void sync_threads(const char* file, int line) { stop_here(Stop::barrier, file, line); }

template <typename T>
inline T shuffle_xor(const char* file, int line, unsigned int mask, T value, int lane_mask, int width = static_cast<int>(warp_size)) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t), "__shfl_xor_sync exchanges values of at most 8 bytes");
  ThreadSlot* self = current_thread;
  if (self == nullptr) fatal("__shfl_xor_sync() called outside a kernel launch");
  self->offered = 0;
  std::memcpy(&self->offered, &value, sizeof(T));
  self->member_mask = mask;
  self->lane_mask = static_cast<unsigned int>(lane_mask);
  self->width = width;
  stop_here(Stop::shuffle, file, line);
  T result;
  std::memcpy(&result, &self->received, sizeof(T));
  return result;
}

}  // namespace convc_emu
