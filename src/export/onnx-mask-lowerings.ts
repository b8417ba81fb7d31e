// ONNX lowerings of FCMAE's mask ops (src/ir/ops/patch-mask.ts, apply-mask.ts, mask-fill.ts,
// masked-patch-loss.ts) and of the parts split-masked-patch-loss makes of its loss (patchify.ts,
// channel-norm.ts, squared-error.ts, masked-mean.ts) in opset 17's standard ops. Every reshape copies the batch axis (a 0 in
// Reshape's shape), so these, like the rest of the export, run at any batch size.
//
// The mask reaches a value's resolution by Reshape + Expand (each patch's 0 or 1 repeated over
// its positions) rather than Resize: Expand copies values, so onnxruntime's result is exactly
// the reference's, with no coordinate rounding mode to get wrong.
import { boolAttr, intAttr } from '../ir/op.js';
import { getOp } from '../ir/registry.js';
import { ints, type Lowering, type OnnxGraphBuilder } from './onnx-builder.js';

/**
 * The patch mask `mask` ([N, rows, cols]) repeated over the positions of an h x w value:
 * [N, 1, h, w], 1 at masked patches. Made once per mask and resolution; FCMAE's encoder
 * masks after every op, a few resolutions in all.
 */
function maskAt(b: OnnxGraphBuilder, mask: string, maskShape: readonly number[], h: number, w: number): string {
  const [, rows, cols] = maskShape;
  return b.shared(`${mask}@${h}x${w}`, () => {
    const what = `at_${h}x${w}`;
    if (h === rows && w === cols) return b.step(mask, what, 'Reshape', [mask, b.int64s([0, 1, rows, cols])]);
    // [N, 1, rows, 1, cols, 1] broadcast to [N, 1, rows, h/rows, cols, w/cols] is the mask with
    // each patch's value at each of its positions, in row-major order of [N, 1, h, w].
    const grid = b.shared(`${mask}/grid`, () => b.step(mask, 'grid', 'Reshape', [mask, b.int64s([0, 1, rows, 1, cols, 1])]));
    const repeated = b.step(mask, `${what}/repeated`, 'Expand', [grid, b.int64s([1, 1, 1, h / rows, 1, w / cols])]);
    return b.step(mask, what, 'Reshape', [repeated, b.int64s([0, 1, h, w])]);
  });
}

/** 1 - maskAt: 1 at the positions a mask keeps. */
function keptAt(b: OnnxGraphBuilder, mask: string, maskShape: readonly number[], h: number, w: number): string {
  return b.shared(`${mask}@${h}x${w}/kept`, () => b.step(mask, `kept_${h}x${w}`, 'Sub', [b.scalar('const/one', 1), maskAt(b, mask, maskShape, h, w)]));
}

