// FCMAE's patch mask (ConvNeXt V2's masked pre-training): one value per patch of the image,
// [N, L] with L = (H / patch) x (W / patch) patches in row-major order, 0 for a patch the
// encoder sees and 1 for one it must reconstruct. Drawn from a seed, or given as a .npy file.
import { formatShape, type HostTensor } from '../ir/types.js';
import { seededRandom } from '../weights/random.js';
import { userError } from '../util/diagnostics.js';

/**
 * The patch grid of an image: rows and columns of `patch`-pixel patches. The official FCMAE
 * needs square images whose side is a multiple of the patch size; anything else is refused.
 */
export function patchGrid(height: number, width: number, patch: number): readonly [number, number] {
  if (height !== width || height % patch !== 0) {
    throw userError(`a patch mask (FCMAE) needs a square image whose side is a multiple of the patch size (${patch}), got ${height}x${width}`);
  }
  return [height / patch, width / patch];
}

/**
 * A random mask as the official gen_random_mask draws it: each sample keeps
 * int(L * (1 - ratio)) patches, every set of that many equally likely, and masks the rest.
 * The official code ranks torch.randn noise and keeps the smallest; this draws the same
 * distribution from convc's seeded generator (a partial Fisher-Yates shuffle per sample), so the
 * same seed gives the same mask here, not the one torch would give (pass --mask for that).
 */
export function randomPatchMask(batch: number, patches: number, ratio: number, seed: number): HostTensor {
  if (!(ratio >= 0 && ratio <= 1)) throw userError(`the mask ratio must be between 0 and 1, got ${ratio}`);
  const keep = Math.trunc(patches * (1 - ratio));
  const random = seededRandom(seed);
  const data = new Float32Array(batch * patches).fill(1);
  const order = new Int32Array(patches);
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < patches; i++) order[i] = i;
    for (let i = 0; i < keep; i++) {
      const j = i + Math.floor(random() * (patches - i));
      [order[i], order[j]] = [order[j], order[i]];
      data[n * patches + order[i]] = 0;
    }
  }
  return { shape: [batch, patches], data };
}

/** `mask` as read from `label`, checked against the model's batch and patch count: [N, L] of 0 and 1. */
export function checkPatchMask(mask: HostTensor, batch: number, patches: number, label: string): HostTensor {
  if (mask.shape.length !== 2 || mask.shape[0] !== batch || mask.shape[1] !== patches) {
    throw userError(`${label}: the mask has shape ${formatShape(mask.shape)}, but the model needs ${formatShape([batch, patches])} (batch, patches: 0 keeps a patch, 1 masks it)`);
  }
  const bad = mask.data.findIndex((v) => v !== 0 && v !== 1);
  if (bad >= 0) {
    const [n, l] = [Math.floor(bad / patches), bad % patches];
    throw userError(`${label}: mask value ${mask.data[bad]} at [${n}, ${l}]; a mask holds only 0 (keep) and 1 (mask)`);
  }
  return mask;
}
