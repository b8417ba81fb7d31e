// FCMAE patch masks: drawn as the official gen_random_mask draws them (how many kept, every set
// equally likely), checked when given, and the image sizes FCMAE accepts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readNpy } from '../../src/io/npy.js';
import { checkPatchMask, patchGrid, randomPatchMask } from '../../src/io/patch-mask.js';
import { UserError } from '../../src/util/diagnostics.js';
import { repoPath } from '../helpers.js';

const message = (f: () => unknown): string => {
  try {
    f();
  } catch (error) {
    if (error instanceof UserError) return error.diagnostics[0].message;
    throw error;
  }
  throw new Error('no error');
};

describe('randomPatchMask', () => {
  it('keeps int(L * (1 - ratio)) patches of every sample, as gen_random_mask does', () => {
    // L = 49 (224 / 32 = 7 squared) at 0.6 keeps int(19.6) = 19; L = 4 keeps int(1.6) = 1.
    for (const [patches, ratio, kept] of [[49, 0.6, 19], [4, 0.6, 1], [4, 0.5, 2], [16, 0, 16], [16, 1, 0]] as const) {
      const mask = randomPatchMask(3, patches, ratio, 7);
      expect(mask.shape).toEqual([3, patches]);
      for (let n = 0; n < 3; n++) {
        const row = Array.from(mask.data.subarray(n * patches, (n + 1) * patches));
        expect(row.every((v) => v === 0 || v === 1)).toBe(true);
        expect(row.filter((v) => v === 0)).toHaveLength(kept);
      }
    }
  });

  it('is the same for a seed, different for another, and differs between samples', () => {
    expect(randomPatchMask(2, 49, 0.6, 3).data).toEqual(randomPatchMask(2, 49, 0.6, 3).data);
    expect(randomPatchMask(2, 49, 0.6, 3).data).not.toEqual(randomPatchMask(2, 49, 0.6, 4).data);
    const two = randomPatchMask(2, 49, 0.6, 3).data;
    expect(two.subarray(0, 49)).not.toEqual(two.subarray(49));
  });

  it('keeps every patch about equally often (chi-squared over 6000 draws, fixed seed)', () => {
    const patches = 6;
    const counts = new Array<number>(patches).fill(0);
    const mask = randomPatchMask(6000, patches, 0.5, 11);
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === 0) counts[i % patches]++;
    const expected = (6000 * 3) / patches;
    const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 5 degrees of freedom: P(chi2 > 20.5) = 0.001; a biased shuffle (say, one that favours the
    // first positions) lands far above.
    expect(chi2).toBeLessThan(20.5);
  });

  it('refuses a ratio outside [0, 1]', () => {
    expect(message(() => randomPatchMask(1, 4, 1.5, 0))).toBe('the mask ratio must be between 0 and 1, got 1.5');
    expect(message(() => randomPatchMask(1, 4, Number.NaN, 0))).toBe('the mask ratio must be between 0 and 1, got NaN');
  });
});

describe('checkPatchMask', () => {
  it('accepts the golden masks, which the official code drew or was given', () => {
    for (const name of ['fcmae-mini', 'fcmae-mini-normpix']) {
      const file = repoPath(`test/fixtures/golden-fcmae/${name}/mask.npy`);
      const mask = readNpy(readFileSync(file), file);
      expect(checkPatchMask(mask, 2, 4, file)).toBe(mask);
    }
  });

  it('names the file, the shapes and the first value that is neither 0 nor 1', () => {
    expect(message(() => checkPatchMask({ shape: [2, 5], data: new Float32Array(10) }, 2, 4, 'm.npy'))).toBe(
      'm.npy: the mask has shape [2, 5], but the model needs [2, 4] (batch, patches: 0 keeps a patch, 1 masks it)',
    );
    expect(message(() => checkPatchMask({ shape: [1, 4], data: Float32Array.from([0, 1, 0.5, 2]) }, 1, 4, 'm.npy'))).toBe(
      'm.npy: mask value 0.5 at [0, 2]; a mask holds only 0 (keep) and 1 (mask)',
    );
  });
});

describe('patchGrid', () => {
  it('gives the grid of a square image whose side the patch divides, and refuses others', () => {
    expect(patchGrid(224, 224, 32)).toEqual([7, 7]);
    expect(message(() => patchGrid(224, 192, 32))).toBe('a patch mask (FCMAE) needs a square image whose side is a multiple of the patch size (32), got 224x192');
    expect(message(() => patchGrid(100, 100, 32))).toBe('a patch mask (FCMAE) needs a square image whose side is a multiple of the patch size (32), got 100x100');
  });
});
