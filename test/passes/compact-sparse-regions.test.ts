// Sparse-mask skipping as a graph rewrite: FCMAE with its encoder compacted to the visible
// patches computes what the dense-masked graph computes, for the golden masks and for random
// ones (every patch visible, a single one, anything between), on the reference executor.
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { visibleCount } from '../../src/ir/ops/patch-compaction.js';
import { sparseRegionResults, subgraph } from '../../src/ir/subgraph.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { defaultPassContext } from '../../src/passes/context.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { randomWeights } from '../../src/weights/random.js';
import { scaledDifference } from '../helpers.js';
import { denseMasked, fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights, randomMasks } from '../models/fcmae-helpers.js';


/** pred, loss and the encoder's output (proj's input) of a run. */
function run(graph: Graph, weights: ReadonlyMap<string, HostTensor>, input: HostTensor, mask: HostTensor) {
  const proj = graph.nodes.find((n) => n.name === 'proj' && n.op !== 'scatter_patches')!;
  let encoder: HostTensor | undefined;
  const out = executeGraph(graph, weights, { input, mask }, { onValue: (node, value) => node.id === proj.inputs[0] && (encoder = value) });
  return { pred: out.pred, loss: out.loss, encoder: encoder! };
}

// Both sides compute the same sums in a different order of positions (GRN's norm over the
// batch's visible sites, gathered or strided): f32 rounding, far below 1e-4 of the scale.
const RTOL = 1e-5;

describe('compact-sparse-regions', () => {
  it('computes the encoder on compact patches: no apply_mask is left, every region op sees V samples', () => {
    const c = fcmaeCases[0];
    const graph = runPipeline(fcmaeGraph(c, 2, []), pipelines.unfused, { context: { ...defaultPassContext, visiblePatches: 3 } });
    expect(graph.nodes.filter((n) => n.op === 'apply_mask')).toEqual([]);
    const region = graph.nodes.filter((n) => n.type.compact !== undefined);
    expect(region.length).toBeGreaterThan(10);
    expect(region.every((n) => n.type.shape[0] === 3)).toBe(true);
    expect(graph.nodes.filter((n) => n.op === 'patch_halo').map((n) => n.attrs.halo)).toEqual([3, 3, 3, 3, 3]);
    expect(graph.nodes.filter((n) => n.op === 'scatter_patches')).toHaveLength(1);
  });

  describe.each(fcmaeCases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const input = fcmaeNpy(name, 'input.npy');
    const given = fcmaeNpy(name, 'mask.npy');
    const mask = { shape: [2, 2, 2], data: given.data };
    it.each(['unfused', 'fused'] as const)('matches the goldens, %s', (pipeline) => {
      const graph = fcmaeGraph(c, 2, pipelines[pipeline]);
      expect(graph.nodes.some((n) => n.op === 'visible_patches' && n.attrs.count === visibleCount(given))).toBe(true);
      const out = run(graph, bindWeights(graph, fcmaeWeights(name), name), input, mask);
      expect(scaledDifference(out.pred.data, fcmaeNpy(name, 'pred.npy').data)).toBeLessThan(1e-4);
      expect(Math.abs(out.loss.data[0] - c.loss) / c.loss).toBeLessThan(1e-4);
      expect(scaledDifference(out.encoder.data, fcmaeNpy(name, 'encoder.npy').data)).toBeLessThan(1e-4);
    });
  });

  it('leaves a region dense where an op reads the mask itself or is computed per sample', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'convc-compact-')), 'm.cnx');
    const source = (body: string) => `family F() {\n  let mask = patch_mask(8, ratio=0.5)\n  input(3)\n  c: conv2d(3, 4, kernel=1)\n  sparse(mask) {\n    ${body}\n  }\n}\nmodel m = F()\n`;
    for (const [body, compacted] of [['act: gelu()', true], ['token: mask_fill(mask, 4)', false], ['g: grn(4)', false], ['g: grn(4, over_batch=true)', true]] as const) {
      writeFileSync(file, source(body));
      const program = loadProgram(file);
      const graph = runPipeline(elaborate(program, 'm', { batch: 2, height: 16, width: 16 }), pipelines.unfused);
      expect(graph.nodes.some((n) => n.op === 'gather_patches'), body).toBe(compacted);
      expect(graph.nodes.some((n) => n.op === 'apply_mask'), body).toBe(!compacted);
    }
  });

  it("cuts out the encoder (the sparse region's result), which compacted and dense-masked matches the golden encoder", () => {
    const c = fcmaeCases[0];
    const whole = fcmaeGraph(c, 2, []);
    const [result] = sparseRegionResults(whole);
    expect(whole.nodes.find((n) => n.name === 'proj')!.inputs).toContain(result);
    const encoder = subgraph(whole, [{ name: 'encoder', id: result }]);
    expect(encoder.nodes.some((n) => n.name.startsWith('decoder') || n.name === 'proj')).toBe(false);
    expect([...encoder.params.keys()].every((k) => k.startsWith('encoder.'))).toBe(true);
    const input = fcmaeNpy(c.name, 'input.npy');
    const mask = { shape: [2, 2, 2], data: fcmaeNpy(c.name, 'mask.npy').data };
    for (const passes of [pipelines.fused, denseMasked(pipelines.fused)]) {
      const graph = runPipeline(encoder, passes, { context: { ...defaultPassContext, visiblePatches: visibleCount(mask) } });
      const out = executeGraph(graph, bindWeights(graph, new Map([...fcmaeWeights(c.name)].filter(([k]) => k.startsWith('encoder.'))), c.name), { input, mask });
      expect(scaledDifference(out.encoder.data, fcmaeNpy(c.name, 'encoder.npy').data)).toBeLessThan(1e-4);
    }
  });

  it('equals the dense-masked graph for random masks, all visible and a single visible patch among them', () => {
    const c = fcmaeCases[0];
    const dense = fcmaeGraph(c, 2, denseMasked(pipelines.unfused), 96);
    const weights = randomWeights(dense, 5);
    const patches = 2 * 9;
    const masks = randomMasks(patches);
    fc.assert(
      fc.property(masks, fc.integer({ min: 0, max: 1000 }), (values, seed) => {
        const mask = { shape: [2, 3, 3], data: Float32Array.from(values) };
        const input = { shape: [2, 3, 96, 96], data: Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => Math.sin(i * 0.37 + seed)) };
        const visible = visibleCount(mask);
        const sparse = runPipeline(fcmaeGraph(c, 2, [], 96), pipelines.unfused, { context: { ...defaultPassContext, visiblePatches: visible } });
        const a = run(dense, weights, input, mask);
        const b = run(sparse, weights, input, mask);
        expect(scaledDifference(b.pred.data, a.pred.data)).toBeLessThan(RTOL);
        expect(scaledDifference(b.encoder.data, a.encoder.data)).toBeLessThan(RTOL);
        if (visible < patches) expect(Math.abs(b.loss.data[0] - a.loss.data[0]) / a.loss.data[0]).toBeLessThan(RTOL);
      }),
      { numRuns: 12, seed: 12 },
    );
  });
});
