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
import { limitViolations, webgpuDefaultTarget } from '../../../src/kernel/target.js';
import { BindingSizeError } from '../../../src/kernel/lower/index.js';
import { UserError } from '../../../src/util/diagnostics.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { goldenCases, goldenFiles, goldenGraph, scaledDifference, zooGraph } from '../../helpers.js';

// f32 on the GPU against the goldens (exact, float64) and the f64-accumulating reference: the
// kernels' sums run over at most a few thousand products in f32, whose rounding error grows
// like sqrt(terms) * 6e-8 relative to the magnitude of the terms, and erf is approximated to
// 1.5e-7; observed errors are below 1e-5 of the output's scale. 2e-5 relative to the output's
// scale (the largest |value| of the expected tensor) leaves a 2x margin and catches a wrong
// epsilon, a mis-ordered channel or a stale workgroup value, which the old 1e-4 abs + rel let
// through for LayerNorm eps.
const SCALE_RTOL = 2e-5;

/** The adapters every WebGPU test runs on: lavapipe (Vulkan) and Dawn's OpenGL ES path. */
const adapters = ['vulkan', 'gl'] as const;
const gpus = new Map<string, AcquiredGpu>();

beforeAll(async () => {
  for (const adapter of adapters) gpus.set(adapter, await acquireGpu({ adapter }));
}, 120_000);

afterAll(() => {
  for (const gpu of gpus.values()) gpu.destroy();
});

const device = (adapter: string): GPUDevice => gpus.get(adapter)!.device;

