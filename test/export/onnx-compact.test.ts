// ONNX export of FCMAE with its encoder compacted to the visible patches (compact-sparse-regions):
// the patch-compaction ops' lowerings run by onnxruntime-node against the reference executor,
// for the golden cases and for masks from all patches visible to a single one. Each graph is
// built for its mask's count of visible patches, as the pass requires.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { executeGraph, type WeightMap } from '../../src/backends/reference/executor.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { visibleCount } from '../../src/ir/ops/patch-compaction.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { portableTarget } from '../../src/kernel/target.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { randomWeights } from '../../src/weights/random.js';
import { scaledDifference } from '../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights, type FcmaeCase } from '../models/fcmae-helpers.js';

// As test/export/onnx-fcmae.test.ts: onnxruntime computes in f32 where the reference sums in
// f64; a patch read from the wrong slot or a halo taken from the wrong neighbour moves values
// by their own scale.
const RTOL = 1e-4;

/** The compaction ops whose results each test also exports, by op. */
const tableOps = ['patch_slots', 'visible_patches'] as const;
const movedOps = ['gather_patches', 'patch_halo', 'scatter_patches'] as const;

function compactGraph(c: FcmaeCase, batch: number, size: number, visible: number): Graph {
  const passes = ['eliminate-drop-path', 'compact-sparse-regions', ...pipelines.unfused.slice(1)];
  return runPipeline(fcmaeGraph(c, batch, [], size), passes, { context: { target: portableTarget('f32'), visiblePatches: visible } });
}

/** The graph with every compaction op's value as an extra output, named `<op>_<id>`. */
function withCompactionOutputs(graph: Graph): Graph {
  const ops: readonly string[] = [...tableOps, ...movedOps];
  const extra = graph.nodes.filter((n) => ops.includes(n.op)).map((n) => ({ name: `${n.op}_${n.id}`, id: n.id }));
  return { ...graph, outputs: [...graph.outputs, ...extra] };
}

/** Runs an exported model on an image and a mask [N, rows, cols] (passed as [N, L]). */
async function runOnnx(model: Uint8Array, input: HostTensor, mask: HostTensor, level: 'all' | 'disabled'): Promise<Record<string, HostTensor>> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: level });
  try {
    const [n, rows, cols] = mask.shape;
    const result = await session.run({
      input: new ort.Tensor('float32', input.data, [...input.shape]),
      mask: new ort.Tensor('float32', mask.data, [n, rows * cols]),
    });
    return Object.fromEntries(Object.entries(result).map(([name, t]) => [name, { shape: t.dims.map(Number), data: t.data as Float32Array }]));
  } finally {
    await session.release();
  }
}

/**
 * Exports `graph` with its compaction values as outputs and checks onnxruntime against the
 * reference: the slot tables exactly, moved values and pred within RTOL of their scale, the
 * loss within RTOL (or both NaN, when no patch is masked and the loss averages over none).
 */
async function expectMatchesReference(graph: Graph, weights: WeightMap, input: HostTensor, mask: HostTensor, what: string) {
  const probed = withCompactionOutputs(graph);
  const expected = executeGraph(probed, weights, { input, mask });
  // Fixed: the extra outputs have V samples, not the batch's N.
  const bytes = exportOnnx(probed, weights, { batch: 'fixed' });
  const runs: Record<string, HostTensor>[] = [];
  for (const level of ['all', 'disabled'] as const) {
    const actual = await runOnnx(bytes, input, mask, level);
    runs.push(actual);
    const where = `${what}, optimisation '${level}'`;
    for (const { name } of probed.outputs) {
      expect(actual[name].shape, `${where}: ${name} shape`).toEqual(expected[name].shape);
      if (tableOps.some((op) => name.startsWith(`${op}_`))) expect(actual[name].data, `${where}: ${name}`).toEqual(expected[name].data);
    }
    for (const { name } of probed.outputs.filter((o) => movedOps.some((op) => o.name.startsWith(`${op}_`)) || o.name === 'pred')) {
      expect(scaledDifference(actual[name].data, expected[name].data), `${where}: ${name}`).toBeLessThan(RTOL);
    }
    const [loss, expectedLoss] = [actual.loss.data[0], expected.loss.data[0]];
    if (Number.isNaN(expectedLoss)) expect(loss, `${where}: loss`).toBeNaN();
    else expect(Math.abs(loss - expectedLoss) / Math.abs(expectedLoss), `${where}: loss ${loss} vs ${expectedLoss}`).toBeLessThan(RTOL);
  }
  return { expected, actual: runs[0] };
}

