// The gpu.js backend against the ground truth, in both of gpu.js's modes: WebGL through
// headless-gl (Mesa's llvmpipe, on a private Xvfb display where the process has none) and the
// CPU, each run checked to be in the mode asked for, since gpu.js changes mode silently.
// PyTorch goldens, V2-atto and V1-tiny against the reference executor, FCMAE, fused and unfused;
// and what the runner refuses before running.
import { describe, expect, it } from 'vitest';
import { createGpuJs, createGpuJsModel, importGpuJsRunner, type GpuJsGpu, type GpuJsMode } from '../../../src/backends/gpujs/execute.js';
import { generateGpuJsRunnerFiles } from '../../../src/backends/gpujs/runner.js';
import { lowerToGpuJs } from '../../../src/backends/gpujs/lower.js';
import { renderGpuJsKernel } from '../../../src/backends/gpujs/render.js';
import { gpujsTarget } from '../../../src/backends/gpujs/target.js';
import { executeReference, type WeightMap } from '../../../src/backends/reference/executor.js';
import type { Graph, HostTensor } from '../../../src/ir/types.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { withDerivedWeights } from '../../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { goldenCases, goldenFiles, goldenGraph, scaledDifference, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../../models/fcmae-helpers.js';
import { acquireGpu } from '../../../src/backends/webgpu/device.js';
import { sumProgram } from './programs.js';

// The goldens are f64 PyTorch and the kernels compute in f32 (GLSL floats on llvmpipe): issue
// 14's bound of 1e-4 of the output's scale, as for the other backends' golden tests. Observed
// about 1e-6 in GL mode and 2e-7 in CPU mode (JavaScript doubles, rounded to f32 at the end).
const RTOL = 1e-4;

const context = { target: gpujsTarget };

/**
 * Runs `graph` through its generated runner on a GPU in `mode`, asserting the mode that ran:
 * gpu.js's chosen kernel kind (headless-gl's in GL mode) and the one the runner checked.
 */
async function runIn(mode: GpuJsMode, graph: Graph, weights: WeightMap, inputs: Readonly<Record<string, HostTensor>>): Promise<Readonly<Record<string, Float32Array>>> {
  const { program, model, gpu } = await createGpuJsModel(graph, weights, mode);
  try {
    expect(model.mode).toBe(mode);
    expect(gpu.Kernel?.mode).toBe(mode);
    expect(gpu.Kernel?.name).toBe(mode === 'gpu' ? 'HeadlessGLKernel' : 'CPUKernel');
    const result = await model.run(...program.inputs.map((i) => inputs[i.name].data));
    return result instanceof Float32Array ? { [program.outputs[0].name]: result } : result;
  } finally {
    model.destroy();
    await gpu.destroy();
  }
}
const modes: readonly GpuJsMode[] = ['gpu', 'cpu'];
const pipelineNames = ['fused', 'unfused'] as const;

describe.each(modes)('gpu.js in %s mode', (mode) => {
  it.each(goldenCases.flatMap((c) => pipelineNames.map((p) => [c.name, p] as const)))('reproduces the PyTorch golden %s, %s', async (name, pipeline) => {
    const { input, output, weights } = goldenFiles(name);
    const graph = goldenGraph(name, input, []);
    const passes = runPipeline(graph, pipelines[pipeline], { context });
    const out = await runIn(mode, passes, withDerivedWeights(passes, weights), { input });
    expect(scaledDifference(Object.values(out)[0], output.data)).toBeLessThan(RTOL);
  }, 60_000);

  it.each(['convnextv2-atto', 'convnextv1-tiny'].flatMap((v) => pipelineNames.map((p) => [v, p] as const)))('computes %s (%s) as the reference executor does', async (variant, pipeline) => {
    const graph = zooGraph(variant, { batch: 2, height: 32, width: 32 }, []);
    const unfused = runPipeline(graph, pipelines.unfused, { context });
    const weights = randomWeights(unfused, 7);
    const input = randomInput(unfused.nodes[0].type.shape, 8);
    const expected = executeReference(unfused, weights, input);
    const passes = runPipeline(graph, pipelines[pipeline], { context });
    const out = await runIn(mode, passes, withDerivedWeights(passes, weights), { input });
    expect(scaledDifference(Object.values(out)[0], expected.data)).toBeLessThan(RTOL);
  }, 120_000);

  it('reproduces an FCMAE golden (pred and loss), the encoder compacted to the visible patches', async () => {
    const c = fcmaeCases[0];
    const graph = fcmaeGraph(c, 2, []);
    const passes = runPipeline(graph, pipelines.fused, { context });
    const input = fcmaeNpy(c.name, 'input.npy');
    const flat = fcmaeNpy(c.name, 'mask.npy');
    const out = await runIn(mode, passes, bindWeights(passes, fcmaeWeights(c.name), 'weights.safetensors'), { input, mask: flat });
    expect(scaledDifference(out.pred, fcmaeNpy(c.name, 'pred.npy').data)).toBeLessThan(RTOL);
    expect(Math.abs(out.loss[0] - c.loss) / c.loss).toBeLessThan(RTOL);
  }, 120_000);

  it('runs a loop longer than gpu.js\'s loopMaxIterations in full', async () => {
    const gpu = await createGpuJs(mode);
    try {
      const kernel = renderGpuJsKernel(sumProgram(5000));
      const run = gpu.createKernel(kernel.source.slice(kernel.source.indexOf('function ')), { output: [1], precision: 'single' });
      const sum = run(new Float32Array(5000).fill(1)) as Float32Array;
      expect(sum[0]).toBe(5000);
    } finally {
      await gpu.destroy();
    }
  });
});

describe("Dawn's OpenGL backend after gpu.js's GL mode", () => {
  it('is refused, saying why (the other order: gl-process.test.ts)', async () => {
    // The GL mode tests above hold headless-gl in this process.
    await createGpuJs('gpu').then((gpu) => gpu.destroy());
    await expect(acquireGpu({ adapter: 'gl' })).rejects.toThrow(
      "Dawn's OpenGL ES backend (the WebGPU gl adapter) cannot start in this process: gpu.js's GL mode (headless-gl) already uses OpenGL here",
    );
  });
});

describe('the gpu.js runner', () => {
  it("refuses, before building a kernel, a tensor wider than the device's textures", async () => {
    const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []), pipelines.fused, { context });
    const program = lowerToGpuJs(graph);
    const runner = await importGpuJsRunner(generateGpuJsRunnerFiles(program).js);
    let kernels = 0;
    // A GL device of 16-texel textures, as gpu.js describes one: no kernel may be made for it.
    const small: GpuJsGpu = {
      Kernel: { mode: 'gpu', name: 'WebGL2Kernel', features: { maxTextureSize: 16 } },
      addFunction: () => undefined,
      createKernel: () => {
        kernels++;
        return () => undefined;
      },
      destroy: () => undefined,
    };
    const weights = new Float32Array(program.weights.reduce((sum, w) => sum + w.floats, 0));
    await expect(runner.createModel(small, weights)).rejects.toThrow(/^convnextv2-atto: a tensor of \d+ values \(\w+\) needs textures \d+ texels wide, more than this device's MAX_TEXTURE_SIZE \(16\); compile the model for a smaller batch or input size$/);
    expect(kernels).toBe(0);
  });

  it('is refused, at lowering, for a tensor past the 2^22 elements float index arithmetic holds exactly', () => {
    const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 16, height: 224, width: 224 }, []), pipelines.fused, { context });
    expect(() => lowerToGpuJs(graph)).toThrow(/more than gpu\.js \(WebGL\) can bind \(maxStorageBufferBindingSize 16777216\); use a smaller batch or input size/);
  });

  it('refuses a GPU whose mode is not the one asked for, naming the one gpu.js chose', async () => {
    const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []), pipelines.fused, { context });
    const program = lowerToGpuJs(graph);
    const runner = await importGpuJsRunner(generateGpuJsRunnerFiles(program).js);
    const gpu = await createGpuJs('cpu');
    try {
      await expect(runner.createModel(gpu, new Float32Array(0))).rejects.toThrow("convnextv2-atto: gpu.js was asked for its gpu mode but chose 'cpu' (CPUKernel)");
      await expect(runner.createModel(gpu, new Float32Array(0), { mode: 'cpu' })).rejects.toThrow(/convnextv2-atto: the weights hold 0 float32 values, the model needs \d+/);
    } finally {
      await gpu.destroy();
    }
  });
});