/** A view of the device that reports some smaller limits. */
function withLimits(device: GPUDevice, smaller: Readonly<Record<string, number>>): GPUDevice {
  const limits = new Proxy(device.limits, {
    get: (target, prop) => (typeof prop === 'string' && prop in smaller ? smaller[prop] : Reflect.get(target, prop)),
  });
  return new Proxy(device, {
    get(target, prop) {
      if (prop === 'limits') return limits;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A view of the device that reports a smaller binding limit, to exercise splitting. */
function withBindingLimit(device: GPUDevice, bytes: number): GPUDevice {
  return withLimits(device, { maxStorageBufferBindingSize: bytes, maxBufferSize: bytes });
}

describe.each(adapters)('on %s', (adapter) => {
  it('got the adapter it asked for', () => {
    expect(gpus.get(adapter)!.adapterInfo).toMatch(adapter === 'gl' ? /backend: opengles/ : /backend: vulkan/);
  });

  describe('WebGPU vs PyTorch goldens', () => {
    const cases = goldenCases.flatMap((c) => (['fused', 'unfused'] as const).map((pipeline) => [c.name, pipeline] as const));
    it.each(cases)('%s, %s', async (name, pipeline) => {
      const { input, output, weights, paths } = goldenFiles(name);
      const graph = goldenGraph(name, input, pipelines[pipeline]);
      const bound = bindWeights(graph, weights, paths.weights);
      const result = await executeWebGpu(() => graph, bound, input, device(adapter));
      expect(result.output.shape).toEqual(output.shape);
      expect(scaledDifference(result.output.data, output.data)).toBeLessThan(SCALE_RTOL);
    });
  });

  describe('WebGPU vs the reference executor on zoo models', () => {
    it.each<[string, 'fused' | 'unfused', number, number, number]>([
      ['convnextv2-atto', 'fused', 1, 224, 224],
      ['convnextv2-atto', 'unfused', 1, 224, 224],
      ['convnextv2-atto', 'fused', 2, 64, 48],
      ['convnextv2-atto', 'unfused', 2, 64, 48],
      ['convnextv1-tiny', 'fused', 1, 45, 67],
      ['convnextv1-tiny', 'unfused', 1, 45, 67],
    ])('%s %s, batch %i, %ix%i', { timeout: 240_000 }, async (variant, pipeline, batch, height, width) => {
      const graph = zooGraph(variant, { batch, height, width }, pipelines[pipeline]);
      const weights = randomWeights(graph, 5);
      const input = randomInput(graph.nodes[0].type.shape, 6);
      const expected = executeReference(graph, weights, input);
      const { output } = await executeWebGpu(() => graph, weights, input, device(adapter));
      expect(scaledDifference(output.data, expected.data)).toBeLessThan(SCALE_RTOL);
    });
  });

  describe('kernel validation', () => {
    const variants = ['convnextv1-tiny', 'convnextv1-small', 'convnextv1-base', 'convnextv1-large', 'convnextv1-xlarge', 'convnextv2-atto', 'convnextv2-femto', 'convnextv2-pico', 'convnextv2-nano', 'convnextv2-tiny', 'convnextv2-base', 'convnextv2-large', 'convnextv2-huge'];

    it("every kernel of all 13 variants at 224, fused and unfused, passes Dawn's validation within WebGPU's default limits", async () => {
      const checked = new Set<string>();
      const failures: string[] = [];
      for (const pipeline of ['fused', 'unfused'] as const) {
        for (const variant of variants) {
          for (const shader of lowerToWgsl(zooGraph(variant, undefined, pipelines[pipeline])).shaders) {
            if (checked.has(shader.code)) continue;
            checked.add(shader.code);
            for (const problem of limitViolations(shader.needs, webgpuDefaultTarget)) failures.push(`${variant} ${pipeline} ${shader.name}: ${problem}`);
            const module = device(adapter).createShaderModule({ code: shader.code });
            const info = await module.getCompilationInfo();
            for (const m of info.messages) if (m.type === 'error') failures.push(`${variant} ${pipeline} ${shader.name} ${m.lineNum}:${m.linePos} ${m.message}`);
          }
        }
      }
      expect(failures).toEqual([]);
      // Some 230 fused kernels beside the unfused ones: both pipelines were compiled.
      expect(checked.size).toBeGreaterThan(500);
    }, 300_000);
  });
});

describe("a device below the kernels' needs", () => {
  it('is refused by createModel, naming the kernel and the limit, before anything is created', async () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
    const program = lowerToWgsl(graph);
    const needed = Math.max(...program.shaders.map((s) => s.needs.workgroupStorageBytes));
    expect(needed).toBeGreaterThan(0);
    const small = withLimits(device('vulkan'), { maxComputeWorkgroupStorageSize: needed - 4 });
    const runner = await importRunner(generateRunner(program));
    await expect(runner.createModel(small, packWeights(graph, program, randomWeights(graph)))).rejects.toThrow(
      /limits are too small for the model: kernel \w+ needs \d+ bytes of workgroup memory \(maxComputeWorkgroupStorageSize is \d+\)/,
    );
  });

  it('and lowering refuses kernels beyond the target limits it is given', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
    expect(() => lowerToWgsl(graph, { target: { ...webgpuDefaultTarget, maxComputeWorkgroupStorageSize: 1024 } })).toThrow(/needs \d+ bytes of workgroup memory/);
  });
});

describe('buffers larger than the adapter can bind', () => {
  const build = (batch: number): Graph => zooGraph('convnextv2-atto', { batch, height: 32, width: 32 });

  it('V2-huge at batch 8 needs more than the default 128 MiB binding: lowering for the defaults refuses it', () => {
    const graph = zooGraph('convnextv2-huge', { batch: 8, height: 224, width: 224 });
    expect(() => lowerToWgsl(graph)).toThrow(BindingSizeError);
    expect(() => lowerToWgsl(graph)).toThrow(/binds .* bytes, more than WebGPU default limits can bind \(maxStorageBufferBindingSize 134217728\); use a smaller batch or input size/);
    const unlimited = { ...webgpuDefaultTarget, maxStorageBufferBindingSize: Number.POSITIVE_INFINITY };
    expect(lowerToWgsl(graph, { target: unlimited }).largestBufferBytes).toBeGreaterThan(128 * 2 ** 20);
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
    const result = await executeWebGpu(mini, weights, input, withBindingLimit(device('vulkan'), perSample + 4));
    expect(result.chunk).toBe(1);
    expect(scaledDifference(result.output.data, executeReference(graph, weights, input).data)).toBeLessThan(SCALE_RTOL);
  });

  it('refuses before any dispatch when one sample does not fit, or a weight does not', async () => {
    const { input: golden } = goldenFiles('convnextv2-mini');
    const mini = (batch: number): Graph => goldenGraph('convnextv2-mini', { shape: [batch, 3, 128, 96], data: golden.data });
    const graph = mini(2);
    const input = randomInput(graph.nodes[0].type.shape, 2);
    const largestWeight = Math.max(...lowerToWgsl(graph).buffers.filter((b) => b.role === 'weight').map((b) => b.floats * 4));
    const tooSmall = withBindingLimit(device('vulkan'), largestWeight + 4);
    await expect(executeWebGpu(mini, randomWeights(graph), input, tooSmall)).rejects.toThrow(UserError);
    await expect(executeWebGpu(mini, randomWeights(graph), input, tooSmall)).rejects.toThrow(/needs a \d+-byte buffer even for one sample, more than this adapter can bind \(\d+ bytes\)/);
    await expect(executeWebGpu(mini, randomWeights(graph), input, withBindingLimit(device('vulkan'), 1024))).rejects.toThrow(/weight '[\w.]+' needs \d+ bytes, more than this adapter can bind \(1024 bytes\)/);
  });

  it('the runner itself refuses an oversized buffer with a clear error', async () => {
    const graph = build(1);
    const program = lowerToWgsl(graph);
    const runner = await importRunner(generateRunner(program));
    const packed = packWeights(graph, program, randomWeights(graph));
    await expect(runner.createModel(withBindingLimit(device('vulkan'), 4096), packed)).rejects.toThrow(/needs \d+ bytes, more than this device allows in one binding \(4096\)/);
  });
});
