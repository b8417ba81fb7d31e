// The ptxas check of issue 13: every kernel of a model, compiled by nvcc for sm_90 with
// `-cubin -Xptxas -v` (ptxas runs, so shared memory over the limit, register spills and blocks
// needing more registers than a block has all show), within the CUDA target's limits.
import { expect } from 'vitest';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { compileCuda, findNvcc, resourceViolations } from '../../../src/backends/cuda/nvcc.js';
import { cudaTarget } from '../../../src/backends/cuda/target.js';
import type { StorageType } from '../../../src/kernel/ir.js';
import { loadModel } from '../../../src/cli/model.js';
import { pipelines, defaultPipeline } from '../../../src/passes/manager.js';
import { repoPath } from '../../helpers.js';

export const nvcc = findNvcc();

/**
 * Without nvcc these tests cannot run, and that must not pass quietly: they fail, unless
 * CONVC_NO_NVCC=1 says the machine has none on purpose, and then they say so on stderr.
 */
export function nvccOrExplain(): string | undefined {
  if (nvcc !== undefined) return nvcc;
  const message = 'nvcc not found (PATH, $NVCC, /usr/local/cuda/bin, /usr/local/bin): the ptxas checks of the CUDA kernels did NOT run';
  if (process.env.CONVC_NO_NVCC === '1') {
    process.stderr.write(`\n*** ${message} ***\n\n`);
    return undefined;
  }
  throw new Error(`${message}; install the CUDA toolkit or set CONVC_NO_NVCC=1 to run without these checks`);
}

/** Lowers a zoo model at 224 for the CUDA target, compiles it for sm_90 and checks every kernel. */
export function checkModel(variant: string, fused: boolean, options: { readonly precision?: StorageType; readonly visiblePatches?: number } = {}): void {
  const target = cudaTarget('sm_90');
  const { precision = 'f32', visiblePatches } = options;
  const size = { batch: 1, height: 224, width: 224 };
  const { graph } = loadModel(repoPath(`models/${variant}.cnx`), { size, passes: fused ? defaultPipeline : pipelines.unfused, target, ...(visiblePatches !== undefined ? { visiblePatches } : {}) });
  const program = lowerToCuda(graph, { target, precision });
  const { resources } = compileCuda(program.module, ['sm_90'], nvcc);
  // ptxas reported each kernel of the module once: none was left out of the check.
  expect(resources.map((r) => r.kernel).sort()).toEqual(program.shaders.map((s) => s.name).sort());
  const blocks = new Map(program.shaders.map((s) => [s.name, s.needs.workgroupSize]));
  expect(resourceViolations(resources, target, blocks)).toEqual([]);
}
