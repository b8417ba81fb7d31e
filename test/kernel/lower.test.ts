// Whole models as kernel programs on the CPU interpreter: the programs and default schedules a
// GPU gets, checked against the reference executor without a GPU.
import { describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import type { KernelProgram } from '../../src/kernel/ir.js';
import { BindingSizeError, computable, lowerNode } from '../../src/kernel/lower/index.js';
import { webgpuDefaultTarget } from '../../src/kernel/target.js';
import { UserError } from '../../src/util/diagnostics.js';
import { pipelines } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { scaledDifference, zooGraph } from '../helpers.js';

// The interpreter rounds every f32 operation as a GPU does, so this is the project's f32
// kernel tolerance (2e-5 of the output's scale), as for WebGPU against the goldens.
const KERNEL_RTOL = 2e-5;

describe('kernel programs on the interpreter match the reference executor', () => {
  it.each(['fused', 'unfused'] as const)('V2-atto %s, batch 2, 32x40', (pipeline) => {
    const graph = zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 40 }, pipelines[pipeline]);
    const weights = withDerivedWeights(graph, randomWeights(graph, 3));
    const input = randomInput(graph.nodes[0].type.shape, 4);
    const strategies = new Set<string>();
    const result = interpretGraph(graph, weights, input, { onProgram: (p: KernelProgram) => strategies.add(String(p.schedule.strategy)) });
    expect(scaledDifference(result.data, executeReference(graph, weights, input).data)).toBeLessThan(KERNEL_RTOL);
    // Every strategy the default heuristic picks for this pipeline was exercised.
    expect([...strategies].sort()).toEqual(pipeline === 'fused' ? ['direct', 'elementwise', 'gemm', 'pixel', 'rows', 'sample', 'window'] : ['direct', 'elementwise', 'gemm', 'rows']);
  }, 60_000);
});

describe('buffers of lowered programs', () => {
  const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
  const programs = graph.nodes.map((node) => lowerNode(graph, node, webgpuDefaultTarget));

  it('declare their storage type and layout: activations NHWC, contraction weights packed, the model input NCHW', () => {
    for (const p of programs) {
      for (const b of p.buffers) {
        expect(b.dtype).toBe('f32');
        expect(b.layout.shape.reduce((x, y) => x * y, 1), `${p.name} ${b.name}`).toBe(b.length);
      }
    }
    const stem = programs[1];
    expect(stem.name).toMatch(/^conv2d_4x4/);
    const input = stem.buffers.find((b) => b.ref.kind === 'value' && b.ref.id === 0)!;
    expect(input.layout).toEqual({ axes: ['n', 'h', 'w', 'c'], shape: [1, 32, 32, 3] });
    const weight = stem.buffers.find((b) => b.ref.kind === 'weight' && b.ref.key === 'downsample_layers.0.0.weight')!;
    expect(weight.layout).toEqual({ axes: ['kh', 'kw', 'in', 'out'], shape: [4, 4, 3, 40] });
    const layout = programs[0].buffers.find((b) => b.ref.kind === 'model-input')!;
    expect(layout.layout).toEqual({ axes: ['n', 'c', 'h', 'w'], shape: [1, 3, 32, 32] });
    const pw = programs.find((p) => p.name.startsWith('linear'))!;
    expect(pw.buffers.find((b) => b.name === 'weight')!.layout.axes).toEqual(['in', 'out']);
  });

  it("refuse a tensor larger than the target's binding size, naming it, its layout and the node's source line", () => {
    const node = graph.nodes[1];
    const small = { ...webgpuDefaultTarget, name: 'a 1 KiB device', maxStorageBufferBindingSize: 1024 };
    let error: unknown;
    try {
      lowerNode(graph, node, small);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BindingSizeError);
    expect(error).toBeInstanceOf(UserError);
    const message = (error as Error).message;
    expect(message).toMatch(/binds input tensor \[n=1, h=32, w=32, c=3\] f32, 12288 bytes, more than a 1 KiB device can bind \(maxStorageBufferBindingSize 1024\)/);
    expect(message).toMatch(/^convnextv2-atto: %1 conv2d\+layernorm downsample_layers\.0\.0 \[1, 40, 8, 8\] binds/);
    expect((error as BindingSizeError).diagnostics[0].loc?.file).toMatch(/convnextv2\.cnx$/);
    // No schedule helps, so no schedule is computable.
    expect(computable(graph, node, small)).toBe(false);
    expect(computable(graph, node, webgpuDefaultTarget)).toBe(true);
  });
});
