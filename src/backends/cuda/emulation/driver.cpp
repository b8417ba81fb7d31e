// An emulated CUDA driver: libcuda.so.1 with the exported names, types and CUresult values of
// CUDA 12/13's driver API (checked against cuda.h 13.0), implementing with host memory the calls
// a runner of convc's kernels needs. A runner written against the real driver runs unchanged
// on a machine without a GPU, and everything it does wrong that the real driver would refuse
// is refused here too, usually more strictly:
//   - calls before cuInit return CUDA_ERROR_NOT_INITIALIZED, calls needing a context without a
//     current one CUDA_ERROR_INVALID_CONTEXT (contexts are current per OS thread, as in CUDA);
//   - device memory is host memory of exactly the requested size (so AddressSanitizer sees a
//     kernel overrunning it), filled with 0xff bytes (NaN as f32 and f16) so a kernel reading
//     memory nobody wrote gives NaN instead of a lucky zero; a copy outside an allocation, or
//     a kernel pointer parameter outside one, is CUDA_ERROR_INVALID_VALUE;
//   - a module image is "CONVC-EMULATED-MODULE\n" and the absolute path of a kernels shared
//     object (build.ts), NUL-terminated; anything else is CUDA_ERROR_INVALID_IMAGE;
//   - launches run to completion before cuLaunchKernel returns (there are no streams).
// For tests of a runner's error paths, CONVC_EMULATED_CUDA_FAIL=<function>[:<CUresult>][,...]
// makes those exported functions fail with that code (default CUDA_ERROR_OUT_OF_MEMORY)
// without doing anything. CONVC_EMULATED_CUDA_THREADS=<n> sets the OS threads a launch uses
// (default: the machine's cores).
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "driver-api.h"
#include "emulated-abi.h"

#define CONVC_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr char module_magic[] = "CONVC-EMULATED-MODULE\n";
constexpr char device_name[] = "convc emulated CUDA device (CPU)";
// The driver API version cuda.h 13.0 declares (CUDA_VERSION).
constexpr int driver_version = 13000;
constexpr unsigned int max_threads_per_block = 1024;
// Static shared memory per block, as on every GPU since Kepler; dynamic shared memory (the
// opt-in beyond it) is not emulated, so the opt-in limit is the same.
constexpr int max_shared_bytes_per_block = 48 * 1024;

struct Allocation {
  size_t bytes;
};

}  // namespace

struct CUfunc_st {
  CUmod_st* module;
  const convc_emulated_kernel* kernel;
};

struct CUmod_st {
  void* library;
  const convc_emulated_kernel_table* table;
  std::map<std::string, CUfunc_st*> functions;  // handed out by cuModuleGetFunction, by name
};

// The device's primary context: the only context there is. Resetting it (its last release)
// frees its memory and modules, as CUDA's does.
struct CUctx_st {
  int retains = 0;
  std::map<uintptr_t, Allocation> allocations;  // by base address
  std::set<CUmod_st*> modules;
  std::set<CUfunc_st*> functions;
};

namespace {

std::mutex state_mutex;
// Atomic: need_init reads it without the mutex.
std::atomic<bool> initialized{false};
CUctx_st primary;
thread_local CUctx_st* current_context = nullptr;

unsigned int launch_workers() {
  const char* text = getenv("CONVC_EMULATED_CUDA_THREADS");
  if (text != nullptr && *text != '\0') {
    char* end = nullptr;
    const long n = strtol(text, &end, 10);
    if (*end == '\0' && n > 0 && n <= 1024) return static_cast<unsigned int>(n);
  }
  const unsigned int cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

/** Whether CONVC_EMULATED_CUDA_FAIL names `function`, and with which code. */
bool injected_failure(const char* function, CUresult* code) {
  const char* spec = getenv("CONVC_EMULATED_CUDA_FAIL");
  if (spec == nullptr) return false;
  const size_t length = strlen(function);
  for (const char* entry = spec; *entry != '\0';) {
    const char* end = strchr(entry, ',');
    if (end == nullptr) end = entry + strlen(entry);
    if (static_cast<size_t>(end - entry) >= length && strncmp(entry, function, length) == 0 &&
        (entry + length == end || entry[length] == ':')) {
      *code = CUDA_ERROR_OUT_OF_MEMORY;
      if (entry + length != end) *code = static_cast<CUresult>(strtol(entry + length + 1, nullptr, 10));
      return true;
    }
    entry = *end == ',' ? end + 1 : end;
  }
  return false;
}

#define CONVC_FAIL_POINT()                              \
  do {                                                  \
    CUresult injected_;                                 \
    if (injected_failure(__func__, &injected_)) return injected_; \
  } while (0)

CUresult need_init() { return initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED; }

/** The current context, or why there is none. Call with state_mutex held. */
CUresult need_context(CUctx_st** context) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (current_context == nullptr || current_context->retains == 0) return CUDA_ERROR_INVALID_CONTEXT;
  *context = current_context;
  return CUDA_SUCCESS;
}

/** Whether [address, address + bytes) lies in one allocation (bytes may be 0). */
bool inside_allocation(const CUctx_st& context, uintptr_t address, size_t bytes) {
  auto after = context.allocations.upper_bound(address);
  if (after == context.allocations.begin()) return false;
  const auto& [base, allocation] = *std::prev(after);
  const uintptr_t offset = address - base;
  if (bytes == 0) return offset <= allocation.bytes;
  return offset < allocation.bytes && bytes <= allocation.bytes - offset;
}

void unload(CUctx_st& context, CUmod_st* module) {
  for (auto& [name, function] : module->functions) {
    context.functions.erase(function);
    delete function;
  }
  context.modules.erase(module);
  dlclose(module->library);
  delete module;
}

}  // namespace

