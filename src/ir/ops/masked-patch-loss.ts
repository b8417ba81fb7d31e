// FCMAE's loss (ConvNeXt V2's masked pre-training, official models/fcmae.py): the decoder's
// prediction of every patch against the image's pixels, mean squared error per patch, averaged
// over the masked patches only. Layouts, as the official code has them:
//   pred   [N, p*p*C, H/p, W/p]: channel (py*p + px)*C + c predicts pixel (c, p*row + py, p*col + px)
//          of the patch at (row, col) (patchify's nchpwq -> nhwpqc order);
//   image  [N, C, H, W];  mask [N, L] or [N, H/p, W/p], L = (H/p)*(W/p) in row-major order, 1 = masked.
// With norm_pix_loss each patch's target is normalised by its own mean and unbiased variance
// (+ 1e-6). Kernels see the op split into simpler ones (split-masked-patch-loss).
import { expectRank, intAttr, boolAttr, ShapeError, type OpDef } from '../op.js';
import { formatShape, numel, type HostTensor } from '../types.js';

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
  if (pred.shape.join() !== [n, values, rows, cols].join() || numel(mask.shape) !== n * patches || mask.shape[0] !== n) {
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

export const maskedPatchLossOp: OpDef = {
  name: 'masked_patch_loss',
  summary: "FCMAE's loss: per-patch MSE of the prediction against the image, over masked patches",
  kind: 'opaque',
  tensorArgs: ['image', 'mask'],
  arity: 3,
  callable: true,
  attrs: [
    { name: 'patch', type: 'int', doc: "a patch's side in image pixels" },
    { name: 'norm_pix_loss', type: 'bool', default: false, doc: "normalise each patch's target by its mean and unbiased variance" },
  ],
  params: () => [],
  infer([pred, image, mask], attrs) {
    const p = intAttr(attrs, 'patch');
    expectRank(image, 4, "masked_patch_loss's image");
    const [n, c, h, w] = image.shape;
    if (!(p >= 1) || h % p !== 0 || w % p !== 0) throw new ShapeError(`masked_patch_loss: a ${h}x${w} image does not divide into patches of ${p}x${p}`);
    const expected = [n, p * p * c, h / p, w / p];
    if (formatShape(pred.shape) !== formatShape(expected)) {
      throw new ShapeError(`masked_patch_loss needs a prediction ${formatShape(expected)} (patch^2 * channels per patch), got ${formatShape(pred.shape)}`);
    }
    if (formatShape(mask.shape) !== formatShape([n, h / p, w / p])) {
      throw new ShapeError(`masked_patch_loss needs the patch mask ${formatShape([n, h / p, w / p])}, got ${formatShape(mask.shape)}`);
    }
    if (p * p * c < 2 && attrs.norm_pix_loss === true) throw new ShapeError('norm_pix_loss needs at least two values per patch for its unbiased variance');
    return { shape: [1], dtype: 'f32' };
  },
  macs: () => 0,
  kernel: { kind: 'split', pass: 'split-masked-patch-loss' },
  evaluate([pred, image, mask], _weights, attrs) {
    return Float32Array.of(maskedPatchLoss(pred, image, mask, { patch: intAttr(attrs, 'patch'), normPixLoss: boolAttr(attrs, 'norm_pix_loss') }));
  },
};
