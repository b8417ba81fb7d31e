// Turns a kernel function into a registry entry the driver can launch: its parameter list is
// deduced from the function pointer, so the generated registry names each kernel once and
// nothing per kernel is written by hand. cuLaunchKernel's kernelParams[i] points at parameter
// i's value (an 8-byte CUdeviceptr for a pointer), which is copied out once per launch.
#pragma once

#include <array>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "emulated-abi.h"
#include "worker-pool.h"

namespace convc_emu {

template <typename T>
T read_parameter(const void* value) {
  static_assert(std::is_trivially_copyable_v<T>, "kernel parameters are passed by copying their bytes");
  T parameter;
  std::memcpy(&parameter, value, sizeof(T));
  return parameter;
}

template <auto Kernel>
struct KernelLauncher;

template <typename... Args, void (*Kernel)(Args...)>
struct KernelLauncher<Kernel> {
  using Arguments = std::tuple<Args...>;

  static constexpr std::array<convc_emulated_param, sizeof...(Args)> params{
      {{static_cast<unsigned int>(sizeof(Args)), std::is_pointer_v<Args> ? 1u : 0u}...}};

  static void run_thread(const void* arguments) { std::apply(Kernel, *static_cast<const Arguments*>(arguments)); }

  template <size_t... I>
  static Arguments unpack(void** values, std::index_sequence<I...>) {
    return Arguments{read_parameter<Args>(values[I])...};
  }

  static int launch(const convc_emulated_launch* launch, void** values) {
    const Arguments arguments = unpack(values, std::index_sequence_for<Args...>{});
    return run_grid(*launch, &run_thread, &arguments);
  }
};

/** The registry entry of one kernel; `max_threads` is its __launch_bounds__ (0: none). */
template <auto Kernel>
constexpr convc_emulated_kernel describe_kernel(const char* name, unsigned int max_threads) {
  using Launcher = KernelLauncher<Kernel>;
  return convc_emulated_kernel{name, max_threads, static_cast<unsigned int>(Launcher::params.size()),
                               Launcher::params.empty() ? nullptr : Launcher::params.data(), &Launcher::launch};
}

}  // namespace convc_emu
