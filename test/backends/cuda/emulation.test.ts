// The CPU emulation of the CUDA backend (src/backends/cuda/emulation): small hand-written kernels
// in the renderer's dialect, compiled by g++ with the emulation header and driven through the
// emulated libcuda.so.1 by koffi, as a runner drives NVIDIA's. Barriers, shuffles, f16 and
// float4 must compute exactly what a GPU computes; broken kernels (divergent barriers, threads
// returning early, out-of-bounds writes) must stop the process with a report, which is why
// those run in child processes; the driver must return CUDA's own error codes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildEmulatedKernels, emulatedDriverPath, emulatedModuleMagic, launchBounds } from '../../../src/backends/cuda/emulation/build.js';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { findNvcc } from '../../../src/backends/cuda/nvcc.js';
import { cudaTarget } from '../../../src/backends/cuda/target.js';
import { bufferBytes, packWeights } from '../../../src/kernel/model-program.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { pipelines } from '../../../src/passes/manager.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { repoPath, scaledDifference, zooGraph } from '../../helpers.js';
import {
  check,
  deviceAttribute,
  deviceBuffer,
  kernelParams,
  launch,
  loadCudaDriver,
  loadFunction,
  openContext,
  readFloats,
  type CudaDriverApi,
  type Handle,
} from './emulated-driver.js';

const kernelsCu = `// Kernels of the emulation tests, in the dialect convc's CUDA renderer emits.
#include <cuda_fp16.h>

// Sums 256 values a block with a shared-memory tree: barriers inside a loop. The grid is 2-D and
// rounded up, as convc's host rounds it, so blocks from the 13th on do nothing.
extern "C" __global__ void __launch_bounds__(128) block_sums(float* __restrict__ out, const float* __restrict__ x) {
  constexpr unsigned int WORKGROUPS = 13u;
  __shared__ __align__(16) float partial[128];
  const unsigned int local = threadIdx.x;
  const unsigned int group = blockIdx.y * gridDim.x + blockIdx.x;
  if (group < WORKGROUPS) {
    partial[local] = x[group * 256u + local] + x[group * 256u + local + 128u];
    __syncthreads();
    for (unsigned int stride = 64u; stride > 0u; stride >>= 1u) {
      if (local < stride) partial[local] = partial[local] + partial[local + stride];
      __syncthreads();
    }
    if (local == 0u) out[group] = partial[0];
  }
}

// Butterfly sums: every lane ends with its warp's sum.
extern "C" __global__ void warp_sums(float* __restrict__ out, const float* __restrict__ x) {
  const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
  #pragma unroll
  for (unsigned int m = 16u; m > 0u; m >>= 1u) v = v + __shfl_xor_sync(0xffffffffu, v, m);
  out[i] = v;
}

// The same in blocks of 8 threads, whose one warp has 8 lanes.
extern "C" __global__ void small_block_sums(float* __restrict__ out, const float* __restrict__ x) {
  const unsigned int i = blockIdx.x * 8u + threadIdx.x;
  float v = x[i];
  for (unsigned int m = 4u; m > 0u; m >>= 1u) v = v + __shfl_xor_sync(0xffu, v, m);
  out[i] = v;
}

// Width 8: sums of 8 consecutive lanes; and a partner past the caller's segment (lane ^ 8 for
// lanes 0-7 of every 16), which gives the caller its own value.
extern "C" __global__ void segment_sums(float* __restrict__ out, float* __restrict__ crossed, const float* __restrict__ x) {
  const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
  for (unsigned int m = 4u; m > 0u; m >>= 1u) v = v + __shfl_xor_sync(0xffffffffu, v, m, 8);
  out[i] = v;
  crossed[i] = __shfl_xor_sync(0xffffffffu, x[i], 8u, 8);
}

// f16: the bits __float2half_rn gives, and the float they stand for.
extern "C" __global__ void to_half(__half* __restrict__ h, float* __restrict__ back, const float* __restrict__ x) {
  const unsigned int i = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
  h[i] = __float2half_rn(x[i]);
  back[i] = __half2float(h[i]);
}

extern "C" __global__ void from_half(float* __restrict__ out, const __half* __restrict__ h) {
  const unsigned int i = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
  out[i] = __half2float(h[i]);
}

// float4: 16-byte loads and stores through a shared tile, reversed within each block of 64.
extern "C" __global__ void reverse4(float* __restrict__ out, const float* __restrict__ x) {
  __shared__ __align__(16) float tile[256];
  const unsigned int local = threadIdx.x;
  const float4 v = *reinterpret_cast<const float4*>(&x[(blockIdx.x * 64u + local) * 4u]);
  *reinterpret_cast<float4*>(&tile[local * 4u]) = make_float4(v.x * 2.0f, v.y + 1.0f, -v.z, rsqrtf(fmaxf(v.w, 1e-6f)));
  __syncthreads();
  const float4 r = *reinterpret_cast<const float4*>(&tile[(63u - local) * 4u]);
  *reinterpret_cast<float4*>(&out[(blockIdx.x * 64u + local) * 4u]) = r;
}

// Wrong on purpose: half the block waits at one barrier, half at another.
extern "C" __global__ void divergent_barrier(float* __restrict__ out) {
  if (threadIdx.x < 32u) {
    out[threadIdx.x] = 1.0f;
    __syncthreads();
  } else {
    __syncthreads();
    out[threadIdx.x] = 2.0f;
  }
}

// Wrong on purpose: threads 16 and up return while the others wait.
extern "C" __global__ void early_return(float* __restrict__ out) {
  if (threadIdx.x >= 16u) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Wrong on purpose: the last thread writes one float past the end.
extern "C" __global__ void write_past_end(float* __restrict__ out) {
  out[threadIdx.x + 1u] = 1.0f;
}
`;