// ---- errors: usable before cuInit, and never failed by the knob (a runner needs them to
// describe the failure it was handed).

CONVC_EXPORT CUresult cuGetErrorName(CUresult error, const char** text) {
  if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto* e = convc_emulated_driver::find_error(error);
  *text = e == nullptr ? nullptr : e->name;
  return e == nullptr ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuGetErrorString(CUresult error, const char** text) {
  if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto* e = convc_emulated_driver::find_error(error);
  *text = e == nullptr ? nullptr : e->text;
  return e == nullptr ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

// ---- initialisation and the device

CONVC_EXPORT CUresult cuInit(unsigned int flags) {
  CONVC_FAIL_POINT();
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(state_mutex);
  initialized = true;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDriverGetVersion(int* version) {
  CONVC_FAIL_POINT();
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = driver_version;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDeviceGetCount(int* count) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = 1;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (name == nullptr || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, static_cast<size_t>(length), "%s", device_name);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
      *value = static_cast<int>(max_threads_per_block);
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
      *value = 64;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
      *value = 2147483647;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
      *value = 65535;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
      *value = max_shared_bytes_per_block;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR:
      *value = max_shared_bytes_per_block * 2;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY:
      *value = 64 * 1024;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
      *value = 32;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
      *value = 65536;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
      *value = 1000000;  // kHz; nothing meaningful to report for a CPU
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *value = static_cast<int>(launch_workers());  // one "multiprocessor" per worker thread
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR:
      *value = 2048;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
      *value = 1;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
      *value = 9;  // sm_90, the architecture convc's CUDA target checks first
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
      *value = 0;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CONVC_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice device) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *bytes = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return CUDA_SUCCESS;
}

// ---- the primary context

CONVC_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  if (CUresult r = need_init()) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ++primary.retains;
  *context = &primary;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  if (CUresult r = need_init()) return r;
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (primary.retains == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--primary.retains == 0) {
    while (!primary.modules.empty()) unload(primary, *primary.modules.begin());
    for (auto& [base, allocation] : primary.allocations) free(reinterpret_cast<void*>(base));
    primary.allocations.clear();
  }
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuCtxSetCurrent(CUcontext context) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  if (CUresult r = need_init()) return r;
  if (context != nullptr && (context != &primary || primary.retains == 0)) return CUDA_ERROR_INVALID_CONTEXT;
  current_context = context;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuCtxGetCurrent(CUcontext* context) {
  CONVC_FAIL_POINT();
  if (CUresult r = need_init()) return r;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *context = current_context;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuCtxSynchronize(void) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  return need_context(&context);  // launches finish before cuLaunchKernel returns
}

// ---- memory

CONVC_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (pointer == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  // 256-byte aligned as cuMemAlloc's are; exactly `bytes` long, so ASan sees any overrun.
  void* memory = nullptr;
  if (posix_memalign(&memory, 256, bytes) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(memory, 0xff, bytes);
  context->allocations[reinterpret_cast<uintptr_t>(memory)] = Allocation{bytes};
  *pointer = reinterpret_cast<uintptr_t>(memory);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (pointer == 0) return CUDA_SUCCESS;
  auto found = context->allocations.find(static_cast<uintptr_t>(pointer));
  if (found == context->allocations.end()) return CUDA_ERROR_INVALID_VALUE;  // not the start of an allocation
  free(reinterpret_cast<void*>(found->first));
  context->allocations.erase(found);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (free_bytes == nullptr || total_bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const size_t total = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t used = 0;
  for (const auto& [base, allocation] : context->allocations) used += allocation.bytes;
  *total_bytes = total;
  *free_bytes = used < total ? total - used : 0;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr destination, const void* source, size_t bytes) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if ((source == nullptr && bytes > 0) || !inside_allocation(*context, destination, bytes)) return CUDA_ERROR_INVALID_VALUE;
  if (bytes > 0) memcpy(reinterpret_cast<void*>(destination), source, bytes);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuMemcpyDtoH_v2(void* destination, CUdeviceptr source, size_t bytes) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if ((destination == nullptr && bytes > 0) || !inside_allocation(*context, source, bytes)) return CUDA_ERROR_INVALID_VALUE;
  if (bytes > 0) memcpy(destination, reinterpret_cast<const void*>(source), bytes);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr destination, unsigned char value, size_t count) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (!inside_allocation(*context, destination, count)) return CUDA_ERROR_INVALID_VALUE;
  if (count > 0) memset(reinterpret_cast<void*>(destination), value, count);
  return CUDA_SUCCESS;
}

// ---- modules and functions

CONVC_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // strncmp stops at the first difference, so a foreign image (a cubin, PTX) is not overread.
  const char* text = static_cast<const char*>(image);
  if (strncmp(text, module_magic, sizeof module_magic - 1) != 0) return CUDA_ERROR_INVALID_IMAGE;
  const char* path = text + sizeof module_magic - 1;
  if (path[0] != '/') return CUDA_ERROR_INVALID_IMAGE;
  void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    // The code alone would hide why (a missing file, a sanitizer mismatch); say it once here.
    fprintf(stderr, "convc emulated CUDA: cuModuleLoadData cannot load %s: %s\n", path, dlerror());
    return CUDA_ERROR_INVALID_IMAGE;
  }
  const auto* table = static_cast<const convc_emulated_kernel_table*>(dlsym(library, CONVC_EMULATED_KERNELS_SYMBOL));
  if (table == nullptr || table->abi_version != CONVC_EMULATED_ABI_VERSION) {
    fprintf(stderr, "convc emulated CUDA: cuModuleLoadData: %s is not a kernels object of this driver's version\n", path);
    dlclose(library);
    return CUDA_ERROR_INVALID_IMAGE;
  }
  auto* loaded = new CUmod_st{library, table, {}};
  context->modules.insert(loaded);
  *module = loaded;
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuModuleUnload(CUmodule module) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (context->modules.count(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
  unload(*context, module);
  return CUDA_SUCCESS;
}

CONVC_EXPORT CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
  CONVC_FAIL_POINT();
  std::lock_guard<std::mutex> lock(state_mutex);
  CUctx_st* context;
  if (CUresult r = need_context(&context)) return r;
  if (function == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (context->modules.count(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
  auto known = module->functions.find(name);
  if (known != module->functions.end()) {
    *function = known->second;
    return CUDA_SUCCESS;
  }
  for (unsigned int i = 0; i < module->table->count; ++i) {
    const convc_emulated_kernel& kernel = module->table->kernels[i];
    if (strcmp(kernel.name, name) != 0) continue;
    auto* handle = new CUfunc_st{module, &kernel};
    module->functions.emplace(name, handle);
    context->functions.insert(handle);
    *function = handle;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_FOUND;
}

CONVC_EXPORT CUresult cuLaunchKernel(CUfunction function, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                                     unsigned int block_x, unsigned int block_y, unsigned int block_z, unsigned int shared_bytes,
                                     CUstream stream, void** kernel_params, void** extra) {
  CONVC_FAIL_POINT();
  convc_emulated_launch launch;
  convc_emulated_launcher launcher;
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    CUctx_st* context;
    if (CUresult r = need_context(&context)) return r;
    if (context->functions.count(function) == 0) return CUDA_ERROR_INVALID_HANDLE;
    // The null stream, or CU_STREAM_LEGACY / CU_STREAM_PER_THREAD: this driver has no others.
    const uintptr_t stream_value = reinterpret_cast<uintptr_t>(stream);
    if (stream_value > 2) return CUDA_ERROR_INVALID_HANDLE;
    if (extra != nullptr) return CUDA_ERROR_INVALID_VALUE;  // parameters come in kernel_params only
    if (grid_x == 0 || grid_y == 0 || grid_z == 0 || grid_x > 2147483647u || grid_y > 65535 || grid_z > 65535) return CUDA_ERROR_INVALID_VALUE;
    if (block_x == 0 || block_y == 0 || block_z == 0 || block_x > max_threads_per_block || block_y > max_threads_per_block || block_z > 64) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    const unsigned long long threads = static_cast<unsigned long long>(block_x) * block_y * block_z;
    if (threads > max_threads_per_block) return CUDA_ERROR_INVALID_VALUE;
    if (shared_bytes > static_cast<unsigned int>(max_shared_bytes_per_block)) return CUDA_ERROR_INVALID_VALUE;
    const convc_emulated_kernel& kernel = *function->kernel;
    if (kernel.max_threads_per_block != 0 && threads > kernel.max_threads_per_block) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    if (kernel.param_count > 0 && kernel_params == nullptr) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < kernel.param_count; ++i) {
      if (kernel_params[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
      if (kernel.params[i].is_pointer == 0) continue;
      CUdeviceptr pointer;
      memcpy(&pointer, kernel_params[i], sizeof pointer);
      // A real driver cannot tell; the emulation can, and a stray pointer is always a bug.
      if (pointer == 0 || !inside_allocation(*context, pointer, 1)) return CUDA_ERROR_INVALID_VALUE;
    }
    launch.kernel_name = kernel.name;
    launch.grid[0] = grid_x;
    launch.grid[1] = grid_y;
    launch.grid[2] = grid_z;
    launch.block[0] = block_x;
    launch.block[1] = block_y;
    launch.block[2] = block_z;
    launch.workers = launch_workers();
    launcher = kernel.launch;
  }
  // Unlocked while kernels run: they call nothing here, and a long launch should not block
  // another thread's error-name lookup.
  return launcher(&launch, kernel_params);
}
