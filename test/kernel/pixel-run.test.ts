// Runs of pixels in the depthwise convolution + LayerNorm kernel (src/kernel/lower/pixel-run.ts):
// every run schedule the space offers, on the interpreter, against the reference executor, on
// shapes where runs overhang their row (widths not a multiple of the run) and where padding
// cuts windows at both edges. The schedule walk in schedules.test.ts covers the space too, but
// on networks whose depthwise layers see 2x2 images, too small for a run of pixels to matter.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { lowerNode } from '../../src/kernel/lower/index.js';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../src/backends/wgsl/execute.js';
import { defaultSchedule, kernelShape, scheduleFits, scheduleSpace, type Schedule } from '../../src/kernel/schedule.js';
import { recomputeLimits, targetOfDevice, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import type { Graph } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { repoPath, scaledDifference } from '../helpers.js';
import { nodeEnv, runNode } from './run-node.js';

// The project's f32 kernel tolerance (2e-5 of the output's scale): 32 channels and more, so no
// LayerNorm over a handful of channels amplifies rounding (see schedules.test.ts).
const KERNEL_RTOL = 2e-5;

const emulated: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };

function blockGraph(version: 1 | 2, dim: number, height: number, width: number): Graph {
  const file = join(mkdtempSync(join(tmpdir(), 'convc-pixel-run-')), 'block.cnx');
  const family = version === 1 ? 'ConvNeXtV1Block' : 'ConvNeXtV2Block';
  writeFileSync(file, `import "${repoPath(`models/convnextv${version}.cnx`)}"\nfamily OneBlock(dim) {\n  input(dim)\n  block: ${family}(dim)\n}\nmodel m = OneBlock(${dim})\n`);
  return runPipeline(elaborate(loadProgram(file), 'm', { batch: 2, height, width }), pipelines.fused);
}

describe('runs of pixels in depthwise convolution + LayerNorm kernels', () => {
  it.each([
    [2, 32, 9, 11],
    [1, 40, 6, 13],
  ] as const)('V%i block, %i channels, %ix%i: every run schedule of 32 and 64 threads matches the reference executor', async (version, dim, height, width) => {
    const graph = blockGraph(version, dim, height, width);
    const dwconv = graph.nodes.find((n) => kernelShape(n) === 'pixel')!;
    expect(dwconv.name).toMatch(/dwconv/);
    const weights = withDerivedWeights(graph, randomWeights(graph, 5));
    const env = nodeEnv(graph, weights, randomInput(graph.nodes[0].type.shape, 6));
    const expected = env.values.get(dwconv.id)!;
    let runs = 0;
    let staged = 0;
    for (const target of [webgpuDefaultTarget, emulated]) {
      // Larger workgroups only hold more runs; 32 threads already split runs across workgroups.
      const space = scheduleSpace(dwconv, target).filter((s) => s.strategy === 'pixel' && (s.pixels ?? 1) > 1 && s.workgroupSize <= 64);
      for (const schedule of space) {
        expect(scaledDifference(runNode(graph, dwconv, schedule, target, env), expected), JSON.stringify(schedule)).toBeLessThan(KERNEL_RTOL);
        runs++;
        if (schedule.strategy === 'pixel' && schedule.stage) staged++;
      }
      // Let the test worker report between targets: each interpretation runs synchronously.
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Runs of 2, 4 and 8 pixels, with and without registers, tree and subgroup reductions.
    expect(runs).toBeGreaterThan(40);
    // Halo and filter staged in workgroup memory, runs of 4.
    expect(staged).toBeGreaterThan(8);
  }, 60_000);

  it('render to WGSL that lavapipe runs: staged and unstaged runs, in and out of registers, on the device', async () => {
    const gpu = await acquireGpu({ adapter: 'vulkan' });
    try {
      const target = targetOfDevice(gpu.device, 'lavapipe');
      const graph = blockGraph(2, 32, 9, 11);
      const dwconv = graph.nodes.find((n) => kernelShape(n) === 'pixel')!;
      const weights = withDerivedWeights(graph, randomWeights(graph, 5));
      const input = randomInput(graph.nodes[0].type.shape, 6);
      const expected = executeReference(graph, weights, input).data;
      const chosen = [
        { strategy: 'pixel', workgroupSize: 64, lanes: 8, registers: true, reduction: 'subgroup', pixels: 4, stage: true },
        { strategy: 'pixel', workgroupSize: 64, lanes: 8, registers: false, reduction: 'tree', pixels: 4, stage: true },
        { strategy: 'pixel', workgroupSize: 64, lanes: 8, registers: false, reduction: 'subgroup', pixels: 8 },
      ] as const;
      for (const schedule of chosen) {
        expect(scheduleFits(dwconv, schedule, target), JSON.stringify(schedule)).toBe(true);
        const { output } = await executeWebGpu(() => graph, weights, input, gpu.device, { schedule: (n) => (n.id === dwconv.id ? schedule : undefined) });
        expect(scaledDifference(output.data, expected), JSON.stringify(schedule)).toBeLessThan(KERNEL_RTOL);
      }
    } finally {
      gpu.destroy();
    }
  }, 120_000);

  it('are what depthwise layers get by default, and only they', () => {
    const graph = blockGraph(2, 32, 9, 11);
    for (const target of [webgpuDefaultTarget, emulated]) {
      const pixelNodes = graph.nodes.filter((n) => kernelShape(n) === 'pixel');
      for (const node of pixelNodes) {
        const schedule = defaultSchedule(node, target) as Extract<Schedule, { strategy: 'pixel' }>;
        expect(schedule.pixels, node.name).toBe(4);
        expect(lowerNode(graph, node, target).body.some((s) => s.kind === 'comment' && s.text.includes('run of 4 output pixels'))).toBe(true);
      }
      // The stem (4x4 convolution, stride 4, + LayerNorm) is no depthwise layer: its windows never overlap.
      const stem = runPipeline(elaborate(loadProgram(repoPath('models/convnextv2-atto.cnx')), 'convnextv2-atto', { batch: 1, height: 32, width: 32 }), pipelines.fused).nodes[1];
      expect(kernelShape(stem)).toBe('pixel');
      expect((defaultSchedule(stem, target) as Extract<Schedule, { strategy: 'pixel' }>).pixels).toBeUndefined();
      expect(scheduleSpace(stem, target).every((s) => s.strategy !== 'pixel' || (s.pixels ?? 1) === 1)).toBe(true);
    }
  });
});
