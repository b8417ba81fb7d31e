// CUDA's built-in index variables and the vector types kernels use. threadIdx, blockIdx,
// blockDim and gridDim are read-only views of one thread_local record that the scheduler fills
// before it resumes each fiber: every fiber of an OS thread shares that thread's TLS, so the
// record must be rewritten on each switch, which costs two stores.
#pragma once

#include <math.h>

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// CUDA aligns float4 to 16 bytes and float2 to 8, so a reinterpret_cast to them is an aligned
// access on both targets; a misaligned one faults here as it does on a GPU.
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
struct __attribute__((aligned(8))) float2 {
  float x, y;
};

static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }

// CUDA's single-precision intrinsics that the C library lacks. The others kernels call (sqrtf,
// expf, fabsf, fminf, fmaxf, copysignf, fmodf, floorf) are <math.h>'s, correctly rounded or
// close to it, which is within CUDA's documented error for each.
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

namespace convc_emu {

struct Builtins {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim;
  dim3 grid_dim;
};

inline thread_local Builtins builtins_of_this_thread;

/** The current fiber's builtins, read-only as CUDA's are. */
inline const Builtins& builtins() { return builtins_of_this_thread; }

}  // namespace convc_emu

#define threadIdx (::convc_emu::builtins().thread_idx)
#define blockIdx (::convc_emu::builtins().block_idx)
#define blockDim (::convc_emu::builtins().block_dim)
#define gridDim (::convc_emu::builtins().grid_dim)
