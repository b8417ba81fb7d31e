// Gather kernels (FCMAE's patch tables and compaction moves) on the interpreter: each node's
// kernel, fed its inputs as the reference executor computed them, writes what the reference
// computes, for masks with every patch visible, one visible, and random ones.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { interpret } from '../../src/kernel/interpret.js';
import { lowerNode } from '../../src/kernel/lower/index.js';
import { portableTarget } from '../../src/kernel/target.js';
import { visibleCount } from '../../src/ir/ops/patch-compaction.js';
import { getOp } from '../../src/ir/registry.js';
import { numel } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { randomWeights } from '../../src/weights/random.js';
import { fcmaeCases, fcmaeGraph, randomMasks } from '../models/fcmae-helpers.js';
import { toKernelLayout } from './run-node.js';

describe('gather kernels', () => {
  it('compute every patch table and move of a compacted FCMAE exactly as the reference does', () => {
    const c = fcmaeCases[0];
    const patches = 2 * 9;
    const masks = randomMasks(patches);
    let checked = 0;
    fc.assert(
      fc.property(masks, (bits) => {
        const mask = { shape: [2, 3, 3], data: Float32Array.from(bits) };
        const graph = runPipeline(fcmaeGraph(c, 2, [], 96), pipelines.unfused, { context: { target: portableTarget('f32'), visiblePatches: visibleCount(mask) } });
        const input = { shape: [2, 3, 96, 96], data: Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => Math.cos(i * 0.11)) };
        const values = new Map<number, Float32Array>();
        executeGraph(graph, randomWeights(graph, 1), { input, mask }, { onValue: (n, v) => values.set(n.id, toKernelLayout(v)) });
        for (const node of graph.nodes.filter((n) => getOp(n.op).kernel.kind === 'gather')) {
          const program = lowerNode(graph, node, portableTarget('f32'));
          const output = new Float32Array(numel(node.type.shape));
          const memory: Record<string, Float32Array> = {};
          for (const b of program.buffers) {
            // The mask is read where the caller put it; every other input is a value.
            if (b.ref.kind === 'model-input') memory[b.name] = mask.data;
            else if (b.ref.kind === 'value') memory[b.name] = b.ref.id === node.id ? output : values.get(b.ref.id)!;
            else throw new Error(`a gather kernel binds ${b.ref.kind}`);
          }
          interpret(program, memory);
          expect(output, `${node.op} ${node.name}`).toEqual(values.get(node.id));
          checked++;
        }
      }),
      { numRuns: 8, seed: 3 },
    );
    // Per run: slots, visible, one gather, five halos, one scatter, and the loss's patchify.
    expect(checked).toBe(8 * 10);
  });
});
