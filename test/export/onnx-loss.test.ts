// ONNX export of FCMAE's loss in both forms: split into patchify, channel_norm, squared_error
// and masked_mean (what the unfused pipeline, and so `convc export`, leaves), and
// masked_patch_loss whole (without split-masked-patch-loss). Each part's value is checked
// against the reference executor on its own, on FCMAE's golden cases and on a graph of the
// parts in shapes FCMAE does not give them.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { pipelines } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { scaledDifference } from '../helpers.js';
import { denseMasked, fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../models/fcmae-helpers.js';

// As test/export/onnx-fcmae.test.ts: onnxruntime sums in f32 where the reference sums in f64.
const RTOL = 1e-4;

const lossParts = ['patchify', 'channel_norm', 'squared_error', 'masked_mean'] as const;

/** Runs an exported model on named inputs, the mask [N, rows, cols] passed as [N, L]. */
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

/** The graph with the value of every node of `ops` as an extra output, named `<op>_<id>`. */
function withOutputsOf(graph: Graph, ops: readonly string[]): Graph {
  const extra = graph.nodes.filter((n) => ops.includes(n.op)).map((n) => ({ name: `${n.op}_${n.id}`, id: n.id }));
  return { ...graph, outputs: [...graph.outputs, ...extra] };
}

/**
 * Exports `graph` and checks every output onnxruntime gives against the reference: patchify's
 * exactly (it only moves values), the rest within RTOL of their scale; NaN where the
 * reference's is (a mean over no masked patch).
 */
async function expectMatchesReference(graph: Graph, weights: ReadonlyMap<string, HostTensor>, input: HostTensor, mask: HostTensor): Promise<Record<string, HostTensor>> {
  const expected = executeGraph(graph, weights, { input, mask });
  const bytes = exportOnnx(graph, weights);
  let first: Record<string, HostTensor> | undefined;
  for (const level of ['all', 'disabled'] as const) {
    const actual = await runOnnx(bytes, input, mask, level);
    first ??= actual;
    for (const { name } of graph.outputs) {
      const [got, want] = [actual[name], expected[name]];
      const where = `optimisation '${level}': ${name}`;
      expect(got.shape, `${where} shape`).toEqual(want.shape);
      if (name.startsWith('patchify_')) expect(got.data, where).toEqual(want.data);
      else if (want.data.some(Number.isNaN)) expect(Array.from(got.data, Number.isNaN), where).toEqual(Array.from(want.data, Number.isNaN));
      else expect(scaledDifference(got.data, want.data), where).toBeLessThan(RTOL);
    }
  }
  return first!;
}

function goldenInputs(name: string): { input: HostTensor; mask: HostTensor } {
  const input = fcmaeNpy(name, 'input.npy');
  const given = fcmaeNpy(name, 'mask.npy');
  const grid = Math.sqrt(given.shape[1]);
  return { input, mask: { shape: [given.shape[0], grid, grid], data: given.data } };
}

describe("FCMAE's loss exported to ONNX (onnxruntime-node, CPU)", () => {
  describe.each(fcmaeCases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    it('split into its parts, as the unfused pipeline leaves it: each part as the reference computes it, the loss as the golden', async () => {
      const graph = fcmaeGraph(c, 2);
      const ops = graph.nodes.map((n) => n.op);
      expect(ops).not.toContain('masked_patch_loss');
      expect(ops.filter((op) => (lossParts as readonly string[]).includes(op))).toEqual(lossParts.filter((op) => op !== 'channel_norm' || c.config.norm_pix_loss));
      const { input, mask } = goldenInputs(name);
      const weights = bindWeights(graph, fcmaeWeights(name), 'weights.safetensors');
      const actual = await expectMatchesReference(withOutputsOf(graph, lossParts), weights, input, mask);
      expect(Math.abs(actual.loss.data[0] - c.loss) / c.loss, 'golden loss').toBeLessThan(RTOL);
    });

    it('whole, as masked_patch_loss (without split-masked-patch-loss): the loss as the reference and the golden', async () => {
      const graph = fcmaeGraph(c, 2, denseMasked(pipelines.unfused).filter((p) => p !== 'split-masked-patch-loss'));
      expect(graph.nodes.map((n) => n.op)).toContain('masked_patch_loss');
      const { input, mask } = goldenInputs(name);
      const weights = bindWeights(graph, fcmaeWeights(name), 'weights.safetensors');
      const actual = await expectMatchesReference(graph, weights, input, mask);
      expect(Math.abs(actual.loss.data[0] - c.loss) / c.loss, 'golden loss').toBeLessThan(RTOL);
    });
  });

  describe('the parts in shapes FCMAE does not give them', () => {
    // 5 channels, a 2 x 3 grid of 4 x 4 patches: patchify's channel order is told apart from
    // a channel-major one, and masked_mean reads the mask at 4x its resolution (the image) as
    // well as at it. channel_norm both biased (eps 1e-3) and unbiased (the default eps).
    function partsGraph(): Graph {
      const b = new GraphBuilder('loss-parts');
      const mask = b.add({ op: 'patch_mask', inputs: [], attrs: { patch: 4, ratio: 0.5, shape: [2, 2, 3] }, name: '' });
      const x = b.add({ op: 'input', inputs: [], attrs: { channels: 5, shape: [2, 5, 8, 12] }, name: '' });
      const patched = b.add({ op: 'patchify', inputs: [x], attrs: { patch: 4 }, name: 'patched' });
      const biased = b.add({ op: 'channel_norm', inputs: [patched], attrs: { eps: 1e-3, unbiased: false }, name: 'biased' });
      const unbiased = b.add({ op: 'channel_norm', inputs: [patched], attrs: { eps: 1e-6, unbiased: true }, name: 'unbiased' });
      const error = b.add({ op: 'squared_error', inputs: [biased, unbiased], attrs: {}, name: 'error' });
      const loss = b.add({ op: 'masked_mean', inputs: [error, mask], attrs: {}, name: 'loss' });
      const imageMean = b.add({ op: 'masked_mean', inputs: [x, mask], attrs: {}, name: 'image_mean' });
      return withOutputsOf(b.build([{ name: 'loss', id: loss }, { name: 'image_mean', id: imageMean }]), ['patchify', 'channel_norm', 'squared_error']);
    }
    const input = { shape: [2, 5, 8, 12], data: Float32Array.from({ length: 2 * 5 * 8 * 12 }, (_, i) => 3 * Math.sin(i * 0.37) + 1) };
    const masks: Record<string, number[]> = {
      'some patches masked': [1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1],
      'one sample fully masked, the other not at all': [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
      'no patch masked (a mean over none: NaN)': new Array<number>(12).fill(0),
    };

    it.each(Object.entries(masks))('%s', async (_what, values) => {
      const graph = partsGraph();
      const mask = { shape: [2, 2, 3], data: Float32Array.from(values) };
      const actual = await expectMatchesReference(graph, new Map(), input, mask);
      // The image's patch (c, y, x) = (1, 5, 6) is channel (py*4 + px)*5 + c of position (1, 1).
      const patched = actual[graph.outputs.find((o) => o.name.startsWith('patchify_'))!.name];
      expect(patched.data[((1 * 4 + 2) * 5 + 1) * 6 + 1 * 3 + 1]).toBe(input.data[(1 * 8 + 5) * 12 + 6]);
      if (values.includes(1)) expect(actual.loss.data[0]).toBeGreaterThan(0);
    });
  });
});
