// FCMAE's loss against the PyTorch goldens (test/reference/make-fcmae-goldens.py): the golden
// prediction, image and mask give the golden loss, with and without norm_pix_loss; the
// manifest's near misses (mean over all patches, biased variance) do not.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpy } from '../../src/io/npy.js';
import { maskedPatchLoss } from '../../src/ir/ops/masked-patch-loss.js';
import { repoPath } from '../helpers.js';

const dir = repoPath('test/fixtures/golden-fcmae');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  cases: { name: string; config: { norm_pix_loss: boolean; patch_size: number }; loss: number; loss_variants_for_reference: Record<string, number> }[];
};
const npy = (name: string, file: string) => readNpy(readFileSync(join(dir, name, file)), file);

// The loss is a mean of about 12 000 squared differences, summed in f64 and rounded once to
// f32, as the golden was: they agree to f32 rounding (2^-24 relative; 1e-6 leaves margin). The
// nearest mistake the manifest lists (biased variance) is 1.2e-4 away.
const LOSS_RTOL = 1e-6;

describe('maskedPatchLoss', () => {
  it.each(manifest.cases.map((c) => [c.name, c] as const))('%s: the golden pred, image and mask give the golden loss', (name, c) => {
    const loss = maskedPatchLoss(npy(name, 'pred.npy'), npy(name, 'input.npy'), npy(name, 'mask.npy'), { patch: c.config.patch_size, normPixLoss: c.config.norm_pix_loss });
    expect(Math.abs(loss - c.loss) / c.loss).toBeLessThan(LOSS_RTOL);
    // The manifest repeats loss.npy's value.
    expect(npy(name, 'loss.npy').data[0]).toBe(Math.fround(c.loss));
    for (const [mistake, value] of Object.entries(c.loss_variants_for_reference)) {
      if (mistake === 'grn_per_sample') continue; // an encoder mistake: pred itself would differ
      expect(Math.abs(loss - value) / value, mistake).toBeGreaterThan(LOSS_RTOL * 10);
    }
  });

  it('averages over masked patches only: unmasking one changes the loss as its error weighs', () => {
    const name = 'fcmae-mini';
    const [pred, image, mask] = [npy(name, 'pred.npy'), npy(name, 'input.npy'), npy(name, 'mask.npy')];
    const options = { patch: 32, normPixLoss: false };
    const perPatch = (keep: number) => maskedPatchLoss(pred, image, { shape: mask.shape, data: mask.data.map((m, i) => (i === keep ? 1 : 0)) }, options);
    const masked = [...mask.data.keys()].filter((i) => mask.data[i] === 1);
    const mean = masked.reduce((sum, i) => sum + perPatch(i), 0) / masked.length;
    expect(Math.abs(maskedPatchLoss(pred, image, mask, options) - mean) / mean).toBeLessThan(1e-6);
    expect(Number.isNaN(maskedPatchLoss(pred, image, { shape: mask.shape, data: new Float32Array(mask.data.length) }, options))).toBe(true);
  });
});
