// FCMAE's mask tokens: at masked patches the value is replaced by a learnt token per channel,
// out = x * (1 - m) + token[c] * m, as the official decoder input (models/fcmae.py). The weight
// is named by the node itself (official key "mask_token", stored [1, C, 1, 1]).
import { expectChannels, expectRank, intAttr, type OpDef } from '../op.js';
import { add, f32, mul, sub } from '../../kernel/build.js';
import { maskAt, patchSites } from './apply-mask.js';

export const maskFill: OpDef = {
  name: 'mask_fill',
  summary: 'a learnt token per channel at the masked patches (FCMAE mask tokens)',
  kind: 'elementwise',
  tensorArgs: ['mask'],
  arity: 2,
  callable: true,
  attrs: [{ name: 'dim', type: 'int', doc: 'channels' }],
  params: (attrs) => [{ role: 'token', suffix: '', shape: [intAttr(attrs, 'dim')], init: { kind: 'uniform', lo: -1, hi: 1 } }],
  infer([x, mask], attrs) {
    expectRank(x, 4, 'mask_fill');
    expectChannels(x, intAttr(attrs, 'dim'), 'mask_fill');
    patchSites(x.shape, mask.shape, 'mask_fill');
    return x;
  },
  macs: () => 0,
  kernel: {
    kind: 'elementwise',
    apply: (x, at) => {
      const m = at.operand(0, 'mask');
      return add(mul(x, sub(f32(1), m)), mul(at.param('token', at.c), m));
    },
  },
  evaluate([x, mask], weights) {
    const [, c, h, w] = x.shape;
    const [, rows, cols] = mask.shape;
    const token = weights.token.data;
    const result = new Float32Array(x.data.length);
    for (let i = 0; i < result.length; i++) {
      const m = maskAt(i, x.shape, mask.data, rows, cols);
      result[i] = x.data[i] * (1 - m) + token[Math.floor(i / (h * w)) % c] * m;
    }
    return result;
  },
};
