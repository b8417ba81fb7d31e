// ConvNeXt V2's zoo variants through nvcc and ptxas for sm_90 (nvcc-check.ts), fused and
// unfused; the V2 file takes V2's eight, this one's twin the rest, so the two run side by side.
import { describe, it } from 'vitest';
import { checkModel, nvccOrExplain } from './nvcc-check.js';

const nvcc = nvccOrExplain();

describe.runIf(nvcc !== undefined)('CUDA kernels of ConvNeXt V2 pass ptxas for sm_90', () => {
  for (const size of ['atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge']) {
    for (const fused of [true, false]) {
      it(`convnextv2-${size}, ${fused ? 'fused' : 'unfused'}`, () => checkModel(`convnextv2-${size}`, fused), 120_000);
    }
  }
  it('convnextv2-atto, fused, f16 storage', () => checkModel('convnextv2-atto', true, { precision: 'f16' }), 120_000);
  // FCMAE's sparse encoder adds the gather kernels (patch tables, halos, scatter): 20 of 49 patches visible.
  it('fcmae-convnextv2-atto, fused and compacted', () => checkModel('fcmae-convnextv2-atto', true, { visiblePatches: 20 }), 120_000);
});
