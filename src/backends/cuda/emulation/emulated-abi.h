// The contract between the emulated driver (driver.cpp, built as libcuda.so.1) and a kernels
// shared object (kernels.cu + the generated registry, built by build.ts). The driver dlopens a
// kernels object and reads one exported table; everything else stays private to each side, so
// two modules loaded at once never see each other's symbols. Plain C types only: the two sides
// are separate shared objects, possibly built at different times, and the version field lets
// the driver refuse an object built against another layout instead of misreading it.
#pragma once

#define CONVC_EMULATED_ABI_VERSION 1u

// The symbol the driver looks up in a kernels object.
#define CONVC_EMULATED_KERNELS_SYMBOL "convc_emulated_kernels"

extern "C" {

/** One kernel parameter, as the launcher unpacks it from kernelParams[i]. */
struct convc_emulated_param {
  unsigned int size;        // bytes kernelParams[i] points at
  unsigned int is_pointer;  // 1: a device pointer, which the driver checks against its allocations
};

/** What one cuLaunchKernel asks for, after the driver has validated it. */
struct convc_emulated_launch {
  const char* kernel_name;  // for diagnostics
  unsigned int grid[3];
  unsigned int block[3];
  unsigned int workers;     // OS threads the grid's blocks may be spread over
};

/** Runs a whole grid; returns a CUresult (0 on success). */
typedef int (*convc_emulated_launcher)(const struct convc_emulated_launch* launch, void** kernel_params);

struct convc_emulated_kernel {
  const char* name;
  unsigned int max_threads_per_block;  // from __launch_bounds__; 0 when the kernel declares none
  unsigned int param_count;
  const struct convc_emulated_param* params;
  convc_emulated_launcher launch;
};

struct convc_emulated_kernel_table {
  unsigned int abi_version;
  unsigned int count;
  const struct convc_emulated_kernel* kernels;
};

}  // extern "C"
