// WGSL on a real WebGPU adapter (lavapipe in CI) against the reference executor and PyTorch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../../src/backends/wgsl/execute.js';
import { importRunner } from '../../../src/backends/wgsl/load-runner.js';
import { lowerToWgsl, packWeights } from '../../../src/backends/wgsl/lower.js';
import { generateRunner } from '../../../src/backends/wgsl/runner.js';
import type { Graph } from '../../../src/ir/types.js';
import { pipelines } from '../../../src/passes/manager.js';
import { UserError } from '../../../src/util/diagnostics.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { goldenCases, goldenFiles, goldenGraph, toleranceRatio, zooGraph } from '../../helpers.js';

// f32 on the GPU against an f64-accumulating reference: sums of up to a few thousand products
// and an erf approximation good to 1.5e-7 stay well inside the project's 1e-4 (abs + rel).
const ATOL = 1e-4;
const RTOL = 1e-4;

let gpu: AcquiredGpu;

beforeAll(async () => {
  gpu = await acquireGpu();
}, 120_000);

afterAll(() => gpu?.destroy());

/** A view of the device that reports a smaller binding limit, to exercise splitting. */
function withBindingLimit(device: GPUDevice, bytes: number): GPUDevice {
  const limits = new Proxy(device.limits, {
    get: (target, prop) => (prop === 'maxStorageBufferBindingSize' || prop === 'maxBufferSize' ? bytes : Reflect.get(target, prop)),
  });
  return new Proxy(device, {
    get(target, prop) {
      if (prop === 'limits') return limits;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('WebGPU vs PyTorch goldens', () => {
  const cases = goldenCases.flatMap((c) => (['fused', 'unfused'] as const).map((pipeline) => [c.name, pipeline] as const));
  it.each(cases)('%s, %s', async (name, pipeline) => {
    const { input, output, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input, pipelines[pipeline]);
    const bound = bindWeights(graph, weights, paths.weights);
    const result = await executeWebGpu(() => graph, bound, input, gpu.device);
    expect(result.output.shape).toEqual(output.shape);
    expect(toleranceRatio(result.output.data, output.data, ATOL, RTOL)).toBeLessThan(1);
  });
});

describe('WebGPU vs the reference executor on zoo models', () => {
  it.each<[string, number, number, number]>([
    ['convnextv2-atto', 2, 64, 48],
    ['convnextv1-tiny', 1, 45, 67],
  ])('%s, batch %i, %ix%i', async (variant, batch, height, width) => {
    const graph = zooGraph(variant, { batch, height, width });
    const weights = randomWeights(graph, 5);
    const input = randomInput(graph.nodes[0].type.shape, 6);
    const expected = executeReference(graph, weights, input);
    const { output } = await executeWebGpu(() => graph, weights, input, gpu.device);
    expect(toleranceRatio(output.data, expected.data, ATOL, RTOL)).toBeLessThan(1);
  });
});

describe('kernel validation', () => {
  const variants = ['convnextv1-tiny', 'convnextv1-small', 'convnextv1-base', 'convnextv1-large', 'convnextv1-xlarge', 'convnextv2-atto', 'convnextv2-femto', 'convnextv2-pico', 'convnextv2-nano', 'convnextv2-tiny', 'convnextv2-base', 'convnextv2-large', 'convnextv2-huge'];

  it('every kernel of all 13 variants at 224 passes Dawn validation', async () => {
    const checked = new Set<string>();
    const failures: string[] = [];
    for (const variant of variants) {
      for (const shader of lowerToWgsl(zooGraph(variant)).shaders) {
        if (checked.has(shader.code)) continue;
        checked.add(shader.code);
        const module = gpu.device.createShaderModule({ code: shader.code });
        const info = await module.getCompilationInfo();
        for (const m of info.messages) if (m.type === 'error') failures.push(`${variant} ${shader.name} ${m.lineNum}:${m.linePos} ${m.message}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked.size).toBeGreaterThan(100);
  }, 120_000);
});

describe('buffers larger than the adapter can bind', () => {
  const build = (batch: number): Graph => zooGraph('convnextv2-atto', { batch, height: 32, width: 32 });

  it('V2-huge at batch 8 needs more than the default 128 MiB binding', () => {
    expect(lowerToWgsl(zooGraph('convnextv2-huge', { batch: 8, height: 224, width: 224 })).largestBufferBytes).toBeGreaterThan(128 * 2 ** 20);
  });

  it('splits the batch when one sample fits, with the same result', async () => {
    // A small-weighted model at a larger size, so activations, not weights, set the limit.
    const { input: golden } = goldenFiles('convnextv2-mini');
    const mini = (batch: number): Graph => goldenGraph('convnextv2-mini', { shape: [batch, 3, 128, 96], data: golden.data });
    const graph = mini(3);
    const weights = randomWeights(graph, 1);
    const input = randomInput(graph.nodes[0].type.shape, 2);
    const program = lowerToWgsl(mini(1));
    const perSample = Math.max(...program.buffers.filter((b) => b.role !== 'weight').map((b) => b.floats * 4));
    expect(perSample).toBeGreaterThan(Math.max(...program.buffers.filter((b) => b.role === 'weight').map((b) => b.floats * 4)));
    const result = await executeWebGpu(mini, weights, input, withBindingLimit(gpu.device, perSample + 4));
    expect(result.chunk).toBe(1);
    expect(toleranceRatio(result.output.data, executeReference(graph, weights, input).data, ATOL, RTOL)).toBeLessThan(1);
  });

  it('refuses before any dispatch when one sample does not fit, or a weight does not', async () => {
    const { input: golden } = goldenFiles('convnextv2-mini');
    const mini = (batch: number): Graph => goldenGraph('convnextv2-mini', { shape: [batch, 3, 128, 96], data: golden.data });
    const graph = mini(2);
    const input = randomInput(graph.nodes[0].type.shape, 2);
    const largestWeight = Math.max(...lowerToWgsl(graph).buffers.filter((b) => b.role === 'weight').map((b) => b.floats * 4));
    const tooSmall = withBindingLimit(gpu.device, largestWeight + 4);
    await expect(executeWebGpu(mini, randomWeights(graph), input, tooSmall)).rejects.toThrow(UserError);
    await expect(executeWebGpu(mini, randomWeights(graph), input, tooSmall)).rejects.toThrow(/needs a \d+-byte buffer even for one sample, more than this adapter can bind \(\d+ bytes\)/);
    await expect(executeWebGpu(mini, randomWeights(graph), input, withBindingLimit(gpu.device, 1024))).rejects.toThrow(/weight '[\w.]+' needs \d+ bytes, more than this adapter can bind \(1024 bytes\)/);
  });

  it('the runner itself refuses an oversized buffer with a clear error', async () => {
    const graph = build(1);
    const program = lowerToWgsl(graph);
    const runner = await importRunner(generateRunner(program));
    const packed = packWeights(graph, program, randomWeights(graph));
    await expect(runner.createModel(withBindingLimit(gpu.device, 4096), packed)).rejects.toThrow(/needs \d+ bytes, more than this device allows in one binding \(4096\)/);
  });
});