const kernelNames = [...kernelsCu.matchAll(/^extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(/gm)].map((m) => m[1]);

/** The 1-based line of kernels.cu holding `text` after `after` (for expected reports). */
function lineOf(text: string, after = ''): number {
  const start = kernelsCu.indexOf(after);
  return kernelsCu.slice(0, kernelsCu.indexOf(text, start)).split('\n').length;
}

/** An independent f16 reference: scale to the binade's units, round half to even, encode. */
function referenceHalfBits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7fff;
  if (a >= 65520) return sign | 0x7c00;
  let exponent = a === 0 ? -14 : Math.floor(Math.log2(a));
  // log2 may round across a power of two; settle the binade exactly.
  while (a !== 0 && 2 ** exponent > a) exponent -= 1;
  while (a !== 0 && 2 ** (exponent + 1) <= a) exponent += 1;
  exponent = Math.max(-14, exponent);
  const ulp = 2 ** (exponent - 10);
  const q = a / ulp; // exact: a is a float32, ulp a power of two
  let units = Math.floor(q);
  const rest = q - units;
  if (rest > 0.5 || (rest === 0.5 && units % 2 === 1)) units += 1;
  // units × 2^(exponent-10): subnormal when exponent is -14 and units < 1024.
  if (exponent === -14 && units < 1024) return sign | units;
  const e = units === 2048 ? exponent + 1 : exponent;
  const mantissa = units === 2048 ? 0 : units - 1024;
  return e > 15 ? sign | 0x7c00 : sign | ((e + 15) << 10) | mantissa;
}

function childRun(spec: object, env: Record<string, string> = {}): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', repoPath('test/backends/cuda/emulation-child.ts'), JSON.stringify(spec)], {
    cwd: repoPath('.'),
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  }) as ReturnType<typeof spawnSync> & { stdout: string; stderr: string };
}

/** The kernels object's path, from its module image. */
function objectPath(image: Uint8Array): string {
  return new TextDecoder().decode(image).slice(emulatedModuleMagic.length, -1);
}

