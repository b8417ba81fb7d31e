// Fibers: the threads of one emulated CUDA block, each with its own stack, switched cooperatively
// on one OS thread. A thread runs until it reaches a barrier or a shuffle (or returns), then
// hands control back to the OS thread's scheduler (block-scheduler.h).
//
// Switching: on x86-64 a dozen instructions save the callee-saved registers and swap stack
// pointers. ucontext's swapcontext would work everywhere but makes a signal-mask system call on
// every switch, and a block of 256 threads crossing ten barriers switches thousands of times.
// Other architectures (or -DCONVC_EMULATION_UCONTEXT, to test that path here) use ucontext.
//
// AddressSanitizer must be told about each switch (__sanitizer_start/finish_switch_fiber), or it
// takes a fiber's stack for a wild pointer and reports nonsense; with that, an out-of-bounds
// access in a kernel is reported like any other.
//
// Fibers never move between OS threads: compilers keep addresses of thread_local variables in
// registers across calls, so a fiber resumed on another thread would read the wrong ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CONVC_EMULATION_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__) && !defined(CONVC_EMULATION_UCONTEXT)
#define CONVC_EMULATION_UCONTEXT 1
#endif
#ifdef CONVC_EMULATION_UCONTEXT
#include <ucontext.h>
#endif

namespace convc_emu {

// Kernels keep their registers and small arrays on the stack; ASan's redzones triple a frame.
// Only touched pages cost memory, so a generous reservation is cheap.
constexpr size_t fiber_stack_bytes = 256 * 1024;

[[noreturn]] inline void fatal(const char* what) {
  std::fprintf(stderr, "convc emulated CUDA: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

/** The OS thread's own context, which fibers return to. */
struct HostContext {
#ifdef CONVC_EMULATION_UCONTEXT
  ucontext_t context;
#else
  void* stack_pointer = nullptr;
#endif
#ifdef CONVC_EMULATION_ASAN
  void* fake_stack = nullptr;
  const void* stack_bottom = nullptr;  // learnt from the first switch into a fiber
  size_t stack_size = 0;
#endif
};

struct Fiber {
#ifdef CONVC_EMULATION_UCONTEXT
  ucontext_t context;
#else
  void* stack_pointer = nullptr;
#endif
  char* mapping = nullptr;  // guard page, then the stack
  size_t mapping_bytes = 0;
#ifdef CONVC_EMULATION_ASAN
  void* fake_stack = nullptr;
#endif
  char* stack_low() const { return mapping + page_bytes(); }
  static size_t page_bytes() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
};

#ifndef CONVC_EMULATION_UCONTEXT
// Saves the callee-saved registers and the SSE/x87 control words on the current stack, stores
// the stack pointer in *save, then loads `next` and restores the same from there. noipa: the
// compiler must treat it as a call that may read and write any memory, so no value is cached
// across a switch (another fiber may have changed shared memory meanwhile).
__attribute__((naked, noinline, noipa)) static void switch_stack(void** /*save*/, void* /*next*/) {
  __asm__ volatile(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "subq $8, %rsp\n\t"
      "stmxcsr (%rsp)\n\t"
      "fnstcw 4(%rsp)\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "ldmxcsr (%rsp)\n\t"
      "fldcw 4(%rsp)\n\t"
      "addq $8, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
#endif

/**
 * Maps a stack (with a guard page below it, so an overflow faults instead of corrupting the
 * neighbouring fiber) and prepares the fiber to start in `entry` on its first switch.
 */
inline void fiber_create(Fiber& fiber, void (*entry)()) {
  const size_t page = Fiber::page_bytes();
  fiber.mapping_bytes = fiber_stack_bytes + page;
  void* mapping = mmap(nullptr, fiber.mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) fatal("cannot map a fiber stack (out of address space?)");
  fiber.mapping = static_cast<char*>(mapping);
  if (mprotect(fiber.mapping, page, PROT_NONE) != 0) fatal("cannot protect a fiber stack's guard page");
#ifdef CONVC_EMULATION_UCONTEXT
  if (getcontext(&fiber.context) != 0) fatal("getcontext failed");
  fiber.context.uc_stack.ss_sp = fiber.stack_low();
  fiber.context.uc_stack.ss_size = fiber_stack_bytes;
  fiber.context.uc_link = nullptr;  // entry never returns
  makecontext(&fiber.context, entry, 0);
#else
  // The frame switch_stack pops: control words, r15..r12, rbx, rbp, then `ret` into entry with
  // the stack as a call would leave it (8 below a 16-byte boundary). rbp = 0 ends backtraces.
  auto* top = reinterpret_cast<uint64_t*>(fiber.stack_low() + fiber_stack_bytes);
  uint64_t* sp = top - 9;
  // A new fiber starts with the creating thread's rounding and exception masks.
  uint32_t mxcsr = 0;
  uint16_t x87_control = 0;
  __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(x87_control));
  sp[0] = static_cast<uint64_t>(mxcsr) | (static_cast<uint64_t>(x87_control) << 32);
  for (int i = 1; i <= 6; ++i) sp[i] = 0;  // r15 r14 r13 r12 rbx rbp
  sp[7] = reinterpret_cast<uint64_t>(entry);
  sp[8] = 0;  // entry's return address: it never returns
  fiber.stack_pointer = sp;
#endif
}

/** Unmaps a fiber's stack. The fiber must never run again. */
inline void fiber_destroy(Fiber& fiber) {
  if (fiber.mapping == nullptr) return;
#ifdef CONVC_EMULATION_ASAN
  // Frames left on the stack keep their redzones poisoned; clear them, or whatever is mapped
  // here next would be reported as overflowing.
  __asan_unpoison_memory_region(fiber.stack_low(), fiber_stack_bytes);
#endif
  munmap(fiber.mapping, fiber.mapping_bytes);
  fiber.mapping = nullptr;
}

/** From the OS thread into a fiber; returns when the fiber switches back. */
inline void switch_to_fiber(HostContext& host, Fiber& fiber) {
#ifdef CONVC_EMULATION_ASAN
  __sanitizer_start_switch_fiber(&host.fake_stack, fiber.stack_low(), fiber_stack_bytes);
#endif
#ifdef CONVC_EMULATION_UCONTEXT
  if (swapcontext(&host.context, &fiber.context) != 0) fatal("swapcontext failed");
#else
  switch_stack(&host.stack_pointer, fiber.stack_pointer);
#endif
#ifdef CONVC_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(host.fake_stack, nullptr, nullptr);
#endif
}

/** The first thing a fiber's entry does. */
inline void fiber_started(HostContext& host) {
#ifdef CONVC_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &host.stack_bottom, &host.stack_size);
#else
  (void)host;
#endif
}

/**
 * From a fiber back to the OS thread; returns when the thread switches to this fiber again.
 * `last`: the fiber will never be resumed (ASan then drops its fake stack).
 */
inline void switch_to_host(Fiber& fiber, HostContext& host, bool last) {
#ifdef CONVC_EMULATION_ASAN
  __sanitizer_start_switch_fiber(last ? nullptr : &fiber.fake_stack, host.stack_bottom, host.stack_size);
#else
  (void)last;
#endif
#ifdef CONVC_EMULATION_UCONTEXT
  if (swapcontext(&fiber.context, &host.context) != 0) fatal("swapcontext failed");
#else
  switch_stack(&fiber.stack_pointer, host.stack_pointer);
#endif
#ifdef CONVC_EMULATION_ASAN
  __sanitizer_finish_switch_fiber(fiber.fake_stack, nullptr, nullptr);
#endif
}

}  // namespace convc_emu
