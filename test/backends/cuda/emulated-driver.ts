// koffi bindings to the CUDA driver API calls the emulation tests make, with the real
// signatures, so the same code would drive NVIDIA's libcuda.so.1. Functions return the raw
// CUresult (the tests check error codes); `check` turns a non-zero one into an exception.
// Shared by the vitest file and the child processes it starts (run with tsx).
import koffi from 'koffi';

export type Handle = unknown;

export interface CudaDriverApi {
  cuInit(flags: number): number;
  cuDriverGetVersion(version: number[]): number;
  cuDeviceGetCount(count: number[]): number;
  cuDeviceGet(device: number[], ordinal: number): number;
  cuDeviceGetName(name: Buffer, length: number, device: number): number;
  cuDeviceGetAttribute(value: number[], attribute: number, device: number): number;
  cuDevicePrimaryCtxRetain(context: Handle[], device: number): number;
  cuDevicePrimaryCtxRelease_v2(device: number): number;
  cuCtxSetCurrent(context: Handle): number;
  cuCtxSynchronize(): number;
  cuModuleLoadData(module: Handle[], image: Uint8Array): number;
  cuModuleUnload(module: Handle): number;
  cuModuleGetFunction(fn: Handle[], module: Handle, name: string): number;
  cuMemAlloc_v2(pointer: bigint[], bytes: number): number;
  cuMemFree_v2(pointer: bigint): number;
  cuMemcpyHtoD_v2(destination: bigint, source: ArrayBufferView, bytes: number): number;
  cuMemcpyDtoH_v2(destination: ArrayBufferView, source: bigint, bytes: number): number;
  cuMemsetD8_v2(destination: bigint, value: number, count: number): number;
  cuLaunchKernel(
    fn: Handle,
    gridX: number,
    gridY: number,
    gridZ: number,
    blockX: number,
    blockY: number,
    blockZ: number,
    sharedBytes: number,
    stream: Handle | null,
    kernelParams: ArrayBufferView | null,
    extra: ArrayBufferView | null,
  ): number;
  cuGetErrorName(code: number, name: (string | null)[]): number;
}

/** cuda.h's CUdevice_attribute values the tests read. */
export const deviceAttribute = {
  maxThreadsPerBlock: 1,
  maxSharedMemoryPerBlock: 8,
  warpSize: 10,
  multiprocessorCount: 16,
  computeCapabilityMajor: 75,
  computeCapabilityMinor: 76,
} as const;

export function loadCudaDriver(path: string): CudaDriverApi {
  const lib = koffi.load(path);
  const handle = koffi.pointer(koffi.opaque());
  const out = (type: Parameters<typeof koffi.out>[0]) => koffi.out(koffi.pointer(type));
  const u = 'unsigned int';
  return {
    cuInit: lib.func('cuInit', 'int', [u]),
    cuDriverGetVersion: lib.func('cuDriverGetVersion', 'int', [out('int')]),
    cuDeviceGetCount: lib.func('cuDeviceGetCount', 'int', [out('int')]),
    cuDeviceGet: lib.func('cuDeviceGet', 'int', [out('int'), 'int']),
    cuDeviceGetName: lib.func('cuDeviceGetName', 'int', ['char *', 'int', 'int']),
    cuDeviceGetAttribute: lib.func('cuDeviceGetAttribute', 'int', [out('int'), 'int', 'int']),
    cuDevicePrimaryCtxRetain: lib.func('cuDevicePrimaryCtxRetain', 'int', [out(handle), 'int']),
    cuDevicePrimaryCtxRelease_v2: lib.func('cuDevicePrimaryCtxRelease_v2', 'int', ['int']),
    cuCtxSetCurrent: lib.func('cuCtxSetCurrent', 'int', [handle]),
    cuCtxSynchronize: lib.func('cuCtxSynchronize', 'int', []),
    cuModuleLoadData: lib.func('cuModuleLoadData', 'int', [out(handle), 'const void *']),
    cuModuleUnload: lib.func('cuModuleUnload', 'int', [handle]),
    cuModuleGetFunction: lib.func('cuModuleGetFunction', 'int', [out(handle), handle, 'const char *']),
    // CUdeviceptr is unsigned long long: an 8-byte value, not a pointer, in every signature.
    cuMemAlloc_v2: lib.func('cuMemAlloc_v2', 'int', [out('uint64_t'), 'size_t']),
    cuMemFree_v2: lib.func('cuMemFree_v2', 'int', ['uint64_t']),
    cuMemcpyHtoD_v2: lib.func('cuMemcpyHtoD_v2', 'int', ['uint64_t', 'const void *', 'size_t']),
    cuMemcpyDtoH_v2: lib.func('cuMemcpyDtoH_v2', 'int', ['void *', 'uint64_t', 'size_t']),
    cuMemsetD8_v2: lib.func('cuMemsetD8_v2', 'int', ['uint64_t', 'unsigned char', 'size_t']),
    // kernelParams is void**; it is passed as the address of a table this side builds (kernelParams).
    cuLaunchKernel: lib.func('cuLaunchKernel', 'int', [handle, u, u, u, u, u, u, u, 'void *', 'void *', 'void *']),
    cuGetErrorName: lib.func('cuGetErrorName', 'int', ['int', out('const char *')]),
  } as CudaDriverApi;
}

