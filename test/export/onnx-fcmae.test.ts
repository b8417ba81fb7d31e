// ONNX export of FCMAE (two inputs, two outputs, the mask ops and the loss): the exported
// golden cases run by onnxruntime-node against the reference executor and the PyTorch goldens.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { executeGraph, type WeightMap } from '../../src/backends/reference/executor.js';
import { exportCommand } from '../../src/cli/commands/export.js';
import { exportOnnx, type OnnxExportOptions } from '../../src/export/onnx.js';
import { graphInput } from '../../src/ir/graph-io.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { bindWeights } from '../../src/weights/bind.js';
import { captureIo, repoPath, scaledDifference } from '../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights, type FcmaeCase } from '../models/fcmae-helpers.js';

// As test/models/fcmae-reference.test.ts: 1e-4 of the prediction's scale, 1e-4 of the loss.
// onnxruntime computes in f32 where the reference sums in f64; observed differences are ~2e-7
// of pred's scale and under 5e-7 of the loss, while a mask read at the wrong patches moves pred
// by half its scale and the loss by about 1%.
const RTOL = 1e-4;

interface FcmaeResult {
  readonly pred: HostTensor;
  readonly loss: number;
}

/** Runs an exported model on an image and a mask [N, L], as a caller holds them. */
async function runOnnx(model: Uint8Array, input: HostTensor, mask: HostTensor, options: ort.InferenceSession.SessionOptions = {}): Promise<FcmaeResult> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], ...options });
  try {
    const result = await session.run({ input: new ort.Tensor('float32', input.data, [...input.shape]), mask: new ort.Tensor('float32', mask.data, [...mask.shape]) });
    expect(result.loss.dims).toEqual([1]);
    return { pred: { shape: result.pred.dims.map(Number), data: result.pred.data as Float32Array }, loss: (result.loss.data as Float32Array)[0] };
  } finally {
    await session.release();
  }
}

function runReference(graph: Graph, weights: WeightMap, input: HostTensor, mask: HostTensor): FcmaeResult {
  const out = executeGraph(graph, weights, { input, mask: { shape: graphInput(graph, 'mask').type.shape, data: mask.data } });
  return { pred: out.pred, loss: out.loss.data[0] };
}

function expectClose(actual: FcmaeResult, expected: { readonly pred: HostTensor | Float32Array; readonly loss: number }, what: string): void {
  const pred = expected.pred instanceof Float32Array ? expected.pred : expected.pred.data;
  expect(scaledDifference(actual.pred.data, pred), `${what}: pred`).toBeLessThan(RTOL);
  expect(Math.abs(actual.loss - expected.loss) / Math.abs(expected.loss), `${what}: loss ${actual.loss} vs ${expected.loss}`).toBeLessThan(RTOL);
}

function loadCase(c: FcmaeCase, batch?: number, options?: OnnxExportOptions) {
  const input = fcmaeNpy(c.name, 'input.npy');
  const mask = fcmaeNpy(c.name, 'mask.npy');
  const graph = fcmaeGraph(c, batch ?? input.shape[0]);
  const weights = bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors');
  return { input, mask, graph, weights, bytes: exportOnnx(graph, weights, options) };
}

/** The first `n` samples of a tensor. */
function firstSamples(t: HostTensor, n: number): HostTensor {
  const per = t.data.length / t.shape[0];
  return { shape: [n, ...t.shape.slice(1)], data: t.data.slice(0, n * per) };
}

