// Checkpoint layouts other than PyTorch's dense one, named by an alias (`alias "a" = "b" as
// minkowski`): how a tensor stored that way becomes the weight the graph declares. Facts, not
// code, come from the formats' owners: MinkowskiEngine (which ConvNeXt V2's FCMAE checkpoints
// use) stores a convolution kernel as [K, in, out], K = kh x kw window positions with the first
// spatial axis (H) varying fastest, and a depthwise one as [K, channels]; ConvNeXt-V2's
// utils.remap_checkpoint_keys turns them into dense weights the same way.
import { numel } from '../ir/types.js';

export interface WeightLayout {
  /** What the layout is, for messages. */
  readonly description: string;
  /**
   * The tensor as a weight of shape `target`, or undefined when this layout does not apply to a
   * tensor of this shape (it is then bound as stored, if its shape fits).
   */
  readonly convert: (shape: readonly number[], data: Float32Array, target: readonly number[]) => Float32Array | undefined;
}

/**
 * A MinkowskiEngine kernel as a dense convolution weight [out, in/groups, kh, kw]:
 * weight[o, i, y, x] = kernel[x * kh + y, i, o]; depthwise (in/groups = 1, out = channels),
 * weight[c, 0, y, x] = kernel[x * kh + y, c].
 */
function fromMinkowski(shape: readonly number[], data: Float32Array, target: readonly number[]): Float32Array | undefined {
  if (target.length !== 4) return undefined;
  const [out, inPerGroup, kh, kw] = target;
  const window = kh * kw;
  const out4 = new Float32Array(numel(target));
  if (shape.length === 2 && inPerGroup === 1 && shape[0] === window && shape[1] === out) {
    for (let c = 0; c < out; c++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out4[(c * kh + y) * kw + x] = data[(x * kh + y) * out + c];
    return out4;
  }
  if (shape.length === 3 && shape[0] === window && shape[1] === inPerGroup && shape[2] === out) {
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inPerGroup; i++)
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out4[((o * inPerGroup + i) * kh + y) * kw + x] = data[((x * kh + y) * inPerGroup + i) * out + o];
    return out4;
  }
  return undefined;
}

export const weightLayouts: ReadonlyMap<string, WeightLayout> = new Map([
  ['minkowski', { description: 'MinkowskiEngine kernel layout ([kh*kw, in, out], or [kh*kw, channels] depthwise, H fastest)', convert: fromMinkowski }],
]);

/** Says that a tensor read in `layout` does not fit the weight either, and what the layout is. */
export function layoutMismatch(layout: string): string {
  return `read in the ${layout} layout (${weightLayouts.get(layout)?.description ?? 'unknown'}), it does not fit either`;
}
