// The gpu.js backend against the ground truth, in both of gpu.js's modes: WebGL through
// headless-gl (Mesa's llvmpipe, on a private Xvfb display where the process has none) and the
// CPU, each run checked to be in the mode asked for, since gpu.js changes mode silently.
// PyTorch goldens, V2-atto and V1-tiny against the reference executor, FCMAE, fused and unfused.
import { describe, expect, it } from 'vitest';
import { createGpuJs, executeGpuJsModel, importGpuJsRunner, type GpuJsMode } from '../../../src/backends/gpujs/execute.js';
import { generateGpuJsRunnerFiles } from '../../../src/backends/gpujs/runner.js';
import { lowerToGpuJs } from '../../../src/backends/gpujs/lower.js';
import { renderGpuJsKernel } from '../../../src/backends/gpujs/render.js';
import { gpujsTarget } from '../../../src/backends/gpujs/target.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { withDerivedWeights } from '../../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { goldenCases, goldenFiles, goldenGraph, scaledDifference, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../../models/fcmae-helpers.js';
import { sumProgram } from './programs.js';

// The goldens are f64 PyTorch and the kernels compute in f32 (GLSL floats on llvmpipe): issue
// 14's bound of 1e-4 of the output's scale, as for the other backends' golden tests. Observed
// about 1e-6 in GL mode and 2e-7 in CPU mode (JavaScript doubles, rounded to f32 at the end).
const RTOL = 1e-4;

const context = { target: gpujsTarget };
const modes: readonly GpuJsMode[] = ['gpu', 'cpu'];
const pipelineNames = ['fused', 'unfused'] as const;

describe.each(modes)('gpu.js in %s mode', (mode) => {
  it.each(goldenCases.flatMap((c) => pipelineNames.map((p) => [c.name, p] as const)))('reproduces the PyTorch golden %s, %s', async (name, pipeline) => {
    const { input, output, weights } = goldenFiles(name);
    const graph = goldenGraph(name, input, []);
    const passes = runPipeline(graph, pipelines[pipeline], { context });
    const out = await executeGpuJsModel(passes, withDerivedWeights(passes, weights), { input }, mode);
    expect(scaledDifference(Object.values(out)[0].data, output.data)).toBeLessThan(RTOL);
  }, 60_000);

  it.each(['convnextv2-atto', 'convnextv1-tiny'].flatMap((v) => pipelineNames.map((p) => [v, p] as const)))('computes %s (%s) as the reference executor does', async (variant, pipeline) => {
    const graph = zooGraph(variant, { batch: 2, height: 32, width: 32 }, []);
    const unfused = runPipeline(graph, pipelines.unfused, { context });
    const weights = randomWeights(unfused, 7);
    const input = randomInput(unfused.nodes[0].type.shape, 8);
    const expected = executeReference(unfused, weights, input);
    const passes = runPipeline(graph, pipelines[pipeline], { context });
    const out = await executeGpuJsModel(passes, withDerivedWeights(passes, weights), { input }, mode);
    expect(scaledDifference(Object.values(out)[0].data, expected.data)).toBeLessThan(RTOL);
  }, 120_000);

  it('reproduces an FCMAE golden (pred and loss), the encoder compacted to the visible patches', async () => {
    const c = fcmaeCases[0];
    const graph = fcmaeGraph(c, 2, []);
    const passes = runPipeline(graph, pipelines.fused, { context });
    const input = fcmaeNpy(c.name, 'input.npy');
    const flat = fcmaeNpy(c.name, 'mask.npy');
    const out = await executeGpuJsModel(passes, bindWeights(passes, fcmaeWeights(c.name), 'weights.safetensors'), { input, mask: flat }, mode);
    expect(scaledDifference(out.pred.data, fcmaeNpy(c.name, 'pred.npy').data)).toBeLessThan(RTOL);
    expect(Math.abs(out.loss.data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
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

describe('the gpu.js runner', () => {
  it('refuses a GPU whose mode is not the one asked for, naming the one gpu.js chose', async () => {
    const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []), pipelines.fused, { context });
    const program = lowerToGpuJs(graph);
    const runner = await importGpuJsRunner(generateGpuJsRunnerFiles(program).js);
    const gpu = await createGpuJs('cpu');
    try {
      expect(() => runner.createModel(gpu, new Float32Array(0))).toThrow("convnextv2-atto: gpu.js was asked for its gpu mode but chose 'cpu' (CPUKernel)");
      expect(() => runner.createModel(gpu, new Float32Array(0), { mode: 'cpu' })).toThrow(/convnextv2-atto: the weights hold 0 float32 values, the model needs \d+/);
    } finally {
      await gpu.destroy();
    }
  });
});
