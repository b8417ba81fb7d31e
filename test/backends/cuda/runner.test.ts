// The generated CUDA runner, run against convc's emulated driver: small hand-written programs
// (CUDA C kernels with barriers, f16 storage, a 2-D grid) whose results are computed here in
// JavaScript, and the runner's refusals and driver failures, each named for what went wrong.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEmulatedKernels, emulatedDriverPath } from '../../../src/backends/cuda/emulation/build.js';
import { convcKoffi, importCudaRunner, loadCudaRunner, type CudaRunnerModule } from '../../../src/backends/cuda/load-runner.js';
import { generateCudaRunnerFiles } from '../../../src/backends/cuda/runner.js';
import { f16Bits, roundF16 } from '../../../src/kernel/f16.js';
import type { Dispatch, ModelProgram, ProgramBuffer, ProgramTensor } from '../../../src/kernel/model-program.js';

/** Values of a 64-element row: a block of 64 threads owns one. */
const row = 64;

// y = x + bias[i % 8]: one thread an element.
const biasAdd = `extern "C" __global__ void bias_add(const float* __restrict__ x, const float* __restrict__ bias, float* __restrict__ y) {
  const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < 128u) y[i] = x[i] + bias[i % 8u];
}`;

// out[r] = scale[r] * sum of row r, by a tree in shared memory; rows are numbered across a 2-D
// grid as convc's kernels number their workgroups (y * gridDim.x + x).
const blockSum = `extern "C" __global__ void block_sum(const float* __restrict__ y, const float* __restrict__ scale, float* __restrict__ out) {
  __shared__ float partial[64];
  const unsigned int r = blockIdx.y * gridDim.x + blockIdx.x;
  const unsigned int t = threadIdx.x;
  partial[t] = y[r * 64u + t];
  __syncthreads();
  for (unsigned int stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0u) out[r] = partial[0] * scale[r];
}`;

// loss = sum of pred[i] * mask[i / 32], in one block of 128 threads.
const maskedSum = `extern "C" __global__ void masked_sum(const float* __restrict__ pred, const float* __restrict__ mask, float* __restrict__ loss) {
  __shared__ float partial[128];
  const unsigned int t = threadIdx.x;
  partial[t] = pred[t] * mask[t / 32u];
  __syncthreads();
  for (unsigned int stride = 64u; stride > 0u; stride >>= 1u) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0u) loss[0] = partial[0];
}`;

// The same two steps with the activation and the bias stored as __half, arithmetic in f32.
const halfKernels = `#include <cuda_fp16.h>
extern "C" __global__ void half_bias_add(const float* __restrict__ x, const __half* __restrict__ bias, __half* __restrict__ y) {
  const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < 128u) y[i] = __float2half(x[i] + __half2float(bias[i % 8u]));
}
extern "C" __global__ void half_block_sum(const __half* __restrict__ y, const __half* __restrict__ scale, float* __restrict__ out) {
  __shared__ float partial[64];
  const unsigned int r = blockIdx.x;
  const unsigned int t = threadIdx.x;
  partial[t] = __half2float(y[r * 64u + t]);
  __syncthreads();
  for (unsigned int stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0u) out[r] = partial[0] * __half2float(scale[r]);
}`;

interface HandKernel {
  readonly name: string;
  readonly block: number;
  readonly sharedBytes: number;
}

const launch = (shader: number, workgroups: [number, number, number], buffers: number[], program: { buffers: readonly ProgramBuffer[] }): Dispatch => ({
  shader,
  workgroups,
  buffers,
  covers: `hand-written launch of kernel ${shader}`,
  bytes: 0,
  writes: [buffers[buffers.length - 1], program.buffers[buffers[buffers.length - 1]].floats],
});

