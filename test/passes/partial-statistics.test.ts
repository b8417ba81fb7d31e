// GRN statistics from partial sums written in pw1's epilogue (partial-statistics pass): where
// the pass applies, what the kernels bind, and that a wrong pairing cannot pass verification.
// Whole models with partial sums run against the reference in test/kernel/lower.test.ts (the
// interpreter) and test/backends/wgsl/webgpu.test.ts (lavapipe).
import { describe, expect, it } from 'vitest';
import { lowerToWgsl } from '../../src/backends/wgsl/lower.js';
import { executeReference } from '../../src/backends/reference/executor.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import { recomputeLimits, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import type { Graph } from '../../src/ir/types.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { scaledDifference, zooGraph } from '../helpers.js';

const emulated: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };
const withoutPartials = pipelines.fused.filter((p) => p !== 'partial-statistics');

/** Per GRN: the stage's H x W and the positions per partial sum (undefined: reads the activation). */
function runs(graph: Graph): [number, number | undefined][] {
  return graph.nodes.filter((n) => n.op === 'grn_stats').map((n) => [graph.nodes[n.inputs[0]].type.shape[2] * graph.nodes[n.inputs[0]].type.shape[3], n.fusion?.fromPartials]);
}

describe('partial-statistics', () => {
  it("gives every GRN whose H x W a run of the GEMM's rows divides its partial sums, on both targets", () => {
    for (const target of [webgpuDefaultTarget, emulated]) {
      const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 1, height: 224, width: 224 }, ['eliminate-drop-path']), pipelines.fused, { context: { target } });
      // Both targets' pw1 GEMMs give each thread 8 rows: 56x56 and 28x28 in runs of 8, 14x14
      // (196 = 4 x 49) in runs of 4, and 7x7 in none (no run of 2 or more divides 49).
      expect(new Set(runs(graph).map(([hw, run]) => `${hw}:${run}`))).toEqual(new Set(['3136:8', '784:8', '196:4', '49:undefined']));
      for (const node of graph.nodes) {
        if (node.fusion?.fromPartials === undefined) continue;
        const producer = graph.nodes[node.inputs[0]];
        expect(producer.fusion?.partials).toMatchObject({ op: 'grn_stats', positions: node.fusion.fromPartials, name: node.name });
      }
    }
  });

  it('has grn_stats read [runs, 4C] partial sums in f32, not the 4C activation, sharing one buffer with pw1', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 2, height: 64, width: 64 }, pipelines.fused);
    for (const precision of ['f32', 'f16'] as const) {
      const program = lowerToWgsl(graph, { precision, target: { ...webgpuDefaultTarget, f16: true } });
      let checked = 0;
      program.programs.forEach((p, i) => {
        const node = graph.nodes[i];
        if (node?.op !== 'grn_stats' || node.fusion?.fromPartials === undefined) return;
        const run = node.fusion.fromPartials;
        const [n, c, h, w] = graph.nodes[node.inputs[0]].type.shape;
        const read = p.buffers.filter((b) => b.access === 'read');
        expect(read.map((b) => b.ref.kind)).toEqual(['partials']);
        expect(read[0]).toMatchObject({ dtype: 'f32', length: ((n * h * w) / run) * c });
        // pw1 writes that very buffer beside its value.
        const producer = program.programs[node.inputs[0]];
        const at = producer.buffers.findIndex((b) => b.ref.kind === 'partials');
        expect(producer.buffers[at]).toMatchObject({ access: 'read_write', dtype: 'f32' });
        expect(program.dispatches[node.inputs[0]].buffers[at]).toBe(program.dispatches[i].buffers[p.buffers.indexOf(read[0])]);
        expect(program.buffers[program.dispatches[i].buffers[p.buffers.indexOf(read[0])]].dtype).toBe('f32');
        checked++;
      });
      expect(checked).toBeGreaterThan(0);
    }
  });

  it.each([webgpuDefaultTarget, emulated])('changes no value: the interpreted model with partial sums matches the reference on $name', (target) => {
    // On the emulation pw1 is a shared band: a lane's slot i holds row lane ^ i (gemm.ts).
    // 32x40: stage 2 is 4x5, so its runs (4) are shorter than a thread's 8 rows.
    const graph = runPipeline(zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 40 }, ['eliminate-drop-path']), pipelines.fused, { context: { target } });
    expect(runs(graph).map(([, run]) => run)).toContain(4);
    const weights = withDerivedWeights(graph, randomWeights(graph, 5));
    const input = randomInput(graph.nodes[0].type.shape, 6);
    const schedules = new Set<string>();
    const output = interpretGraph(graph, weights, input, { target, onProgram: (p) => p.buffers.some((b) => b.ref.kind === 'partials' && b.access === 'read_write') && schedules.add(JSON.stringify(p.schedule)) });
    expect([...schedules].some((s) => s.includes('"share":"subgroup"'))).toBe(target.emulated);
    // The project's f32 kernel tolerance (test/kernel/lower.test.ts): partial sums only regroup
    // the sums of squares, a rounding-level change.
    expect(scaledDifference(output.data, executeReference(graph, weights, input).data)).toBeLessThan(2e-5);
  });

  it('is refused by the verifier when a statistic finishes partial sums its input does not write', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, withoutPartials);
    const stats = graph.nodes.find((n) => n.op === 'grn_stats')!;
    const broken = { ...graph, nodes: graph.nodes.map((n) => (n.id === stats.id ? { ...n, fusion: { prologue: [], epilogue: [], fromPartials: 8 } } : n)) };
    expect(() => verifyGraph(broken, 'test')).toThrow(/finishes partial sums over 8 positions, which its input %\d+ does not write/);
  });
});
