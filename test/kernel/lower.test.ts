// Whole models as kernel programs on the CPU interpreter: the programs and default schedules a
// GPU gets, checked against the reference executor without a GPU.
import { describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import type { KernelProgram } from '../../src/kernel/ir.js';
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