/** A ModelProgram as lowerToCuda makes one: kernels by extern "C" name, 1-D blocks, grids. */
function handProgram(parts: {
  readonly model: string;
  readonly precision: 'f32' | 'f16';
  readonly kernels: readonly HandKernel[];
  readonly buffers: readonly ProgramBuffer[];
  readonly inputs: readonly ProgramTensor[];
  readonly outputs: readonly ProgramTensor[];
  readonly launches: readonly (readonly [shader: number, grid: [number, number, number], buffers: number[]])[];
  readonly weights: readonly { readonly key: string; readonly floats: number }[];
}): ModelProgram {
  let offset = 0;
  const weights = parts.weights.map(({ key, floats }) => {
    const packed = { key, floats, offset, layout: 'as given' };
    offset += floats;
    return packed;
  });
  return {
    model: parts.model,
    precision: parts.precision,
    inputShape: parts.inputs[0].shape,
    outputShape: parts.outputs[0].shape,
    inputs: parts.inputs,
    outputs: parts.outputs,
    shaders: parts.kernels.map((k) => ({ name: k.name, code: '', needs: { workgroupSize: k.block, workgroupStorageBytes: k.sharedBytes, storageBuffers: 3 } })),
    buffers: parts.buffers,
    dispatches: parts.launches.map(([shader, grid, buffers]) => launch(shader, grid, buffers, parts)),
    programs: [],
    weights,
    inputBuffer: parts.inputs[0].buffer,
    outputBuffer: parts.outputs[0].buffer,
    largestBufferBytes: Math.max(...parts.buffers.map((b) => b.floats * (b.dtype === 'f16' ? 2 : 4))),
  };
}

// Buffer 2's 128 floats are reused by nothing; the bias (8) and scale (2) are weights.
const classifier = handProgram({
  model: 'hand-classifier',
  precision: 'f32',
  kernels: [
    { name: 'bias_add', block: 64, sharedBytes: 0 },
    { name: 'block_sum', block: row, sharedBytes: 4 * row },
  ],
  buffers: [
    { floats: 128, dtype: 'f32', role: 'input' },
    { floats: 8, dtype: 'f32', role: 'weight', weight: 'bias' },
    { floats: 128, dtype: 'f32', role: 'activation' },
    { floats: 2, dtype: 'f32', role: 'weight', weight: 'scale' },
    { floats: 2, dtype: 'f32', role: 'output' },
  ],
  inputs: [{ name: 'input', shape: [1, 2, 8, 8], buffer: 0 }],
  outputs: [{ name: 'logits', shape: [1, 2], buffer: 4 }],
  launches: [
    [0, [2, 1, 1], [0, 1, 2]],
    // Two rows as a grid of 1 x 2 blocks: the runner passes the y dimension through.
    [1, [1, 2, 1], [2, 3, 4]],
  ],
  weights: [
    { key: 'bias', floats: 8 },
    { key: 'scale', floats: 2 },
  ],
});
const classifierSource = `${biasAdd}\n${blockSum}\n`;

// FCMAE's shape of interface: an image and a patch mask in, pred and loss out by name.
const named = handProgram({
  model: 'hand-named',
  precision: 'f32',
  kernels: [
    { name: 'bias_add', block: 64, sharedBytes: 0 },
    { name: 'masked_sum', block: 128, sharedBytes: 4 * 128 },
  ],
  buffers: [
    { floats: 128, dtype: 'f32', role: 'input' },
    { floats: 4, dtype: 'f32', role: 'input' },
    { floats: 8, dtype: 'f32', role: 'weight', weight: 'bias' },
    { floats: 128, dtype: 'f32', role: 'output' },
    { floats: 1, dtype: 'f32', role: 'output' },
  ],
  inputs: [
    { name: 'input', shape: [1, 2, 8, 8], buffer: 0 },
    { name: 'mask', shape: [1, 4], buffer: 1, keeps: 2 },
  ],
  outputs: [
    { name: 'pred', shape: [1, 128], buffer: 3 },
    { name: 'loss', shape: [1], buffer: 4 },
  ],
  launches: [
    [0, [2, 1, 1], [0, 2, 3]],
    [1, [1, 1, 1], [3, 1, 4]],
  ],
  weights: [{ key: 'bias', floats: 8 }],
});
const namedSource = `${biasAdd}\n${maskedSum}\n`;

