// Property tests of the CUDA backend without a GPU: on random ConvNeXt blocks and small random
// networks of both versions, the CUDA kernels (kernels.cu compiled by g++ with the host
// emulation header, run through the generated runner on the emulated driver) compute what the
// reference executor does, fused and unfused. fast-check shrinks a failure and prints its seed
// and path, which replay it with fc.assert(..., { seed, path }).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCudaModel } from '../../../src/backends/cuda/execute.js';
import { cudaTarget } from '../../../src/backends/cuda/target.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { elaborate } from '../../../src/dsl/elaborate.js';
import { loadProgram } from '../../../src/dsl/load.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { withDerivedWeights } from '../../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { scaledDifference } from '../../helpers.js';
import { blockCases, networkCases, type ModelCase } from '../../model-cases.js';
import { yieldToEventLoop } from '../../event-loop.js';

// As for WebGPU's narrow tiers (test/passes/equivalence.test.ts): f32 kernels, and LayerNorms
// over one to three channels that amplify their input's rounding without bound as two channels
// approach each other, so 1e-4 of the output's scale; the goldens hold the numerics tighter.
const tolerance = 1e-4;

const scratch = mkdtempSync(join(tmpdir(), 'convc-cuda-property-'));
let written = 0;

const emulatedAgrees = async (c: ModelCase): Promise<void> => {
  // Each case compiles and runs synchronously for seconds; let vitest's IPC through between them.
  await yieldToEventLoop();
  const file = join(scratch, `case-${written++}.cnx`);
  writeFileSync(file, c.source);
  const graph = elaborate(loadProgram(file), 'm', { batch: c.batch, height: c.height, width: c.width });
  // The passes fuse for the CUDA target, as `convc run --backend cuda` has them do.
  const context = { target: cudaTarget() };
  const unfused = runPipeline(graph, pipelines.unfused, { context });
  const weights = randomWeights(unfused, c.seed);
  const input = randomInput(unfused.nodes[0].type.shape, c.seed + 1);
  const expected = executeReference(unfused, weights, input);
  for (const variant of [runPipeline(graph, pipelines.fused, { context }), unfused]) {
    const { model } = await createCudaModel(variant, withDerivedWeights(variant, weights), { driver: 'cuda-emulated' });
    try {
      const output = (await model.run(input.data)) as Float32Array;
      expect(scaledDifference(output, expected.data)).toBeLessThan(tolerance);
    } finally {
      model.destroy();
    }
  }
};

describe('CUDA kernels on the emulated driver == reference', () => {
  // Each case compiles its kernels with g++ (a second or two a graph): few runs.
  it('for random blocks', async () => {
    await fc.assert(fc.asyncProperty(blockCases({ maxDim: 24, maxBatch: 3 }), emulatedAgrees), { numRuns: 8 });
  }, 600_000);

  it('for random networks', async () => {
    await fc.assert(fc.asyncProperty(networkCases({ maxStages: 4, maxBatch: 3, maxExtra: 11 }), emulatedAgrees), { numRuns: 5 });
  }, 600_000);
});
