// FCMAE's forward pass on the reference executor against the PyTorch goldens: pred, loss and
// the sparse encoder's output, from the official checkpoint layout and from the remapped one,
// computed dense and masked (test/passes/compact-sparse-regions.test.ts computes it compacted).
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import type { HostTensor } from '../../src/ir/types.js';
import { pipelines } from '../../src/passes/manager.js';
import { bindWeights } from '../../src/weights/bind.js';
import { scaledDifference } from '../helpers.js';
import { denseMasked, fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from './fcmae-helpers.js';

// The goldens are computed in f64 and rounded once; the executor computes in f32 with f64
// sums in places, through about twenty layers: 1e-4 of the output's scale is the bound,
// and the near misses the manifest lists (GRN per sample) are 1e-2 away.
const RTOL = 1e-4;

describe('FCMAE on the reference executor', () => {
  describe.each(fcmaeCases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const input = fcmaeNpy(name, 'input.npy');
    const mask = fcmaeNpy(name, 'mask.npy');
    const layouts = name.endsWith('normpix') ? ['weights.safetensors', 'weights-dense.safetensors'] : ['weights.safetensors'];
    it.each(layouts.flatMap((file) => [[file, 'unfused'] as const, [file, 'fused'] as const]))('matches pred, loss and the encoder from %s, %s', (file, pipeline) => {
      const graph = fcmaeGraph(c, input.shape[0], denseMasked(pipelines[pipeline]));
      const weights = bindWeights(graph, fcmaeWeights(name, file), file);
      const values = new Map<number, HostTensor>();
      const proj = graph.nodes.find((n) => n.name === 'proj')!;
      const out = executeGraph(graph, weights, { input, mask: { shape: [mask.shape[0], 2, 2], data: mask.data } }, { onValue: (node, value) => node.id === proj.inputs[0] && values.set(node.id, value) });
      expect(Object.keys(out)).toEqual(['pred', 'loss']);
      expect(scaledDifference(out.pred.data, fcmaeNpy(name, 'pred.npy').data)).toBeLessThan(RTOL);
      expect(Math.abs(out.loss.data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
      const encoder = values.get(proj.inputs[0])!;
      expect(scaledDifference(encoder.data, fcmaeNpy(name, 'encoder.npy').data)).toBeLessThan(RTOL);
    });
  });
});
