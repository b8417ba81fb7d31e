// Zeroes the masked patches of a value: out[n, c, y, x] = x[n, c, y, x] * (1 - mask[n, patch of
// (y, x)]). The mask is [N, rows, cols] (patch_mask), and a value of H x W has H/rows x W/cols
// positions per patch, so one mask serves every resolution of FCMAE's encoder. `sparse(mask)`
// regions of the language put one after each op.
import { expectRank, ShapeError, type OpDef } from '../op.js';
import { formatShape } from '../types.js';
import { mul, sub, f32 } from '../../kernel/build.js';

/** Positions per patch along each axis of `value` under `mask`, or a ShapeError. */
export function patchSites(value: readonly number[], mask: readonly number[], what: string): readonly [number, number] {
  const [n, , h, w] = value;
  const [mn, rows, cols] = mask;
  if (mask.length !== 3 || mn !== n) throw new ShapeError(`${what} needs a patch mask [${n}, rows, cols], got ${formatShape(mask)}`);
  if (h % rows !== 0 || w % cols !== 0) {
    throw new ShapeError(`${what}: a ${h}x${w} value does not divide into the mask's ${rows}x${cols} patches`);
  }
  return [h / rows, w / cols];
}

/** The mask value (1 = masked) that covers element `i` of an [n, c, h, w] tensor. */
export function maskAt(i: number, value: readonly number[], mask: Float32Array, rows: number, cols: number): number {
  const [, c, h, w] = value;
  const x = i % w;
  const y = Math.floor(i / w) % h;
  const n = Math.floor(i / (c * h * w));
  return mask[(n * rows + Math.floor(y / (h / rows))) * cols + Math.floor(x / (w / cols))];
}

export const applyMask: OpDef = {
  name: 'apply_mask',
  summary: "zeroes the value at a patch mask's masked patches",
  kind: 'elementwise',
  tensorArgs: ['mask'],
  arity: 2,
  callable: true,
  attrs: [],
  params: () => [],
  infer([x, mask]) {
    expectRank(x, 4, 'apply_mask');
    patchSites(x.shape, mask.shape, 'apply_mask');
    return x;
  },
  macs: () => 0,
  kernel: { kind: 'elementwise', apply: (x, at) => mul(x, sub(f32(1), at.operand(0, 'mask'))) },
  evaluate([x, mask]) {
    const [, rows, cols] = mask.shape;
    const result = new Float32Array(x.data.length);
    for (let i = 0; i < result.length; i++) result[i] = x.data[i] * (1 - maskAt(i, x.shape, mask.data, rows, cols));
    return result;
  },
};