export const maskLowerings: Readonly<Record<string, Lowering>> = {
  patch_mask(b, node, _x, out, label) {
    // The graph input is [N, L] as callers hold the mask; the IR value is [N, rows, cols].
    const [, rows, cols] = node.type.shape;
    b.op('Reshape', label, [getOp(node.op).graphInput!, b.int64s([0, rows, cols])], out);
  },

  apply_mask(b, node, [x, mask], out, label) {
    const [, , h, w] = node.type.shape;
    b.op('Mul', label, [x, keptAt(b, mask, b.shapeOf(node.inputs[1]), h, w)], out);
  },

  mask_fill(b, node, [x, mask], out, label) {
    // x * (1 - m) + token[c] * m
    const [, , h, w] = node.type.shape;
    const maskShape = b.shapeOf(node.inputs[1]);
    const kept = b.step(label, 'kept', 'Mul', [x, keptAt(b, mask, maskShape, h, w)]);
    const tokens = b.step(label, 'tokens', 'Mul', [b.perChannel(node.params.token, 4), maskAt(b, mask, maskShape, h, w)]);
    b.op('Add', label, [kept, tokens], out);
  },

  masked_patch_loss(b, node, [pred, image, mask], out, label) {
    const p = intAttr(node.attrs, 'patch');
    const [, c, h, w] = b.shapeOf(node.inputs[1]);
    const [rows, cols] = [h / p, w / p];
    const patches = rows * cols;
    const values = p * p * c;
    // Both sides as [N, L, p*p*C], value (py*p + px)*C + c of patch l: the image patchified
    // (n, c, row, py, col, px) -> (n, row, col, py, px, c), the prediction's channels moved last.
    const split = b.step(label, 'image_patches', 'Reshape', [image, b.int64s([0, c, rows, p, cols, p])]);
    const ordered = b.step(label, 'image_patches_nhwpqc', 'Transpose', [split], { perm: ints([0, 2, 4, 3, 5, 1]) });
    let target = b.step(label, 'target', 'Reshape', [ordered, b.int64s([0, patches, values])]);
    const predFlat = b.step(label, 'pred_flat', 'Reshape', [pred, b.int64s([0, values, patches])]);
    const predPatches = b.step(label, 'pred_patches', 'Transpose', [predFlat], { perm: ints([0, 2, 1]) });
    if (boolAttr(node.attrs, 'norm_pix_loss')) {
      // (target - mean) / sqrt(unbiased variance + 1e-6), per patch. Opset 17 takes the axes of
      // ReduceMean and ReduceSumSquare as attributes (ReduceSum's became an input in opset 13).
      const mean = b.step(label, 'target_mean', 'ReduceMean', [target], { axes: ints([2]), keepdims: { int: 1 } });
      const centered = b.step(label, 'target_centered', 'Sub', [target, mean]);
      const squares = b.step(label, 'target_squares', 'ReduceSumSquare', [centered], { axes: ints([2]), keepdims: { int: 1 } });
      const variance = b.step(label, 'target_variance', 'Div', [squares, b.scalar(`${label}/unbiased_count`, values - 1)]);
      const shifted = b.step(label, 'target_variance_eps', 'Add', [variance, b.scalar(`${label}/eps`, 1e-6)]);
      const std = b.step(label, 'target_std', 'Sqrt', [shifted]);
      target = b.step(label, 'target_normalized', 'Div', [centered, std]);
    }
    const error = b.step(label, 'error', 'Sub', [predPatches, target]);
    const squared = b.step(label, 'error_squared', 'Mul', [error, error]);
    const perPatch = b.step(label, 'patch_loss', 'ReduceMean', [squared], { axes: ints([2]), keepdims: { int: 0 } });
    // Mean over masked patches as sum(loss * mask) / sum(mask); ReduceSum without an axes input
    // reduces every axis. The reference skips unmasked patches, so where an unmasked patch's
    // prediction is not finite it stays finite while this is NaN.
    const perSample = b.step(label, 'mask_flat', 'Reshape', [mask, b.int64s([0, patches])]);
    const weighted = b.step(label, 'masked_patch_loss', 'Mul', [perPatch, perSample]);
    const total = b.step(label, 'total', 'ReduceSum', [weighted], { keepdims: { int: 0 } });
    const masked = b.step(label, 'masked', 'ReduceSum', [perSample], { keepdims: { int: 0 } });
    const loss = b.step(label, 'mean', 'Div', [total, masked]);
    b.op('Reshape', label, [loss, b.int64s([1])], out);
  },

  patchify(b, node, [x], out, label) {
    // SpaceToDepth's spec is this very rearrangement: [N, C, H/p, p, W/p, p] transposed to
    // (n, py, px, c, row, col), so channel (py*p + px)*C + c of a position is pixel
    // (c, p*row + py, p*col + px) of its patch. (DepthToSpace's DCR/CRD modes do not apply.)
    b.op('SpaceToDepth', label, [x], out, { blocksize: { int: intAttr(node.attrs, 'patch') } });
  },

  channel_norm(b, node, [x], out, label) {
    // (x - mean) / sqrt(variance + eps) over axis 1, without an affine step; the variance
    // divides by C - 1 when unbiased. LayerNormalization only normalises trailing axes and
    // has no unbiased form, so it is spelled out as the layernorm lowering does.
    const channels = b.shapeOf(node.inputs[0])[1];
    const divisor = boolAttr(node.attrs, 'unbiased') ? channels - 1 : channels;
    const mean = b.step(label, 'mean', 'ReduceMean', [x], { axes: ints([1]), keepdims: { int: 1 } });
    const centered = b.step(label, 'centered', 'Sub', [x, mean]);
    const squares = b.step(label, 'squares', 'ReduceSumSquare', [centered], { axes: ints([1]), keepdims: { int: 1 } });
    const variance = b.step(label, 'variance', 'Div', [squares, b.scalar(`${label}/divisor`, divisor)]);
    const shifted = b.step(label, 'variance_eps', 'Add', [variance, b.scalar(`${label}/eps`, node.attrs.eps as number)]);
    const std = b.step(label, 'std', 'Sqrt', [shifted]);
    b.op('Div', label, [centered, std], out);
  },

  squared_error(b, _node, [x, target], out, label) {
    const difference = b.step(label, 'difference', 'Sub', [x, target]);
    b.op('Mul', label, [difference, difference], out);
  },

  masked_mean(b, node, [x, mask], out, label) {
    // sum(x * m) / sum(m) over every element, m the mask value of the patch covering it. The
    // mask at x's resolution is [N, 1, h, w], so the weight of each position counts once per
    // channel: its sum is K times the sum of the [N, 1, h, w] mask (exact: whole numbers in
    // f32 far below 2^24). Every element is multiplied, as in evaluate: a NaN in an unmasked
    // patch makes the mean NaN, and a mask with no masked patch gives 0 / 0 = NaN.
    const [, k, h, w] = b.shapeOf(node.inputs[0]);
    const maskShape = b.shapeOf(node.inputs[1]);
    const m = maskAt(b, mask, maskShape, h, w);
    const weighted = b.step(label, 'weighted', 'Mul', [x, m]);
    // ReduceSum without an axes input reduces every axis (noop_with_empty_axes is 0).
    const total = b.step(label, 'total', 'ReduceSum', [weighted], { keepdims: { int: 0 } });
    const positions = b.step(label, 'masked_positions', 'ReduceSum', [m], { keepdims: { int: 0 } });
    const weight = b.step(label, 'weight', 'Mul', [positions, b.scalar(`${label}/channels`, k)]);
    const mean = b.step(label, 'mean', 'Div', [total, weight]);
    b.op('Reshape', label, [mean, b.int64s([1])], out);
  },
};
