// Property tests: on random ConvNeXt blocks and small random networks of both versions, the
// fused pipeline computes what the unfused one does, on the reference executor and on WebGPU,
// and both agree with the reference. fast-check shrinks a failure and prints its seed and path,
// which replay it with fc.assert(..., { seed, path }).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../src/backends/wgsl/execute.js';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import type { Graph } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { repoPath, toleranceRatio } from '../helpers.js';

// The project's fp32 tolerance: fused and unfused kernels sum in different orders, and WebGPU
// computes in f32 with an erf approximation good to 1.5e-7.
const ATOL = 1e-4;
const RTOL = 1e-4;

interface Case {
  readonly source: string;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly seed: number;
}

const version = fc.constantFrom('v1', 'v2');

/** One block of either version at any width, down to a 1x1 image. */
const blockCase: fc.Arbitrary<Case> = fc
  .record({ version, dim: fc.integer({ min: 1, max: 24 }), batch: fc.integer({ min: 1, max: 3 }), height: fc.integer({ min: 1, max: 9 }), width: fc.integer({ min: 1, max: 9 }), seed: fc.nat(1000) })
  .map(({ version: v, dim, ...rest }) => ({
    ...rest,
    source: `import "${repoPath(`models/convnext${v}.cnx`)}"\nfamily OneBlock(dim) {\n  input(dim)\n  block: ConvNeXt${v.toUpperCase()}Block(dim)\n}\nmodel m = OneBlock(${dim})\n`,
  }));

/** A whole network: 1 to 4 stages, small and odd widths, inputs that end at 1x1 or a little more. */
const networkCase: fc.Arbitrary<Case> = fc.integer({ min: 1, max: 4 }).chain((stages) =>
  fc
    .record({
      version,
      depths: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: stages, maxLength: stages }),
      dims: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: stages, maxLength: stages }),
      classes: fc.integer({ min: 1, max: 10 }),
      inChans: fc.integer({ min: 1, max: 4 }),
      batch: fc.integer({ min: 1, max: 3 }),
      // The stem divides by 4 and each later stage by 2, so this much input reaches 1x1.
      extraH: fc.integer({ min: 0, max: 11 }),
      extraW: fc.integer({ min: 0, max: 11 }),
      seed: fc.nat(1000),
    })
    .map(({ version: v, depths, dims, classes, inChans, extraH, extraW, ...rest }) => {
      const minimum = 4 * 2 ** (stages - 1);
      return {
        ...rest,
        height: minimum + extraH,
        width: minimum + extraW,
        source: `import "${repoPath(`models/convnext${v}.cnx`)}"\nmodel m = ConvNeXt${v.toUpperCase()}(depths=[${depths}], dims=[${dims}], classes=${classes}, in_chans=${inChans})\n`,
      };
    }),
);

const scratch = mkdtempSync(join(tmpdir(), 'convc-property-'));
let written = 0;

function graphs(c: Case): { fused: Graph; unfused: Graph } {
  const file = join(scratch, `case-${written++}.cnx`);
  writeFileSync(file, c.source);
  const graph = elaborate(loadProgram(file), 'm', { batch: c.batch, height: c.height, width: c.width });
  return { fused: runPipeline(graph, pipelines.fused), unfused: runPipeline(graph, pipelines.unfused) };
}

function referenceAgrees(c: Case): void {
  const { fused, unfused } = graphs(c);
  const weights = randomWeights(unfused, c.seed);
  const input = randomInput(unfused.nodes[0].type.shape, c.seed + 1);
  const expected = executeReference(unfused, weights, input);
  // The fused graph also reads weights that constant folding derives from these.
  expect(toleranceRatio(executeReference(fused, withDerivedWeights(fused, weights), input).data, expected.data, ATOL, RTOL)).toBeLessThan(1);
}

describe('fused == unfused on the reference executor', () => {
  it('for random blocks', () => {
    fc.assert(fc.property(blockCase, referenceAgrees), { numRuns: 300 });
  });

  it('for random networks', () => {
    fc.assert(fc.property(networkCase, referenceAgrees), { numRuns: 300 });
  }, 120_000);
});

describe('fused == unfused == reference on WebGPU', () => {
  let gpu: AcquiredGpu;
  beforeAll(async () => {
    gpu = await acquireGpu();
  }, 120_000);
  afterAll(() => gpu?.destroy());

  const gpuAgrees = async (c: Case): Promise<void> => {
    const { fused, unfused } = graphs(c);
    const weights = randomWeights(unfused, c.seed);
    const input = randomInput(unfused.nodes[0].type.shape, c.seed + 1);
    const expected = executeReference(unfused, weights, input);
    for (const graph of [fused, unfused]) {
      const { output } = await executeWebGpu(() => graph, withDerivedWeights(graph, weights), input, gpu.device);
      expect(toleranceRatio(output.data, expected.data, ATOL, RTOL)).toBeLessThan(1);
    }
  };

  it('for random blocks', async () => {
    await fc.assert(fc.asyncProperty(blockCase, gpuAgrees), { numRuns: 12 });
  }, 300_000);

  it('for random networks', async () => {
    await fc.assert(fc.asyncProperty(networkCase, gpuAgrees), { numRuns: 8 });
  }, 300_000);
});