/**
 * cuLaunchKernel's `void** kernelParams` for device-pointer parameters: slot i of the table
 * points at an 8-byte CUdeviceptr stored after the table. The memory is an ArrayBuffer's, which
 * V8 keeps outside its moving heap, so the addresses stay valid for the call.
 */
export function kernelParams(pointers: readonly bigint[]): BigUint64Array {
  const n = pointers.length;
  const table = new BigUint64Array(new ArrayBuffer(Math.max(1, 2 * n) * 8));
  const base = koffi.address(table);
  pointers.forEach((pointer, i) => {
    table[n + i] = pointer;
    table[i] = base + BigInt((n + i) * 8);
  });
  return table;
}

/** Throws, naming the call and the CUresult, unless `code` is CUDA_SUCCESS. */
export function check(cuda: CudaDriverApi, call: string, code: number): void {
  if (code === 0) return;
  const name: (string | null)[] = [null];
  cuda.cuGetErrorName(code, name);
  throw new Error(`${call} failed: ${name[0] ?? 'unknown CUresult'} (${code})`);
}

/** A driver initialised with the primary context current: the usual start of a runner. */
export function openContext(cuda: CudaDriverApi): Handle {
  check(cuda, 'cuInit', cuda.cuInit(0));
  const context: Handle[] = [null];
  check(cuda, 'cuDevicePrimaryCtxRetain', cuda.cuDevicePrimaryCtxRetain(context, 0));
  check(cuda, 'cuCtxSetCurrent', cuda.cuCtxSetCurrent(context[0]));
  return context[0];
}

export function loadFunction(cuda: CudaDriverApi, image: Uint8Array, names: readonly string[]): { module: Handle; functions: Map<string, Handle> } {
  const module: Handle[] = [null];
  check(cuda, 'cuModuleLoadData', cuda.cuModuleLoadData(module, image));
  const functions = new Map<string, Handle>();
  for (const name of names) {
    const fn: Handle[] = [null];
    check(cuda, `cuModuleGetFunction(${name})`, cuda.cuModuleGetFunction(fn, module[0], name));
    functions.set(name, fn[0]);
  }
  return { module: module[0], functions };
}

/** Allocates device memory holding `values` (or `bytes` uninitialised bytes). */
export function deviceBuffer(cuda: CudaDriverApi, values: ArrayBufferView | number): bigint {
  const bytes = typeof values === 'number' ? values : values.byteLength;
  const pointer: bigint[] = [0n];
  check(cuda, 'cuMemAlloc_v2', cuda.cuMemAlloc_v2(pointer, bytes));
  if (typeof values !== 'number') check(cuda, 'cuMemcpyHtoD_v2', cuda.cuMemcpyHtoD_v2(BigInt(pointer[0]), values, bytes));
  return BigInt(pointer[0]);
}

export function readFloats(cuda: CudaDriverApi, pointer: bigint, count: number): Float32Array {
  const values = new Float32Array(count);
  check(cuda, 'cuMemcpyDtoH_v2', cuda.cuMemcpyDtoH_v2(values, pointer, values.byteLength));
  return values;
}

export function launch(cuda: CudaDriverApi, fn: Handle, grid: readonly [number, number], block: number, pointers: readonly bigint[]): number {
  return cuda.cuLaunchKernel(fn, grid[0], grid[1], 1, block, 1, 1, 0, null, kernelParams(pointers), null);
}
