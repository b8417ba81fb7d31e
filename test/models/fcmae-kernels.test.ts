// FCMAE's forward pass (pred and loss) on the kernel path against the PyTorch goldens: the
// graph's kernels on the CPU interpreter (the portable target and a lavapipe-like one) and on
// WebGPU (lavapipe), fused and unfused, the encoder compacted and dense-masked, f32 and f16
// storage. The model takes two inputs (the
// image and the patch mask, which kernels read directly) and returns two outputs.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { visibleCount } from '../../src/ir/ops/patch-compaction.js';
import { defaultPassContext } from '../../src/passes/context.js';
import { runPipeline } from '../../src/passes/manager.js';
import { randomWeights } from '../../src/weights/random.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpuModel } from '../../src/backends/wgsl/execute.js';
import type { StorageType } from '../../src/kernel/ir.js';
import { interpretModel } from '../../src/kernel/execute.js';
import { lowerNode } from '../../src/kernel/lower/index.js';
import { portableTarget, recomputeLimits, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import type { HostTensor } from '../../src/ir/types.js';
import { pipelines } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { repoPath, scaledDifference } from '../helpers.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { denseMasked, type FcmaeCase, fcmaeCases, fcmaeGraph, fcmaeModelLine, fcmaeNpy, fcmaeWeights, randomMasks } from './fcmae-helpers.js';

/** The encoder on its visible patches (compact-sparse-regions, the default), or dense and masked. */
const passes = {
  fused: pipelines.fused,
  unfused: pipelines.unfused,
  'fused, dense-masked': denseMasked(pipelines.fused),
  'unfused, dense-masked': denseMasked(pipelines.unfused),
} as const;
const pipelineNames = Object.keys(passes) as (keyof typeof passes)[];

// f32 kernels against goldens computed in f64: the bound, 1e-4 of pred's scale and of
// the loss; observed 2.6e-7 and under 1e-7 (the loss sums about 25 000 terms in f32 over 64
// lanes). f16 storage rounds every activation to 11 bits (4.9e-4 relative) through some twenty
// layers, LayerNorms over 4 to 24 channels amplifying it: observed 6e-4 to 1.1e-3 of pred's
// scale and 1.0e-4 to 1.6e-4 of the loss on the interpreter, so 5e-3 for both.
const tolerance: Readonly<Record<StorageType, number>> = { f32: 1e-4, f16: 5e-3 };

const lavapipeLike: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };

function caseData(c: FcmaeCase) {
  const input = fcmaeNpy(c.name, 'input.npy');
  const mask = fcmaeNpy(c.name, 'mask.npy');
  return { input, mask, pred: fcmaeNpy(c.name, 'pred.npy') };
}

function expectGolden(c: FcmaeCase, out: Readonly<Record<string, HostTensor>>, expected: HostTensor, storage: StorageType): void {
  expect(Object.keys(out)).toEqual(['pred', 'loss']);
  expect(out.pred.shape).toEqual(expected.shape);
  expect(scaledDifference(out.pred.data, expected.data)).toBeLessThan(tolerance[storage]);
  expect(out.loss.shape).toEqual([1]);
  expect(Math.abs(out.loss.data[0] - c.loss) / c.loss).toBeLessThan(tolerance[storage]);
}

describe('FCMAE on the kernel interpreter', () => {
  const runs = fcmaeCases.flatMap((c) =>
    pipelineNames.flatMap((pipeline) =>
      [portableTarget('f32'), lavapipeLike].map((target) => [c.name, pipeline, target.name, c, target] as const),
    ),
  );
  it.each(runs)('%s, %s, on %s: pred and loss match the goldens', (_name, pipeline, _targetName, c, target) => {
    const { input, mask, pred } = caseData(c);
    const graph = fcmaeGraph(c, 2, passes[pipeline]);
    const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
    expectGolden(c, interpretModel(graph, weights, { input, mask }, { target }), pred, 'f32');
  });

  it('stores f16 with the caller\'s inputs and outputs f32', () => {
    const c = fcmaeCases[1];
    const { input, mask, pred } = caseData(c);
    const graph = fcmaeGraph(c, 2, pipelines.fused);
    const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
    expectGolden(c, interpretModel(graph, weights, { input, mask }, { storage: 'f16' }), pred, 'f16');
  });
});