/** A reproducible pseudo-random sequence in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('compacted FCMAE exported to ONNX (onnxruntime-node, CPU)', () => {
  describe.each(fcmaeCases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    it('matches the reference executor and the goldens, pred and loss', async () => {
      const input = fcmaeNpy(name, 'input.npy');
      const given = fcmaeNpy(name, 'mask.npy');
      const [n, size] = [input.shape[0], input.shape[2]];
      const grid = size / c.config.patch_size;
      const mask = { shape: [n, grid, grid], data: given.data };
      const graph = compactGraph(c, n, size, visibleCount(mask));
      expect(graph.nodes.some((node) => node.op === 'patch_halo')).toBe(true);
      const weights = bindWeights(graph, fcmaeWeights(name), 'weights.safetensors');
      const { actual } = await expectMatchesReference(graph, weights, input, mask, 'golden mask');
      expect(scaledDifference(actual.pred.data, fcmaeNpy(name, 'pred.npy').data), 'golden pred').toBeLessThan(RTOL);
      expect(Math.abs(actual.loss.data[0] - c.loss) / c.loss, 'golden loss').toBeLessThan(RTOL);
    });
  });

  describe('random masks over a 3 x 3 grid of patches, two samples (a halo wider than a patch at the last stage)', () => {
    const c = fcmaeCases[0];
    const [batch, size, patches] = [2, 96, 18];
    const weights = randomWeights(compactGraph(c, batch, size, patches), 5);
    const next = random(17);
    const masks: Record<string, number[]> = {
      'every patch visible': new Array<number>(patches).fill(0),
      'every patch visible but one': Array.from({ length: patches }, (_, i) => (i === 13 ? 1 : 0)),
      'a single visible patch': Array.from({ length: patches }, (_, i) => (i === 4 ? 0 : 1)),
      'a single visible patch at a corner of the second sample': Array.from({ length: patches }, (_, i) => (i === 17 ? 0 : 1)),
      'one sample fully masked': Array.from({ length: patches }, (_, i) => (i < 9 ? 1 : Math.round(next()))),
      'random, seed 17': Array.from({ length: patches }, () => (next() < 0.6 ? 1 : 0)),
      'random, seed 17, again': Array.from({ length: patches }, () => (next() < 0.4 ? 1 : 0)),
    };

    it.each(Object.entries(masks))('%s', async (what, values) => {
      const mask = { shape: [batch, 3, 3], data: Float32Array.from(values) };
      const visible = visibleCount(mask);
      expect(visible, 'a mask keeps some patch').toBeGreaterThan(0);
      const input = { shape: [batch, 3, size, size], data: Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37 + visible)) };
      const graph = compactGraph(c, batch, size, visible);
      expect(graph.nodes.find((n) => n.op === 'visible_patches')?.attrs.count).toBe(visible);
      const { expected } = await expectMatchesReference(graph, weights, input, mask, what);
      // The comparison sees halos: some border positions read a visible neighbour (non-zero),
      // and where a neighbour is masked or off the image they are zero.
      const halos = graph.nodes.filter((n) => n.op === 'patch_halo').map((n) => expected[`patch_halo_${n.id}`]);
      expect(halos.some((h) => h.data.some((v) => v === 0))).toBe(true);
      if (visible > 1 && what !== 'one sample fully masked') expect(halos.at(-1)!.data.filter((v) => v !== 0).length).toBeGreaterThan(halos.at(-1)!.shape[1]);
    });
  });

  it('runs a file exported for two samples on a batch of three whose mask keeps the same count', async () => {
    const c = fcmaeCases[0];
    const [size, visible] = [64, 3];
    const two = compactGraph(c, 2, size, visible);
    const three = compactGraph(c, 3, size, visible);
    const weights = randomWeights(two, 9);
    const mask = { shape: [3, 2, 2], data: Float32Array.of(1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1) };
    const input = { shape: [3, 3, size, size], data: Float32Array.from({ length: 3 * 3 * size * size }, (_, i) => Math.cos(i * 0.11)) };
    const actual = await runOnnx(exportOnnx(two, weights), input, mask, 'all');
    const expected = executeGraph(three, weights, { input, mask });
    expect(actual.pred.shape).toEqual([3, ...expected.pred.shape.slice(1)]);
    expect(scaledDifference(actual.pred.data, expected.pred.data)).toBeLessThan(RTOL);
    expect(Math.abs(actual.loss.data[0] - expected.loss.data[0]) / expected.loss.data[0]).toBeLessThan(RTOL);
  });
});