describe('emulated CUDA', () => {
  let driverPath: string;
  let image: Uint8Array;
  let cuda: CudaDriverApi;
  let functions: Map<string, Handle> | undefined;

  /** The context current and the test kernels loaded (the first test does it the long way). */
  const ready = (): void => {
    if (functions !== undefined) return;
    openContext(cuda);
    functions = loadFunction(cuda, image, kernelNames).functions;
  };

  beforeAll(() => {
    driverPath = emulatedDriverPath();
    image = buildEmulatedKernels(kernelsCu, kernelNames);
    cuda = loadCudaDriver(driverPath);
  });

  // Every test but the first (which checks what happens before cuInit) starts with the context
  // current and the kernels loaded, so any one of them can run alone (vitest -t).
  const beforeInit = 'refuses calls before cuInit and without a current context, as CUDA does';
  beforeEach(({ task }) => {
    if (task.name !== beforeInit) ready();
  });

  afterEach(() => {
    delete process.env.CONVC_EMULATED_CUDA_FAIL;
  });

  it(beforeInit, () => {
    const version = [0];
    expect(cuda.cuDriverGetVersion(version)).toBe(0);
    expect(version[0]).toBeGreaterThanOrEqual(12000);
    expect(cuda.cuDeviceGetCount([0])).toBe(3); // CUDA_ERROR_NOT_INITIALIZED
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(3);
    expect(cuda.cuInit(0)).toBe(0);
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(201); // CUDA_ERROR_INVALID_CONTEXT
    expect(cuda.cuCtxSynchronize()).toBe(201);
    openContext(cuda);
    functions = loadFunction(cuda, image, kernelNames).functions;
    expect(cuda.cuCtxSynchronize()).toBe(0);
  });

  it('describes one device with CUDA limits', () => {
    const count = [0];
    check(cuda, 'cuDeviceGetCount', cuda.cuDeviceGetCount(count));
    expect(count[0]).toBe(1);
    expect(cuda.cuDeviceGet([0], 1)).toBe(101); // CUDA_ERROR_INVALID_DEVICE
    const name = Buffer.alloc(64);
    check(cuda, 'cuDeviceGetName', cuda.cuDeviceGetName(name, name.length, 0));
    expect(name.toString('utf8').replace(/\0.*$/s, '')).toBe('convc emulated CUDA device (CPU)');
    const attribute = (which: number): number => {
      const value = [0];
      check(cuda, 'cuDeviceGetAttribute', cuda.cuDeviceGetAttribute(value, which, 0));
      return value[0];
    };
    expect(attribute(deviceAttribute.maxThreadsPerBlock)).toBe(1024);
    expect(attribute(deviceAttribute.maxSharedMemoryPerBlock)).toBe(48 * 1024);
    expect(attribute(deviceAttribute.warpSize)).toBe(32);
    expect([attribute(deviceAttribute.computeCapabilityMajor), attribute(deviceAttribute.computeCapabilityMinor)]).toEqual([9, 0]);
    expect(attribute(deviceAttribute.multiprocessorCount)).toBeGreaterThanOrEqual(1);
    expect(cuda.cuDeviceGetAttribute([0], 100_000, 0)).toBe(1);
  });

  it('sums with a shared-memory tree across barriers in a loop, over a rounded-up 2-D grid', () => {
    const x = Float32Array.from({ length: 13 * 256 }, (_, i) => ((i * 7919) % 97) - 48);
    const out = deviceBuffer(cuda, Float32Array.from({ length: 16 }, () => -1));
    check(cuda, 'block_sums', launch(cuda, functions!.get('block_sums'), [5, 3], 128, [out, deviceBuffer(cuda, x)]));
    const expected = Array.from({ length: 13 }, (_, b) => x.subarray(b * 256, (b + 1) * 256).reduce((s, v) => s + v, 0));
    // Integers: every order of summation gives them exactly. Blocks 13-14 leave theirs alone.
    expect(Array.from(readFloats(cuda, out, 16))).toEqual([...expected, -1, -1, -1]);
  });

  it('exchanges values through __shfl_xor_sync: butterflies over warps, small blocks and segments', () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => (i * 37) % 101);
    const sumOf = (from: number, count: number): number => x.subarray(from, from + count).reduce((s, v) => s + v, 0);
    const input = deviceBuffer(cuda, x);
    const out = deviceBuffer(cuda, x.byteLength);
    check(cuda, 'warp_sums', launch(cuda, functions!.get('warp_sums'), [2, 1], 128, [out, input]));
    expect(Array.from(readFloats(cuda, out, 256))).toEqual(Array.from(x, (_, i) => sumOf(i - (i % 32), 32)));
    check(cuda, 'small_block_sums', launch(cuda, functions!.get('small_block_sums'), [32, 1], 8, [out, input]));
    expect(Array.from(readFloats(cuda, out, 256))).toEqual(Array.from(x, (_, i) => sumOf(i - (i % 8), 8)));
    const crossed = deviceBuffer(cuda, x.byteLength);
    check(cuda, 'segment_sums', launch(cuda, functions!.get('segment_sums'), [4, 1], 64, [out, crossed, input]));
    expect(Array.from(readFloats(cuda, out, 256))).toEqual(Array.from(x, (_, i) => sumOf(i - (i % 8), 8)));
    expect(Array.from(readFloats(cuda, crossed, 256))).toEqual(Array.from(x, (v, i) => (i % 16 < 8 ? v : x[i - 8])));
  });

  it('rounds f32 to f16 to nearest even, subnormals, overflow and NaN included, and widens every f16 exactly', () => {
    const specials = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 1e-8, -5.96e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051];
    // Random bit patterns (all exponents), and every f16 midpoint with its neighbours.
    let seed = 12345;
    const random = Array.from({ length: 8192 }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return new Float32Array(new Uint32Array([seed]).buffer)[0];
    });
    const midpoints: number[] = [];
    for (let bits = 0; bits < 0x7bff; bits += 37) {
      // Exact in f32: adjacent halves differ in their 11th significant bit.
      const middle = (halfValue(bits) + halfValue(bits + 1)) / 2;
      midpoints.push(middle, -middle, Math.fround(middle * (1 + 2 ** -23)), Math.fround(middle * (1 - 2 ** -23)));
    }
    const values = Float32Array.from([...specials, ...random, ...midpoints].slice(0, 16384));
    const padded = new Float32Array(16384);
    padded.set(values);
    const h = deviceBuffer(cuda, padded.length * 2);
    const back = deviceBuffer(cuda, padded.byteLength);
    check(cuda, 'to_half', launch(cuda, functions!.get('to_half'), [64, 2], 128, [h, back, deviceBuffer(cuda, padded)]));
    const bits = new Uint16Array(padded.length);
    check(cuda, 'cuMemcpyDtoH_v2', cuda.cuMemcpyDtoH_v2(bits, h, bits.byteLength));
    const widened = readFloats(cuda, back, padded.length);
    const mismatches = Array.from(padded).flatMap((v, i) => (bits[i] === referenceHalfBits(v) ? [] : [`${v}: 0x${bits[i].toString(16)} want 0x${referenceHalfBits(v).toString(16)}`]));
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(Array.from(widened, (w, i) => Object.is(w, halfValue(bits[i])) || (Number.isNaN(w) && Number.isNaN(halfValue(bits[i]))))).not.toContain(false);

    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = deviceBuffer(cuda, 65536 * 4);
    check(cuda, 'from_half', launch(cuda, functions!.get('from_half'), [256, 2], 128, [out, deviceBuffer(cuda, all)]));
    const got = readFloats(cuda, out, 65536);
    expect(Array.from(all).filter((b) => !Object.is(got[b], halfValue(b)) && !(Number.isNaN(got[b]) && Number.isNaN(halfValue(b))))).toEqual([]);
  });

  it('loads and stores float4 through global and shared memory', () => {
    const x = Float32Array.from({ length: 2 * 256 }, (_, i) => (i % 4 === 3 ? ((i >> 2) % 5) + 1 : i * 0.5 - 17));
    const out = deviceBuffer(cuda, x.byteLength);
    check(cuda, 'reverse4', launch(cuda, functions!.get('reverse4'), [2, 1], 64, [out, deviceBuffer(cuda, x)]));
    const expected = new Float32Array(x.length);
    for (let block = 0; block < 2; block++) {
      for (let local = 0; local < 64; local++) {
        const v = x.subarray((block * 64 + 63 - local) * 4, (block * 64 + 64 - local) * 4);
        expected.set([v[0] * 2, v[1] + 1, -v[2], Math.fround(1 / Math.fround(Math.sqrt(v[3])))], (block * 64 + local) * 4);
      }
    }
    expect(Array.from(readFloats(cuda, out, x.length))).toEqual(Array.from(expected));
  });

  it('returns CUDA error codes for bad copies, images, names, launches and parameters', () => {
    const buffer = deviceBuffer(cuda, 64);
    const host = new Float32Array(32);
    expect(cuda.cuMemcpyHtoD_v2(buffer, host, 128)).toBe(1); // CUDA_ERROR_INVALID_VALUE: past the end
    expect(cuda.cuMemcpyHtoD_v2(buffer + 32n, host, 64)).toBe(1);
    expect(cuda.cuMemcpyDtoH_v2(host, buffer + 60n, 8)).toBe(1);
    expect(cuda.cuMemcpyDtoH_v2(host, buffer + 48n, 16)).toBe(0);
    expect(cuda.cuMemcpyDtoH_v2(host, 0x1000n, 4)).toBe(1);
    expect(cuda.cuMemsetD8_v2(buffer, 0, 65)).toBe(1);
    expect(cuda.cuMemAlloc_v2([0n], 0)).toBe(1);
    expect(cuda.cuMemFree_v2(buffer + 4n)).toBe(1);

    const module: Handle[] = [null];
    expect(cuda.cuModuleLoadData(module, new TextEncoder().encode('\x7fELF not a module\0'))).toBe(200); // CUDA_ERROR_INVALID_IMAGE
    expect(cuda.cuModuleLoadData(module, new TextEncoder().encode(`${emulatedModuleMagic}relative/kernels.so\0`))).toBe(200);
    const fn: Handle[] = [null];
    const loaded = loadFunction(cuda, image, []).module;
    expect(cuda.cuModuleGetFunction(fn, loaded, 'no_such_kernel')).toBe(500); // CUDA_ERROR_NOT_FOUND
    check(cuda, 'cuModuleUnload', cuda.cuModuleUnload(loaded));
    expect(cuda.cuModuleGetFunction(fn, loaded, 'block_sums')).toBe(400); // CUDA_ERROR_INVALID_HANDLE

    const sums = functions!.get('block_sums');
    const x = deviceBuffer(cuda, 13 * 256 * 4);
    const params = kernelParams([buffer, x]);
    const launchWith = (grid: number, block: number, p: BigUint64Array | null = params, extra: BigUint64Array | null = null): number =>
      cuda.cuLaunchKernel(sums, grid, 1, 1, block, 1, 1, 0, null, p, extra);
    expect(launchWith(1, 2048)).toBe(1); // more threads than a block has
    expect(launchWith(0, 128)).toBe(1);
    expect(launchWith(1, 256)).toBe(701); // CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: above __launch_bounds__(128)
    expect(launchWith(1, 128, params, new BigUint64Array(new ArrayBuffer(8)))).toBe(1); // `extra` is not supported
    expect(launchWith(1, 128, null)).toBe(1);
    expect(launchWith(1, 128, kernelParams([buffer, 0x1000n]))).toBe(1); // a pointer outside every allocation
    expect(launchWith(1, 128)).toBe(0);

    const name: (string | null)[] = [null];
    expect(cuda.cuGetErrorName(701, name)).toBe(0);
    expect(name[0]).toBe('CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES');
    expect(cuda.cuGetErrorName(123456, name)).toBe(1);
    expect(launchBounds(kernelsCu, 'block_sums')).toBe(128);
    expect(launchBounds(kernelsCu, 'warp_sums')).toBeUndefined();
  });

  it('fails the driver calls CONVC_EMULATED_CUDA_FAIL names, with the code it gives', () => {
    process.env.CONVC_EMULATED_CUDA_FAIL = 'cuMemAlloc_v2';
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(2); // CUDA_ERROR_OUT_OF_MEMORY by default
    process.env.CONVC_EMULATED_CUDA_FAIL = 'cuLaunchKernel:719,cuModuleLoadData:218';
    const buffer = deviceBuffer(cuda, 16 * 4);
    expect(launch(cuda, functions!.get('block_sums'), [1, 1], 128, [buffer, buffer])).toBe(719);
    expect(cuda.cuModuleLoadData([null], image)).toBe(218);
    expect(cuda.cuMemcpyDtoH_v2(new Float32Array(1), buffer, 4)).toBe(0);
    delete process.env.CONVC_EMULATED_CUDA_FAIL;
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(0);
  });

  it('resets the primary context at its last release, freeing memory and modules', () => {
    const context: Handle[] = [null];
    check(cuda, 'cuDevicePrimaryCtxRetain', cuda.cuDevicePrimaryCtxRetain(context, 0));
    check(cuda, 'cuDevicePrimaryCtxRelease_v2', cuda.cuDevicePrimaryCtxRelease_v2(0));
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(0);
    check(cuda, 'cuDevicePrimaryCtxRelease_v2', cuda.cuDevicePrimaryCtxRelease_v2(0));
    expect(cuda.cuMemAlloc_v2([0n], 16)).toBe(201);
    expect(cuda.cuDevicePrimaryCtxRelease_v2(0)).toBe(201);
    openContext(cuda);
    functions = loadFunction(cuda, image, kernelNames).functions;
  });

  it('aborts, naming the kernel, block and lines, when threads of a block wait at different barriers', () => {
    const run = childRun({ driver: driverPath, kernels: objectPath(image), launches: [{ kernel: 'divergent_barrier', grid: [1, 1], block: 64, buffers: [64] }] });
    expect(run.signal).toBe('SIGABRT');
    const file = `${objectPath(image).replace(/kernels\.so$/, 'kernels.cu')}`;
    expect(run.stderr).toContain("kernel 'divergent_barrier', block (0, 0, 0) of 64 threads: threads of one block wait at different barriers");
    expect(run.stderr).toContain(`threads 0-31 wait at __syncthreads() at ${file}:${lineOf('__syncthreads()', 'divergent_barrier')}`);
    expect(run.stderr).toContain(`threads 32-63 wait at __syncthreads() at ${file}:${lineOf('__syncthreads()', '} else {')}`);
    expect(run.stdout).not.toContain('launch divergent_barrier');
  });

  it('aborts when threads return while others wait at a barrier', () => {
    const run = childRun({ driver: driverPath, kernels: objectPath(image), launches: [{ kernel: 'early_return', grid: [2, 1], block: 64, buffers: [64] }] });
    expect(run.signal).toBe('SIGABRT');
    expect(run.stderr).toContain("kernel 'early_return'");
    expect(run.stderr).toContain('some threads returned while others wait at a barrier');
    expect(run.stderr).toMatch(new RegExp(`threads 0-15 wait at __syncthreads\\(\\) at \\S+kernels\\.cu:${lineOf('__syncthreads()', 'early_return')}\\n`));
    expect(run.stderr).toContain('threads 16-63 returned from the kernel');
  });

  it('lets AddressSanitizer report an out-of-bounds write in a kernel, and nothing in correct ones', () => {
    const asanRuntime = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
    const sanitized = buildEmulatedKernels(kernelsCu, kernelNames, { sanitize: 'address' });
    const run = childRun(
      {
        driver: emulatedDriverPath({ sanitize: 'address' }),
        kernels: objectPath(sanitized),
        launches: [
          { kernel: 'block_sums', grid: [5, 3], block: 128, buffers: [16, 13 * 256], read: 13 },
          { kernel: 'warp_sums', grid: [1, 1], block: 64, buffers: [64, 64], read: 2 },
          { kernel: 'write_past_end', grid: [1, 1], block: 64, buffers: [64] },
        ],
      },
      { LD_PRELOAD: asanRuntime, ASAN_OPTIONS: 'detect_leaks=0' },
    );
    // Buffer 1 holds (i + 1) % 7: a block's 256 of them sum to 765, 768, 771, ... by block.
    const sums = Array.from({ length: 13 }, (_, b) => Array.from({ length: 256 }, (_, i) => (b * 256 + i + 1) % 7).reduce((s, v) => s + v, 0));
    expect(run.stdout).toContain(`launch block_sums 0\nvalues ${JSON.stringify(sums)}`);
    const warp = Array.from({ length: 32 }, (_, i) => (i + 1) % 7).reduce((s, v) => s + v, 0);
    expect(run.stdout).toContain(`launch warp_sums 0\nvalues ${JSON.stringify([warp, warp])}`);
    expect(run.stdout).not.toContain('launch write_past_end');
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('ERROR: AddressSanitizer: heap-buffer-overflow');
    expect(run.stderr).toMatch(/WRITE of size 4/);
    expect(run.stderr).toMatch(new RegExp(`write_past_end\\b.*kernels\\.cu:${lineOf('out[threadIdx.x + 1u]')}`));
  });

  it("runs the CUDA renderer's own kernels.cu (V2-atto, f16 storage) as the reference executor computes", () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 }, pipelines.fused);
    const program = lowerToCuda(graph, { target: cudaTarget(), precision: 'f16' });
    const model = loadFunction(cuda, buildEmulatedKernels(program.module, program.shaders.map((s) => s.name)), program.shaders.map((s) => s.name));
    const weights = randomWeights(graph, 3);
    const packed = packWeights(graph, program, weights);
    const input = randomInput(program.inputShape, 5);
    const pointers = program.buffers.map((b) => deviceBuffer(cuda, Math.max(4, bufferBytes(b))));
    for (const w of program.weights) {
      const part = packed.subarray(w.offset, w.offset + w.floats);
      check(cuda, `weight ${w.key}`, cuda.cuMemcpyHtoD_v2(pointers[program.buffers.findIndex((b) => b.weight === w.key)], part, part.byteLength));
    }
    check(cuda, 'input', cuda.cuMemcpyHtoD_v2(pointers[program.inputBuffer], input.data, input.data.byteLength));
    program.dispatches.forEach((d, i) => {
      const name = program.shaders[d.shader].name;
      const [x, y, z] = d.workgroups;
      const code = cuda.cuLaunchKernel(model.functions.get(name), x, y, z, program.programs[i].workgroupSize, 1, 1, 0, null, kernelParams(d.buffers.map((b) => pointers[b])), null);
      check(cuda, name, code);
    });
    const output = readFloats(cuda, pointers[program.outputBuffer], program.outputShape.reduce((a, b) => a * b, 1));
    expect(scaledDifference(output, executeReference(graph, weights, input).data)).toBeLessThan(1e-2);
    check(cuda, 'cuModuleUnload', cuda.cuModuleUnload(model.module));
  });

  const nvcc = findNvcc();
  it.skipIf(nvcc === undefined)('is CUDA that nvcc compiles too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-emulation-nvcc-'));
    writeFileSync(join(dir, 'kernels.cu'), kernelsCu);
    const result = spawnSync(nvcc!, ['-cubin', '-arch=sm_90', '-o', join(dir, 'kernels.cubin'), join(dir, 'kernels.cu')], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

/** The value of a binary16 bit pattern, decoded independently of the C++ stub. */
function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