describe('an elementwise op on the scalar loss', () => {
  // Found by the fuzzer (seed 667732733): `gelu()` after the loss lowered a kernel over shape [],
  // whose channel count was undefined.
  it('lowers and computes what the reference does', () => {
    const c = fcmaeCases[0];
    const dir = mkdtempSync(join(tmpdir(), 'convc-scalar-'));
    try {
      const library = readFileSync(repoPath('models/fcmae.cnx'), 'utf8');
      expect(library).toContain('  output loss\n');
      writeFileSync(join(dir, 'fcmae.cnx'), library.replace('  output loss\n', '  gelu()\n  output loss\n'));
      const file = join(dir, 'model.cnx');
      writeFileSync(file, `import "fcmae.cnx"\n${fcmaeModelLine(c)}\n`);
      const program = loadProgram(file);
      const size = c.config.img_size;
      const graph = runPipeline(elaborate(program, selectModel(program, undefined, file), { batch: 2, height: size, width: size }), denseMasked(pipelines.fused));
      expect(graph.nodes[graph.outputs.find((o) => o.name === 'loss')!.id].op).toBe('gelu');
      const { input, mask: flat } = caseData(c);
      // The golden mask is [N, L], as callers hold it; the graph reads it as [N, H/p, W/p].
      const side = Math.sqrt(flat.shape[1]);
      const mask = { shape: [flat.shape[0], side, side], data: flat.data };
      const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
      const expected = executeGraph(graph, weights, { input, mask });
      const out = interpretModel(graph, weights, { input, mask }, { target: portableTarget('f32') });
      // GELU of the golden loss is not the loss: the op ran.
      expect(Math.abs(expected.loss.data[0] - c.loss)).toBeGreaterThan(1e-3 * c.loss);
      expect(Math.abs(out.loss.data[0] - expected.loss.data[0]) / expected.loss.data[0]).toBeLessThan(tolerance.f32);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('patch tables under f16 storage', () => {
  it('are lowered while f16 holds every patch number exactly (2048), refused past that', () => {
    const c = fcmaeCases[0];
    for (const [batch, fits] of [[512, true], [513, false]] as const) {
      const graph = fcmaeGraph(c, batch, pipelines.unfused);
      for (const node of graph.nodes.filter((n) => n.op === 'patch_slots' || n.op === 'visible_patches')) {
        const lower = () => lowerNode(graph, node, portableTarget('f16'), undefined, 'f16');
        if (fits) expect(lower).not.toThrow();
        else expect(lower).toThrow(/numbers up to 2052 patches, but f16 storage holds integers exactly only up to 2048/);
      }
    }
  });
});

describe('FCMAE on WebGPU (lavapipe)', () => {
  let gpu: AcquiredGpu;
  beforeAll(async () => {
    gpu = await acquireGpu({ adapter: 'vulkan' });
  }, 120_000);
  afterAll(() => gpu?.destroy());

  const runs = fcmaeCases.flatMap((c) => pipelineNames.map((pipeline) => [c.name, pipeline, c] as const));
  it.each(runs)('%s, %s: pred and loss match the goldens', async (_name, pipeline, c) => {
    const { input, mask, pred } = caseData(c);
    const graph = fcmaeGraph(c, 2, passes[pipeline]);
    const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
    const run = await executeWebGpuModel(() => graph, weights, { input, mask }, gpu.device);
    expectGolden(c, run.outputs, pred, 'f32');
  }, 120_000);

  it('computes on visible patches what the reference computes dense-masked, for random masks (all visible, one visible, any)', async () => {
    const c = fcmaeCases[0];
    const patches = 2 * 9;
    const masks = randomMasks(patches);
    const dense = fcmaeGraph(c, 2, denseMasked(pipelines.unfused), 96);
    const weights = randomWeights(dense, 3);
    const input = { shape: [2, 3, 96, 96], data: Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => Math.sin(i * 0.021)) };
    await fc.assert(
      fc.asyncProperty(masks, async (bits) => {
        const mask = { shape: [2, 3, 3], data: Float32Array.from(bits) };
        const expected = executeGraph(dense, weights, { input, mask });
        const sparse = runPipeline(fcmaeGraph(c, 2, [], 96), pipelines.fused, { context: { ...defaultPassContext, visiblePatches: visibleCount(mask) } });
        const run = await executeWebGpuModel(() => sparse, weights, { input, mask }, gpu.device);
        expect(scaledDifference(run.outputs.pred.data, expected.pred.data)).toBeLessThan(tolerance.f32);
        // With every patch visible the loss is 0/0 on both sides.
        if (bits.includes(1)) expect(Math.abs(run.outputs.loss.data[0] - expected.loss.data[0]) / expected.loss.data[0]).toBeLessThan(tolerance.f32);
        else expect(Number.isNaN(run.outputs.loss.data[0])).toBe(true);
      }),
      { numRuns: 5, seed: 4 },
    );
  }, 300_000);

  it('refuses, in the runner, a mask keeping another number of patches than the graph was compacted for', async () => {
    const c = fcmaeCases[0];
    const { input, mask } = caseData(c);
    const graph = fcmaeGraph(c, 2, passes.fused);
    const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
    const other = { shape: mask.shape, data: mask.data.map((m, i) => (i === 0 ? 0 : m)) };
    const kept = other.data.filter((m) => m === 0).length;
    await expect(executeWebGpuModel(() => graph, weights, { input, mask: other }, gpu.device)).rejects.toThrow(`the mask keeps ${kept} patches, but this runner computes masks keeping ${kept - 1} in all`);
  }, 120_000);

  it('stores f16 where the adapter has shader-f16', async () => {
    if (!gpu.device.features.has('shader-f16')) return;
    const c = fcmaeCases[1];
    const { input, mask, pred } = caseData(c);
    const graph = fcmaeGraph(c, 2, pipelines.fused);
    const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
    const run = await executeWebGpuModel(() => graph, weights, { input, mask }, gpu.device, { precision: 'f16' });
    expectGolden(c, run.outputs, pred, 'f16');
  }, 120_000);
});
