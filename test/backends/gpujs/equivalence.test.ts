// Property tests of the gpu.js backend: on random ConvNeXt blocks and small random networks of
// both versions, the gpu.js kernels (in GL mode, headless-gl, through the generated runner)
// compute what the reference executor does, fused and unfused. fast-check shrinks a failure
// and prints its seed and path, which replay it with fc.assert(..., { seed, path }).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { executeGpuJsModel } from '../../../src/backends/gpujs/execute.js';
import { gpujsTarget } from '../../../src/backends/gpujs/target.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { elaborate } from '../../../src/dsl/elaborate.js';
import { loadProgram } from '../../../src/dsl/load.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { withDerivedWeights } from '../../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { scaledDifference } from '../../helpers.js';
import { blockCases, networkCases, type ModelCase } from '../../model-cases.js';

// As for WebGPU's and CUDA's properties: f32 kernels, and LayerNorms over one to three channels
// that amplify their input's rounding without bound as two channels approach each other, so
// 1e-4 of the output's scale; the goldens hold the numerics tighter.
const tolerance = 1e-4;

const scratch = mkdtempSync(join(tmpdir(), 'convc-gpujs-property-'));
let written = 0;

const gpujsAgrees = async (c: ModelCase): Promise<void> => {
  const file = join(scratch, `case-${written++}.cnx`);
  writeFileSync(file, c.source);
  const graph = elaborate(loadProgram(file), 'm', { batch: c.batch, height: c.height, width: c.width });
  // The passes fuse for the gpu.js target, as `convc run --backend gpujs` has them do.
  const context = { target: gpujsTarget };
  const unfused = runPipeline(graph, pipelines.unfused, { context });
  const weights = randomWeights(unfused, c.seed);
  const input = randomInput(unfused.nodes[0].type.shape, c.seed + 1);
  const expected = executeReference(unfused, weights, input);
  for (const variant of [runPipeline(graph, pipelines.fused, { context }), unfused]) {
    const out = await executeGpuJsModel(variant, withDerivedWeights(variant, weights), { input }, 'gpu');
    expect(scaledDifference(Object.values(out)[0].data, expected.data)).toBeLessThan(tolerance);
  }
};

describe('gpu.js kernels in GL mode == reference', () => {
  // Each case compiles its kernels as GL shaders on llvmpipe (a second or two a graph): few runs.
  it('for random blocks', async () => {
    await fc.assert(fc.asyncProperty(blockCases({ maxDim: 24, maxBatch: 3 }), gpujsAgrees), { numRuns: 8 });
  }, 600_000);

  it('for random networks', async () => {
    await fc.assert(fc.asyncProperty(networkCases({ maxStages: 4, maxBatch: 3, maxExtra: 11 }), gpujsAgrees), { numRuns: 5 });
  }, 600_000);
});
