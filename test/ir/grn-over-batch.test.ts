// GRN whose norm spans the whole batch (over_batch), as MinkowskiEngine's GRN does on FCMAE's
// sparse encoder: its meaning on the reference executor, and the same kernels, fused and
// unfused, on the interpreter, on lavapipe and in the ONNX export.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../src/backends/wgsl/execute.js';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { exportOnnx } from '../../src/export/onnx.js';
import { grn } from '../../src/ir/ops/grn.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import { recomputeLimits, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { scaledDifference } from '../helpers.js';

const emulated: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };
// The project's f32 kernel tolerance against the f64-accumulating reference (test/kernel/lower.test.ts).
const KERNEL_RTOL = 2e-5;

const source = `
family Blocks(dims, in_chans = 3) {
  input(in_chans)
  stem: conv2d(in_chans, dims, kernel=4, stride=4)
  for j in 0..2 {
    blocks.{j} {
      residual {
        dwconv: conv2d(dims, dims, kernel=7, padding=3, groups=dims)
        norm: layernorm(dims, eps=1e-6)
        pwconv1: linear(dims, 4 * dims)
        act: gelu()
        grn: grn(4 * dims, over_batch=true)
        pwconv2: linear(4 * dims, dims)
      }
    }
  }
}
model blocks = Blocks(dims=16)
`;
const scratch = mkdtempSync(join(tmpdir(), 'convc-grn-batch-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function blocks(passes: readonly string[], target: TargetDescription = webgpuDefaultTarget): Graph {
  const file = join(scratch, 'blocks.cnx');
  writeFileSync(file, source);
  const program = loadProgram(file);
  return runPipeline(elaborate(program, selectModel(program, undefined, file), { batch: 2, height: 48, width: 64 }), passes, { context: { target } });
}

/** GRN of one tensor, on the reference. */
const apply = (x: HostTensor, overBatch: boolean, gamma: Float32Array, beta: Float32Array) =>
  grn.evaluate([x], { gamma: { shape: [gamma.length], data: gamma }, beta: { shape: [beta.length], data: beta } }, { dim: x.shape[1], eps: 1e-6, over_batch: overBatch }, { shape: x.shape, dtype: 'f32' });

describe('grn over_batch', () => {
  it('is GRN of the batch laid side by side: its norm spans every sample’s positions', () => {
    const [n, c, h, w] = [2, 5, 3, 4];
    const x = randomInput([n, c, h, w], 3);
    const gamma = randomInput([c], 4).data;
    const beta = randomInput([c], 5).data;
    // The batch as one sample of width n * w.
    const wide = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) wide[((ch * h + y) * n + b) * w + i] = x.data[((b * c + ch) * h + y) * w + i];
    const together = apply({ shape: [1, c, h, n * w], data: wide }, false, gamma, beta);
    const over = apply(x, true, gamma, beta);
    for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) expect(over[((b * c + ch) * h + y) * w + i]).toBeCloseTo(together[((ch * h + y) * n + b) * w + i], 6);
    // Per sample it differs (the two samples' norms differ), and for one sample it is the same.
    expect(scaledDifference(over, apply(x, false, gamma, beta))).toBeGreaterThan(1e-3);
    const first = { shape: [1, c, h, w], data: x.data.slice(0, c * h * w) };
    expect(apply(first, true, gamma, beta)).toEqual(apply(first, false, gamma, beta));
  });

  it.each([
    { pipeline: 'fused', target: webgpuDefaultTarget },
    { pipeline: 'fused', target: emulated },
    { pipeline: 'unfused', target: webgpuDefaultTarget },
  ] as const)('runs $pipeline on the interpreter for $target.name as on the reference', ({ pipeline, target }) => {
    const graph = blocks(pipelines[pipeline], target);
    const weights = withDerivedWeights(graph, randomWeights(graph, 7));
    const input = randomInput(graph.nodes[0].type.shape, 8);
    const reference = executeReference(graph, weights, input);
    expect(scaledDifference(reference.data, executeReference(blocks(pipelines.unfused), weights, input).data)).toBeLessThan(1e-6);
    expect(scaledDifference(interpretGraph(graph, weights, input, { target }).data, reference.data)).toBeLessThan(KERNEL_RTOL);
    // The fused pipeline finishes pw1's partial sums over the batch too.
    if (pipeline === 'fused') expect(graph.nodes.some((n) => n.op === 'grn_stats' && n.fusion?.fromPartials !== undefined)).toBe(true);
  });

  describe('on lavapipe', () => {
    let gpu: AcquiredGpu;
    beforeAll(async () => {
      gpu = await acquireGpu({ adapter: 'vulkan' });
    }, 120_000);
    afterAll(() => gpu.destroy());

    it.each(['fused', 'unfused'] as const)('%s matches the reference', async (pipeline) => {
      const graph = blocks(pipelines[pipeline]);
      const weights = randomWeights(graph, 7);
      const input = randomInput(graph.nodes[0].type.shape, 8);
      const { output } = await executeWebGpu(() => graph, weights, input, gpu.device);
      expect(scaledDifference(output.data, executeReference(graph, weights, input).data)).toBeLessThan(KERNEL_RTOL);
    }, 60_000);
  });

  it.each(['grn', 'grn_stats and grn_apply'] as const)('exports to ONNX as %s, and ONNX Runtime agrees', async (form) => {
    const graph = blocks(form === 'grn' ? ['eliminate-drop-path'] : pipelines.unfused);
    expect(graph.nodes.some((n) => n.op === (form === 'grn' ? 'grn' : 'grn_stats'))).toBe(true);
    const weights = randomWeights(graph, 7);
    const input = randomInput(graph.nodes[0].type.shape, 8);
    const session = await ort.InferenceSession.create(exportOnnx(graph, weights), { executionProviders: ['cpu'] });
    try {
      const result = await session.run({ input: new ort.Tensor('float32', input.data, [...input.shape]) });
      // ORT computes in f32 throughout (test/export/onnx.test.ts): within 1e-4 of the scale.
      expect(scaledDifference(result.output.data as Float32Array, executeReference(graph, weights, input).data)).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });
});
