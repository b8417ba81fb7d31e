// FCMAE's encoder is ConvNeXt V2's stages: with every patch visible and one sample (where GRN
// over the batch is GRN per sample) it computes what the plain classifier computes before its
// pooling, compacted or dense-masked, for random weights and inputs.
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { executeGraph } from '../../src/backends/reference/executor.js';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { defaultPassContext } from '../../src/passes/context.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { randomWeights } from '../../src/weights/random.js';
import { repoPath, scaledDifference } from '../helpers.js';
import { denseMasked } from './fcmae-helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'convc-fcmae-encoder-'));

function graphOf(source: string, passes: readonly string[], visiblePatches?: number): Graph {
  const file = join(scratch, `m-${Math.random().toString(36).slice(2)}.cnx`);
  writeFileSync(file, source);
  const program = loadProgram(file);
  const context = { ...defaultPassContext, ...(visiblePatches !== undefined ? { visiblePatches } : {}) };
  return runPipeline(elaborate(program, selectModel(program, undefined, file), { batch: 1, height: 64, width: 64 }), passes, { context });
}

/** The value `pick` names, computed on the reference executor. */
function valueOf(graph: Graph, weights: ReadonlyMap<string, HostTensor>, inputs: Record<string, HostTensor>, pick: (graph: Graph) => number): HostTensor {
  const id = pick(graph);
  let value: HostTensor | undefined;
  executeGraph(graph, weights, inputs, { onValue: (node, v) => node.id === id && (value = v) });
  return value!;
}

// The same ops on the same values in the same order, except GRN's norm summed over a compact
// layout's positions: f32 rounding only.
const RTOL = 1e-5;

describe("FCMAE's encoder with every patch visible", () => {
  it('equals the ConvNeXt V2 stages, compacted and dense-masked', () => {
    const configs = fc.record({
      depths: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 4, maxLength: 4 }),
      dims: fc.array(fc.integer({ min: 2, max: 6 }), { minLength: 4, maxLength: 4 }).map((d) => d.map((x) => x * 4)),
      seed: fc.nat(1000),
    });
    fc.assert(
      fc.property(configs, ({ depths, dims, seed }) => {
        const args = `depths=[${depths.join(', ')}], dims=[${dims.join(', ')}]`;
        const fcmae = (passes: readonly string[]) =>
          graphOf(`import "${repoPath('models/fcmae.cnx').replace(/\\/g, '/')}"\nmodel m = FCMAE(${args}, decoder_dim=8)\n`, passes, 4);
        const plain = graphOf(`import "${repoPath('models/convnextv2.cnx').replace(/\\/g, '/')}"\nmodel m = ConvNeXtV2(${args}, classes=5)\n`, pipelines.unfused);
        const weights = randomWeights(fcmae(pipelines.unfused), seed);
        // The classifier's stage weights are the encoder's, named without `encoder.`.
        const plainWeights = new Map([...randomWeights(plain, seed + 1)].map(([key, t]) => [key, weights.get(`encoder.${key}`) ?? t]));
        const input = { shape: [1, 3, 64, 64], data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.013 + seed)) };
        const stages = valueOf(plain, plainWeights, { input }, (g) => g.nodes.find((n) => n.op === 'global_avg_pool')!.inputs[0]);
        const mask = { shape: [1, 2, 2], data: new Float32Array(4) };
        for (const passes of [pipelines.unfused, denseMasked(pipelines.unfused)]) {
          const encoder = valueOf(fcmae(passes), weights, { input, mask }, (g) => g.nodes.find((n) => n.name === 'proj' && n.op === 'conv2d')!.inputs[0]);
          expect(scaledDifference(encoder.data, stages.data)).toBeLessThan(RTOL);
        }
      }),
      { numRuns: 6, seed: 2 },
    );
  });
});
