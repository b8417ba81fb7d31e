// The mean of a value over the masked patches of a patch mask: every element weighted by the
// mask value of the patch covering it (1 = masked), summed, over the sum of the weights. Over
// [N, K, rows, cols] with one position per patch, it is the mean over masked patches of each
// patch's mean over K: FCMAE's loss from its per-element squared errors.
import { expectRank, ShapeError, type OpDef } from '../op.js';
import { div, mul } from '../../kernel/build.js';
import { maskAt, patchSites } from './apply-mask.js';

export const maskedMean: OpDef = {
  name: 'masked_mean',
  summary: "mean of a value over a patch mask's masked patches (each element weighted by its patch's mask value)",
  kind: 'reduction',
  arity: 2,
  callable: false,
  attrs: [],
  params: () => [],
  infer([x, mask]) {
    expectRank(x, 4, 'masked_mean');
    patchSites(x.shape, mask.shape, 'masked_mean');
    if (x.dtype !== 'f32') throw new ShapeError(`masked_mean sums in f32, got ${x.dtype}`);
    return { shape: [1], dtype: 'f32' };
  },
  macs: () => 0,
  kernel: {
    kind: 'reduction',
    over: 'all',
    stats: [
      { name: 'weight', term: (_x, _s, _attrs, at) => at.operand(0, 'mask'), finish: (sum) => sum },
      { name: 'mean', term: (x, _s, _attrs, at) => mul(x, at.operand(0, 'mask')), finish: (sum, _count, s) => div(sum, s.weight) },
    ],
  },
  evaluate([x, mask]) {
    const [, rows, cols] = mask.shape;
    let total = 0;
    let weight = 0;
    for (let i = 0; i < x.data.length; i++) {
      const m = maskAt(i, x.shape, mask.data, rows, cols);
      total += x.data[i] * m;
      weight += m;
    }
    return Float32Array.of(total / weight);
  },
};
