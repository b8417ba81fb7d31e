// FCMAE's loss (ConvNeXt V2's masked pre-training, official models/fcmae.py): the decoder's
// prediction of every patch against the image's pixels, mean squared error per patch, averaged
// over the masked patches only. Layouts, as the official code has them:
//   pred   [N, p*p*C, H/p, W/p]: channel (py*p + px)*C + c predicts pixel (c, p*row + py, p*col + px)
//          of the patch at (row, col) (patchify's nchpwq -> nhwpqc order);
//   image  [N, C, H, W];  mask [N, L], L = (H/p)*(W/p) in row-major order, 1 = masked.
// With norm_pix_loss each patch's target is normalised by its own mean and unbiased variance
// (+ 1e-6). This is the reference semantics; the op that computes it in a graph comes with
// FCMAE's graph (issue 12).
import type { HostTensor } from '../types.js';

export interface MaskedPatchLossOptions {
  readonly patch: number;
  readonly normPixLoss: boolean;
}

/**
 * The loss as a float32 scalar, computed in f64. With no masked patch the official code divides
 * 0 by 0; so does this (NaN), and callers refuse such masks before.
 */
export function maskedPatchLoss(pred: HostTensor, image: HostTensor, mask: HostTensor, options: MaskedPatchLossOptions): number {
  const { patch: p, normPixLoss } = options;
  const [n, c, height, width] = image.shape;
  const [rows, cols] = [height / p, width / p];
  const patches = rows * cols;
  const values = p * p * c;
  if (pred.shape.join() !== [n, values, rows, cols].join() || mask.shape.join() !== [n, patches].join()) {
    throw new Error(`internal: masked patch loss of pred ${pred.shape.join('x')}, image ${image.shape.join('x')} and mask ${mask.shape.join('x')} with patch ${p}`);
  }
  const target = new Float64Array(values);
  let total = 0;
  let masked = 0;
  for (let b = 0; b < n; b++) {
    for (let l = 0; l < patches; l++) {
      const weight = mask.data[b * patches + l];
      if (weight === 0) continue;
      const [row, col] = [Math.floor(l / cols), l % cols];
      for (let py = 0; py < p; py++)
        for (let px = 0; px < p; px++)
          for (let ch = 0; ch < c; ch++) target[(py * p + px) * c + ch] = image.data[((b * c + ch) * height + row * p + py) * width + col * p + px];
      if (normPixLoss) {
        let mean = 0;
        for (const t of target) mean += t;
        mean /= values;
        let squares = 0;
        for (const t of target) squares += (t - mean) ** 2;
        const std = Math.sqrt(squares / (values - 1) + 1e-6);
        for (let k = 0; k < values; k++) target[k] = (target[k] - mean) / std;
      }
      let error = 0;
      for (let k = 0; k < values; k++) error += (pred.data[(b * values + k) * patches + l] - target[k]) ** 2;
      total += (error / values) * weight;
      masked += weight;
    }
  }
  return Math.fround(total / masked);
}