describe('FCMAE exported to ONNX (onnxruntime-node, CPU)', () => {
  describe.each(fcmaeCases.map((c) => [c.name, c] as const))('%s', (name, c) => {
    it('matches the reference executor and the goldens, pred and loss', async () => {
      const { input, mask, graph, weights, bytes } = loadCase(c);
      const reference = runReference(graph, weights, input, mask);
      for (const level of ['all', 'disabled'] as const) {
        const actual = await runOnnx(bytes, input, mask, { graphOptimizationLevel: level });
        expect(actual.pred.shape).toEqual(reference.pred.shape);
        expectClose(actual, reference, `reference, optimisation '${level}'`);
        expectClose(actual, { pred: fcmaeNpy(name, 'pred.npy').data, loss: c.loss }, `golden, optimisation '${level}'`);
      }
    });

    it('runs one sample through the file exported for two (dynamic batch)', async () => {
      const { input, mask, bytes } = loadCase(c);
      const single = loadCase(c, 1);
      const [oneInput, oneMask] = [firstSamples(input, 1), firstSamples(mask, 1)];
      const actual = await runOnnx(bytes, oneInput, oneMask);
      expect(actual.pred.shape[0]).toBe(1);
      expectClose(actual, runReference(single.graph, single.weights, oneInput, oneMask), 'batch of one');
    });
  });

  it('declares the inputs and outputs by name, the mask as [N, L], the loss unbatched', async () => {
    const c = fcmaeCases[0];
    const { bytes } = loadCase(c);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['mask', 'input']);
    expect(session.outputNames).toEqual(['pred', 'loss']);
    expect(session.inputMetadata).toMatchObject([
      { name: 'mask', type: 'float32', shape: ['batch', 4] },
      { name: 'input', type: 'float32', shape: ['batch', 3, 64, 64] },
    ]);
    expect(session.outputMetadata).toMatchObject([
      { name: 'pred', type: 'float32', shape: ['batch', 3072, 2, 2] },
      { name: 'loss', type: 'float32', shape: [1] },
    ]);
    await session.release();
    const fixed = await ort.InferenceSession.create(loadCase(c, undefined, { batch: 'fixed' }).bytes);
    expect(fixed.inputMetadata[0]).toMatchObject({ shape: [2, 4] });
    expect(fixed.outputMetadata[1]).toMatchObject({ shape: [1] });
    await fixed.release();
  });

  it('would notice a mask read in the wrong patch order', async () => {
    // Guards the comparison: each sample's 2x2 mask transposed moves masked patches around.
    const c = fcmaeCases[0];
    const { input, mask, graph, weights, bytes } = loadCase(c);
    const transposed = Float32Array.from(mask.data, (_, i) => mask.data[i - (i % 4) + [0, 2, 1, 3][i % 4]]);
    expect(transposed).not.toEqual(mask.data);
    const actual = await runOnnx(bytes, input, { shape: mask.shape, data: transposed });
    const expected = runReference(graph, weights, input, mask);
    expect(Math.abs(actual.loss - expected.loss) / expected.loss).toBeGreaterThan(10 * RTOL);
    expect(scaledDifference(actual.pred.data, expected.pred.data)).toBeGreaterThan(100 * RTOL);
  });
});

describe('convc export of FCMAE', () => {
  it('lists the inputs and outputs by name, and writes a file onnxruntime runs', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'convc-export-')), 'fcmae-atto.onnx');
    const io = captureIo();
    const args = [repoPath('models/fcmae-convnextv2-atto.cnx'), '--format', 'onnx', '--random-weights', '--size', '64', '-o', path];
    expect(await exportCommand(args, io)).toBe(0);
    expect(io.err()).toBe('');
    expect(io.out()).toMatch(
      /^exported fcmae-convnextv2-atto to .*fcmae-atto\.onnx: ONNX opset 17, inputs mask \[batch, 4\], input \[batch, 3, 64, 64\] -> outputs pred \[batch, 3072, 2, 2\], loss \[1\], \d+\.\d\dM params, \d+\.\d MiB\n$/,
    );
    const session = await ort.InferenceSession.create(path);
    try {
      const image = new ort.Tensor('float32', Float32Array.from({ length: 3 * 3 * 64 * 64 }, (_, i) => Math.sin(i)), [3, 3, 64, 64]);
      const mask = new ort.Tensor('float32', Float32Array.of(1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0), [3, 4]);
      const result = await session.run({ input: image, mask });
      expect(result.pred.dims).toEqual([3, 3072, 2, 2]);
      expect(Number.isFinite((result.loss.data as Float32Array)[0])).toBe(true);
    } finally {
      await session.release();
    }
  });
});
