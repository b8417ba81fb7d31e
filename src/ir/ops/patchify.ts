// Patchify (space-to-depth): each patch of `patch` x `patch` pixels becomes one position whose
// channels are the patch's pixels, channel (py*p + px)*C + c holding pixel (c, p*row + py,
// p*col + px), as FCMAE's patchify orders them (nchpwq -> nhwpqc). Split from masked_patch_loss:
// the target a prediction of each patch is compared with.
import { expectRank, intAttr, ShapeError, type OpDef } from '../op.js';
import { numel } from '../types.js';
import { add, div, mul, rem, u32 } from '../../kernel/build.js';

export const patchify: OpDef = {
  name: 'patchify',
  summary: "space-to-depth: each patch's pixels as the channels of one position",
  kind: 'opaque',
  arity: 1,
  callable: false,
  attrs: [{ name: 'patch', type: 'int', doc: "a patch's side in pixels" }],
  params: () => [],
  infer([x], attrs) {
    const p = intAttr(attrs, 'patch');
    expectRank(x, 4, 'patchify');
    const [n, c, h, w] = x.shape;
    if (!(p >= 1) || h % p !== 0 || w % p !== 0) throw new ShapeError(`patchify: a ${h}x${w} image does not divide into patches of ${p}x${p}`);
    return { shape: [n, p * p * c, h / p, w / p], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at, attrs) => {
      const p = intAttr(attrs, 'patch');
      const [n, k, row, col] = at.coords;
      const channels = at.shapes[0][1];
      const pixel = div(k, u32(channels));
      return at.read(0, [n, rem(k, u32(channels)), add(mul(row, u32(p)), div(pixel, u32(p))), add(mul(col, u32(p)), rem(pixel, u32(p)))]);
    },
  },
  evaluate([x], _weights, attrs, out) {
    const p = intAttr(attrs, 'patch');
    const [n, c, h, w] = x.shape;
    const [rows, cols] = [h / p, w / p];
    const result = new Float32Array(numel(out.shape));
    for (let b = 0; b < n; b++)
      for (let py = 0; py < p; py++)
        for (let px = 0; px < p; px++)
          for (let ch = 0; ch < c; ch++)
            for (let row = 0; row < rows; row++)
              for (let col = 0; col < cols; col++) {
                const k = (py * p + px) * c + ch;
                result[((b * p * p * c + k) * rows + row) * cols + col] = x.data[((b * c + ch) * h + row * p + py) * w + col * p + px];
              }
    return result;
  },
};
