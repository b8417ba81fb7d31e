// split-masked-patch-loss: the parts' own evaluate() on the reference executor agree with
// masked_patch_loss evaluated whole, with and without norm_pix_loss, on FCMAE's golden cases.
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { runPipeline } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../models/fcmae-helpers.js';

describe('split-masked-patch-loss', () => {
  it.each(fcmaeCases.map((c) => [c.name, c] as const))('%s: the split loss equals the whole one on the reference executor', (name, c) => {
    const whole = fcmaeGraph(c, 2, []);
    const split = runPipeline(whole, ['split-masked-patch-loss']);
    const ops = split.nodes.map((n) => n.op);
    expect(ops).not.toContain('masked_patch_loss');
    expect(ops.slice(-4)).toEqual(c.config.norm_pix_loss ? ['patchify', 'channel_norm', 'squared_error', 'masked_mean'] : ['conv2d', 'patchify', 'squared_error', 'masked_mean']);
    const input = fcmaeNpy(name, 'input.npy');
    const mask = fcmaeNpy(name, 'mask.npy');
    const inputs = { input, mask: { shape: [2, 2, 2], data: mask.data } };
    const weights = bindWeights(whole, fcmaeWeights(name), 'weights.safetensors');
    const expected = executeGraph(whole, weights, inputs);
    const got = executeGraph(split, weights, inputs);
    expect(got.pred.data).toEqual(expected.pred.data);
    // The parts round to f32 between them (the normalised target, each squared error); the
    // whole op computes in f64 and rounds once.
    expect(Math.abs(got.loss.data[0] - expected.loss.data[0]) / expected.loss.data[0]).toBeLessThan(1e-5);
    expect(Math.abs(got.loss.data[0] - c.loss) / c.loss).toBeLessThan(1e-4);
  });

  it('leaves a graph without the loss as it is', () => {
    const graph = runPipeline(fcmaeGraph(fcmaeCases[0], 2, []), ['split-masked-patch-loss']);
    expect(runPipeline(graph, ['split-masked-patch-loss'])).toBe(graph);
  });
});
