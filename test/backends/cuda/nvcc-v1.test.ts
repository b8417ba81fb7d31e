// ConvNeXt V1's zoo variants through nvcc and ptxas for sm_90 (nvcc-check.ts), fused and
// unfused; the V2 file takes V2's eight, this one's twin the rest, so the two run side by side.
import { describe, it } from 'vitest';
import { checkModel, nvccOrExplain } from './nvcc-check.js';

const nvcc = nvccOrExplain();

describe.runIf(nvcc !== undefined)('CUDA kernels of ConvNeXt V1 pass ptxas for sm_90', () => {
  for (const size of ['tiny', 'small', 'base', 'large', 'xlarge']) {
    for (const fused of [true, false]) {
      it(`convnextv1-${size}, ${fused ? 'fused' : 'unfused'}`, () => checkModel(`convnextv1-${size}`, fused), 120_000);
    }
  }
});
