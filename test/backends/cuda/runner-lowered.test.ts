// The generated CUDA runner of models lowered by lowerToCuda, on the emulated driver (kernels.cu
// compiled by g++ for the CPU): a classifier in f32 and f16 storage against the reference
// executor, and FCMAE (an image and a patch mask in, pred and loss out by name, the encoder
// compacted to the visible patches) against its PyTorch goldens.
import { describe, expect, it } from 'vitest';
import { buildEmulatedKernels, emulatedDriverPath } from '../../../src/backends/cuda/emulation/build.js';
import { loadCudaRunner } from '../../../src/backends/cuda/load-runner.js';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { generateCudaRunnerFiles } from '../../../src/backends/cuda/runner.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import type { Graph } from '../../../src/ir/types.js';
import type { StorageType } from '../../../src/kernel/ir.js';
import { packWeights } from '../../../src/kernel/model-program.js';
import { pipelines } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import type { WeightMap } from '../../../src/backends/reference/executor.js';
import { scaledDifference, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../../models/fcmae-helpers.js';

// As for the WGSL runner: f32 kernels within 1e-4 of the reference's scale; f16 storage rounds
// every activation to 11 bits through the network.
const tolerance: Readonly<Record<StorageType, number>> = { f32: 1e-4, f16: 5e-3 };

/** `graph` lowered for CUDA in `precision`, its runner's model created on the emulated driver. */
async function emulatedModel<Output>(graph: Graph, weights: WeightMap, precision: StorageType) {
  const program = lowerToCuda(graph, { precision });
  const module = buildEmulatedKernels(program.module, program.shaders.map((s) => s.name));
  const model = await loadCudaRunner<Output>(generateCudaRunnerFiles(program).js, packWeights(graph, program, weights), { module, library: emulatedDriverPath() });
  return { program, model };
}

describe('the CUDA runner of a lowered classifier', () => {
  const graph = zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 32 }, pipelines.fused);
  const weights = randomWeights(graph);
  const input = randomInput([2, 3, 32, 32]);
  const expected = executeReference(graph, weights, input);

  it.each(['f32', 'f16'] as const)('computes what the reference executor does, storing %s', async (precision) => {
    const { program, model } = await emulatedModel<Float32Array>(graph, weights, precision);
    try {
      expect(program.dispatches.length).toBeGreaterThan(10);
      const logits = await model.run(input.data);
      expect(logits).toHaveLength(2 * 1000);
      expect(scaledDifference(logits, expected.data)).toBeLessThan(tolerance[precision]);
    } finally {
      model.destroy();
    }
  }, 300_000);
});

describe('the CUDA runner of a lowered FCMAE', () => {
  const c = fcmaeCases[0];
  const graph = fcmaeGraph(c, 2, pipelines.fused);
  const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
  const input = fcmaeNpy(c.name, 'input.npy');
  const mask = fcmaeNpy(c.name, 'mask.npy');
  const pred = fcmaeNpy(c.name, 'pred.npy');

  it('takes the image and the mask, resolves to pred and loss by name as the goldens have them, and refuses a mask of another count', async () => {
    const { program, model } = await emulatedModel<{ readonly pred: Float32Array; readonly loss: Float32Array }>(graph, weights, 'f32');
    try {
      expect(program.inputs.map((i) => i.name)).toEqual(['input', 'mask']);
      const keeps = program.inputs[1].keeps;
      expect(keeps).toBe(mask.data.filter((m) => m === 0).length);
      const out = await model.run(input.data, mask.data);
      expect(Object.keys(out)).toEqual(['pred', 'loss']);
      expect(scaledDifference(out.pred, pred.data)).toBeLessThan(tolerance.f32);
      expect(Math.abs(out.loss[0] - c.loss) / c.loss).toBeLessThan(tolerance.f32);
      const other = mask.data.map((m, i) => (i === mask.data.indexOf(1) ? 0 : m));
      await expect(model.run(input.data, other)).rejects.toThrow(`the mask keeps ${keeps! + 1} patches, but this runner computes masks keeping ${keeps} in all`);
    } finally {
      model.destroy();
    }
  }, 300_000);
});