// f16 storage: the activation and the weights hold half bits; the caller's values stay f32.
const halves = handProgram({
  model: 'hand-f16',
  precision: 'f16',
  kernels: [
    { name: 'half_bias_add', block: 64, sharedBytes: 0 },
    { name: 'half_block_sum', block: row, sharedBytes: 4 * row },
  ],
  buffers: [
    { floats: 128, dtype: 'f32', role: 'input' },
    { floats: 8, dtype: 'f16', role: 'weight', weight: 'bias' },
    { floats: 128, dtype: 'f16', role: 'activation' },
    // An odd count of halves: 6 bytes, not a whole number of floats.
    { floats: 3, dtype: 'f16', role: 'weight', weight: 'scale' },
    { floats: 2, dtype: 'f32', role: 'output' },
  ],
  inputs: [{ name: 'input', shape: [1, 2, 8, 8], buffer: 0 }],
  outputs: [{ name: 'logits', shape: [1, 2], buffer: 4 }],
  launches: [
    [0, [2, 1, 1], [0, 1, 2]],
    [1, [2, 1, 1], [2, 3, 4]],
  ],
  weights: [
    { key: 'bias', floats: 8 },
    { key: 'scale', floats: 3 },
  ],
});

// Reads a weight buffer past its weight (padding) and a buffer nothing writes: both must read
// as zeros, as WebGPU's buffers do, though the emulated driver fills fresh memory with NaN bytes.
const readsPadding = handProgram({
  model: 'hand-padding',
  precision: 'f32',
  kernels: [{ name: 'add_four', block: 4, sharedBytes: 0 }],
  buffers: [
    { floats: 4, dtype: 'f32', role: 'input' },
    { floats: 4, dtype: 'f32', role: 'weight', weight: 'w' },
    { floats: 4, dtype: 'f32', role: 'scratch' },
    { floats: 4, dtype: 'f32', role: 'output' },
  ],
  inputs: [{ name: 'input', shape: [4], buffer: 0 }],
  outputs: [{ name: 'output', shape: [4], buffer: 3 }],
  launches: [[0, [1, 1, 1], [0, 1, 2, 3]]],
  weights: [{ key: 'w', floats: 2 }],
});
const addFour = `extern "C" __global__ void add_four(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ s, float* __restrict__ out) {
  out[threadIdx.x] = x[threadIdx.x] + w[threadIdx.x] + s[threadIdx.x];
}`;

const input = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i * 0.37) * 3);
const bias = Float32Array.from({ length: 8 }, (_, i) => 0.25 * i - 1);
const scale = Float32Array.from([0.5, -2]);
const classifierWeights = Float32Array.from([...bias, ...scale]);

/** The classifier's logits for `x`: y = x + bias stored by `store` (f32 or through f16), rows summed and scaled. */
function expectedLogits(x: Float32Array, store: (v: number) => number, biasOf: (i: number) => number, scaleOf: (r: number) => number): number[] {
  const y = Array.from(x, (v, i) => store(Math.fround(v + biasOf(i % 8))));
  return [0, 1].map((r) => y.slice(r * row, (r + 1) * row).reduce((a, b) => a + b, 0) * scaleOf(r));
}

/** Elementwise within `tolerance` (the kernels sum by a tree, this file in order). */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i]), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected[i])));
}

/** The runner's JavaScript, imported; its model is created on the emulated driver with the kernels of `source`. */
async function emulated<Output = Float32Array>(program: ModelProgram, source: string, weights: ArrayBuffer | ArrayBufferView, kernelNames = program.shaders.map((s) => s.name)) {
  const module = buildEmulatedKernels(source, kernelNames);
  return loadCudaRunner<Output>(generateCudaRunnerFiles(program).js, weights, { module, library: emulatedDriverPath() });
}

/** Runs `body` with CONVC_EMULATED_CUDA_FAIL set: the emulated driver reads it at every call. */
async function failing<T>(spec: string, body: () => Promise<T>): Promise<T> {
  process.env.CONVC_EMULATED_CUDA_FAIL = spec;
  try {
    return await body();
  } finally {
    delete process.env.CONVC_EMULATED_CUDA_FAIL;
  }
}

/**
 * Device memory in use, as the emulated driver counts it (cuMemGetInfo_v2), under a primary
 * context this test holds itself, so that the runner's release of its own does not free it all.
 */
