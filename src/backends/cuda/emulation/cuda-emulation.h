// Host emulation of the CUDA C that convc's renderer emits (src/backends/cuda/render.ts), so the
// exact kernels.cu bytes nvcc compiles for a GPU also compile with g++ (C++20) and run on the
// CPU. A translation unit includes this header, then kernels.cu, then lists its kernels with
// convc_emu::describe_kernel (build.ts generates that unit); with -I include/ for cuda_fp16.h.
//
// What the dialect's words become:
//   __global__, __device__, __host__, __launch_bounds__(...)   nothing (build.ts reads launch
//                                            bounds from the source text for the driver)
//   __forceinline__, __noinline__, __align__(n)   the GNU attributes
//   __restrict__                             g++'s own
//   __shared__                               static thread_local: one copy per worker thread,
//                                            and a worker runs one block at a time (worker-pool.h);
//                                            plain static under AddressSanitizer (see below)
//   threadIdx, blockIdx, blockDim, gridDim   the running fiber's (builtins.h)
//   __syncthreads(), __shfl_xor_sync(...)    stops of the block scheduler, with __FILE__ and
//                                            __LINE__ so a divergent barrier names its lines
//   float4, make_float4, rsqrtf              builtins.h; other math is <math.h>'s
//   __half and its conversions               include/cuda_fp16.h, only where kernels.cu
//                                            includes it, as with nvcc
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "block-scheduler.h"
#include "builtins.h"
#include "emulated-abi.h"
#include "kernel-launcher.h"
#include "worker-pool.h"

// Defined after the includes above so that no system header sees them.
#define __global__
#define __device__
#define __host__
#define __launch_bounds__(...)
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#ifdef __SANITIZE_ADDRESS__
// AddressSanitizer puts no redzones around thread-local variables (google/sanitizers#12), so
// an index past a shared array would land unseen in the next one. Under it, shared arrays are
// plain statics, which it does guard, and blocks run on one worker (worker-pool.h).
#define __shared__ static
#else
#define __shared__ static thread_local
#endif
#define __syncthreads() ::convc_emu::sync_threads(__FILE__, __LINE__)
#define __shfl_xor_sync(...) ::convc_emu::shuffle_xor(__FILE__, __LINE__, __VA_ARGS__)

// CUDA's device-side warpSize.
static constexpr int warpSize = 32;