function driverMemory() {
  const koffi = convcKoffi() as typeof import('koffi');
  const driver = koffi.load(emulatedDriverPath());
  const call = (declaration: string) => driver.func(declaration) as (...args: unknown[]) => number;
  const [cuInit, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuMemGetInfo] = [
    call('int cuInit(unsigned int flags)'),
    call('int cuDevicePrimaryCtxRetain(_Out_ void **context, int device)'),
    call('int cuDevicePrimaryCtxRelease_v2(int device)'),
    call('int cuCtxSetCurrent(void *context)'),
    call('int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)'),
  ];
  const context: [unknown] = [null];
  expect(cuInit(0)).toBe(0);
  expect(cuDevicePrimaryCtxRetain(context, 0)).toBe(0);
  return {
    used(): number {
      expect(cuCtxSetCurrent(context[0])).toBe(0);
      const free: [unknown] = [0];
      const total: [unknown] = [0];
      expect(cuMemGetInfo(free, total)).toBe(0);
      return Number(total[0]) - Number(free[0]);
    },
    release(): void {
      expect(cuDevicePrimaryCtxRelease(0)).toBe(0);
    },
  };
}

describe('the generated CUDA runner on the emulated driver', () => {
  it('computes what its kernels say: a bias add, then a block-wide sum with barriers over a 2-D grid', async () => {
    const model = await emulated(classifier, classifierSource, classifierWeights);
    try {
      const logits = await model.run(input);
      expect(logits).toBeInstanceOf(Float32Array);
      expectClose(logits, expectedLogits(input, Math.fround, (i) => bias[i], (r) => scale[r]));
      // Another input through the same model: nothing of the first pass is left over.
      const other = input.map((x, i) => x * (i % 3) - 1);
      expectClose(await model.run(other), expectedLogits(other, Math.fround, (i) => bias[i], (r) => scale[r]));
    } finally {
      model.destroy();
    }
  }, 120_000);

  it('takes weights as an ArrayBuffer or a view at any byte offset', async () => {
    const padded = new Uint8Array(classifierWeights.byteLength + 3);
    padded.set(new Uint8Array(classifierWeights.buffer), 3);
    for (const weights of [classifierWeights.buffer, new DataView(padded.buffer, 3)]) {
      const model = await emulated(classifier, classifierSource, weights);
      try {
        expectClose(await model.run(input), expectedLogits(input, Math.fround, (i) => bias[i], (r) => scale[r]));
      } finally {
        model.destroy();
      }
    }
  }, 120_000);

  it('resolves a model of several outputs to them by name, and checks a compacted mask keeps what it was compiled for', async () => {
    const model = await emulated<{ readonly pred: Float32Array; readonly loss: Float32Array }>(named, namedSource, bias);
    try {
      const mask = Float32Array.from([0, 1, 1, 0]);
      const { pred, loss } = await model.run(input, mask);
      const want = Array.from(input, (x, i) => Math.fround(x + bias[i % 8]));
      expectClose(pred, want);
      expectClose(loss, [want.reduce((sum, v, i) => sum + v * mask[Math.floor(i / 32)], 0)]);
      await expect(model.run(input, Float32Array.from([0, 0, 0, 1]))).rejects.toThrow(/hand-named: the mask keeps 3 patches, but this runner computes masks keeping 2/);
      await expect(model.run(input)).rejects.toThrow(/hand-named: expected 2 input\(s\) \(input, mask\), got 1/);
    } finally {
      model.destroy();
    }
  }, 120_000);

  it('stores f16 where the program does: the weights file holds half bits, the caller sees f32', async () => {
    const halfWeights = Uint16Array.from([...bias, ...scale, 7], f16Bits);
    const model = await emulated(halves, halfKernels, halfWeights);
    try {
      const logits = await model.run(input);
      expect(logits).toBeInstanceOf(Float32Array);
      expectClose(logits, expectedLogits(input, roundF16, (i) => roundF16(bias[i]), (r) => roundF16(scale[r])));
    } finally {
      model.destroy();
    }
    // f32 weights are twice the bytes an f16 program takes.
    await expect(emulated(halves, halfKernels, Float32Array.from([...bias, ...scale, 7]))).rejects.toThrow(/hand-f16: the weights hold 44 bytes, the model needs 22 \(11 f16 values\)/);
  }, 120_000);

  it('refuses inputs of the wrong length or type, naming the shape it wants', async () => {
    const model = await emulated(classifier, classifierSource, classifierWeights);
    try {
      await expect(model.run(input.subarray(1))).rejects.toThrow(/hand-classifier: expected an input of 128 floats \(NCHW \[1,2,8,8\]\), got 127/);
      await expect(model.run(Float64Array.from(input) as unknown as Float32Array)).rejects.toThrow(/hand-classifier: expected an input as a Float32Array \(NCHW \[1,2,8,8\]\), got \[object Float64Array\]/);
      // Still usable after a refusal.
      expectClose(await model.run(input), expectedLogits(input, Math.fround, (i) => bias[i], (r) => scale[r]));
    } finally {
      model.destroy();
    }
  }, 120_000);

  it('names the driver call and its CUresult when one fails, and frees what it had made', async () => {
    const memory = driverMemory();
    try {
      const before = memory.used();
      await failing('cuMemAlloc_v2', async () => {
        await expect(emulated(classifier, classifierSource, classifierWeights)).rejects.toThrow(/hand-classifier: cuMemAlloc_v2 \(buffer 0, 512 bytes\) failed: CUDA_ERROR_OUT_OF_MEMORY/);
      });
      // After every buffer exists: the failure frees them all.
      await failing('cuMemcpyHtoD_v2:1', async () => {
        await expect(emulated(classifier, classifierSource, classifierWeights)).rejects.toThrow(/cuMemcpyHtoD_v2 \(weight 'bias', 32 bytes\) failed: CUDA_ERROR_INVALID_VALUE/);
      });
      expect(memory.used()).toBe(before);
      const model = await emulated(classifier, classifierSource, classifierWeights);
      expect(memory.used()).toBeGreaterThan(before);
      await failing('cuLaunchKernel:719', async () => {
        await expect(model.run(input)).rejects.toThrow(/cuLaunchKernel \(launch 0, kernel bias_add\) failed: CUDA_ERROR_LAUNCH_FAILED/);
      });
      model.destroy();
      expect(memory.used()).toBe(before);
    } finally {
      memory.release();
    }
  }, 120_000);

  it('says what the kernel image holds when the driver cannot load it', async () => {
    const runner = await importCudaRunner(generateCudaRunnerFiles(classifier).js);
    const create = (module: Uint8Array) => runner.createModel(classifierWeights, { module, library: emulatedDriverPath(), koffi: convcKoffi() });
    await expect(create(new TextEncoder().encode('PTX? no.\0'))).rejects.toThrow(
      /hand-classifier: cuModuleLoadData \(the kernels\) failed: CUDA_ERROR_INVALID_IMAGE \(not a kernel image: kernels\.fatbin as nvcc builds it from kernels\.cu\)/,
    );
    const module = buildEmulatedKernels(classifierSource, ['bias_add', 'block_sum']);
    await failing('cuModuleLoadData:209', async () => {
      await expect(create(module)).rejects.toThrow(/cuModuleLoadData \(the kernels\) failed: CUDA_ERROR_NO_BINARY_FOR_GPU \(the kernels were compiled for sm_80, sm_90 \(SASS\) and compute_90 \(PTX/);
    });
  }, 120_000);

  it('says which kernel a module lacks', async () => {
    const module = buildEmulatedKernels(biasAdd, ['bias_add']);
    const runner = await importCudaRunner(generateCudaRunnerFiles(classifier).js);
    await expect(runner.createModel(classifierWeights, { module, library: emulatedDriverPath(), koffi: convcKoffi() })).rejects.toThrow(
      /hand-classifier: cuModuleGetFunction \(kernel block_sum\) failed: CUDA_ERROR_NOT_FOUND \(the kernel image is not this runner's/,
    );
  }, 120_000);

  it('refuses kernels larger than the device allows before creating anything', async () => {
    const big = { ...classifier, shaders: classifier.shaders.map((s, i) => (i === 1 ? { ...s, needs: { ...s.needs, workgroupSize: 2048, workgroupStorageBytes: 64 * 1024 } } : s)) };
    await expect(emulated(big, classifierSource, classifierWeights, ['bias_add', 'block_sum'])).rejects.toThrow(
      /hand-classifier: CUDA device 0 is too small for the model: kernel block_sum needs 2048 threads per block \(the device allows 1024\); kernel block_sum needs 65536 bytes of shared memory per block \(the device allows 49152\)/,
    );
  }, 120_000);

  it('starts every buffer as zeros where the weights do not fill it', async () => {
    const model = await emulated(readsPadding, addFour, Float32Array.from([10, 20]));
    try {
      expect(Array.from(await model.run(Float32Array.from([1, 2, 3, 4])))).toEqual([11, 22, 3, 4]);
    } finally {
      model.destroy();
    }
  }, 120_000);

  it('runs two models at once on the shared primary context; destroying one leaves the other working', async () => {
    const first = await emulated(classifier, classifierSource, classifierWeights);
    const second = await emulated<{ readonly pred: Float32Array; readonly loss: Float32Array }>(named, namedSource, bias);
    try {
      first.destroy();
      const { pred } = await second.run(input, Float32Array.from([0, 1, 1, 0]));
      expectClose(pred, Array.from(input, (x, i) => Math.fround(x + bias[i % 8])));
    } finally {
      first.destroy();
      second.destroy();
    }
  }, 120_000);

  it('is an error to run after destroy(); destroying twice is not', async () => {
    const model = await emulated(classifier, classifierSource, classifierWeights);
    model.destroy();
    model.destroy();
    await expect(model.run(input)).rejects.toThrow(/hand-classifier: run\(\) after destroy\(\)/);
  }, 120_000);
});

describe('the generated CUDA runner without a driver or its parts', () => {
  const js = generateCudaRunnerFiles(classifier).js;
  let runner: CudaRunnerModule;
  const load = async () => (runner ??= await importCudaRunner(js));
  const module = new TextEncoder().encode('not used');

  it('says the NVIDIA driver is missing when libcuda.so.1 cannot be loaded, and what koffi said', async () => {
    const created = (await load()).createModel(classifierWeights, { module, library: '/nonexistent/libcuda.so.1', koffi: convcKoffi() });
    await expect(created).rejects.toThrow(
      /hand-classifier: cannot load the CUDA driver library \/nonexistent\/libcuda\.so\.1\. This runner needs a machine with an NVIDIA GPU and the NVIDIA driver installed.*koffi: .+/,
    );
  });

  it('says where kernels.fatbin was looked for and how to build it, when no module is given', async () => {
    // Imported from a temporary file, since removed: there is no kernels.fatbin beside it.
    await expect((await load()).createModel(classifierWeights, { library: '/nonexistent/libcuda.so.1', koffi: convcKoffi() })).rejects.toThrow(
      /hand-classifier: cannot read the kernels, \/.*kernels\.fatbin \(.*\); build them from kernels\.cu with: nvcc -fatbin .* -o kernels\.fatbin kernels\.cu; or pass createModel's module option/,
    );
  });

  it('says koffi is needed when it cannot import it and none is given', () => {
    // In a plain Node process (vitest resolves bare imports from the project), beside a koffi
    // package without its files, which hides any koffi installed further up.
    const dir = mkdtempSync(join(tmpdir(), 'convc-cuda-runner-'));
    mkdirSync(join(dir, 'node_modules', 'koffi'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'koffi', 'package.json'), JSON.stringify({ name: 'koffi', type: 'module', exports: './missing.js' }));
    writeFileSync(join(dir, 'model.mjs'), js);
    const script = `import('./model.mjs').then((m) => m.createModel(new Float32Array(10), { module: new Uint8Array(8) })).then(() => console.log('created'), (e) => console.log(e.message));`;
    const said = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' });
    expect(said).toMatch(/^hand-classifier: the CUDA runner calls the driver through koffi, which did not load \(.+\); install it \(npm install koffi\) or pass createModel's koffi option/);
  });

  it('checks the weights before touching the driver', async () => {
    await expect((await load()).createModel(new Float32Array(3), { module, library: '/nonexistent/libcuda.so.1', koffi: convcKoffi() })).rejects.toThrow(
      /hand-classifier: the weights hold 12 bytes, the model needs 40 \(10 f32 values\)/,
    );
  });
});
