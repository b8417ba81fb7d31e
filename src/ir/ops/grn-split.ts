// GRN in two parts, as the fusion passes split it: the statistics (a reduction over H and W,
// then over channels) and the apply step, which is a per-(sample, channel) scale and shift:
//   Nx = norm / (mean norm + eps);   GRN(x) = gamma * (x * Nx) + beta + x = x * (1 + gamma * Nx) + beta
// so it can be folded into the next pointwise layer's input.
import { expectChannels, expectRank, intAttr, ShapeError, type OpDef } from '../op.js';
import { formatShape, numel, sameShape } from '../types.js';
import { grn, grnScales } from './grn.js';
import { add, div, f32, mul, sqrt } from '../../kernel/build.js';

export const grnStats: OpDef = {
  name: 'grn_stats',
  summary: "GRN statistics: each (sample, channel)'s L2 norm over H, W (and N, over the batch) divided by the mean norm over channels (+ eps)",
  kind: 'reduction',
  reduces: 'spatial',
  arity: 1,
  callable: false,
  attrs: [
    { name: 'dim', type: 'int', doc: 'channels' },
    { name: 'eps', type: 'float', default: 1e-6, doc: "added to the norms' channel mean" },
    { name: 'over_batch', type: 'bool', default: false, doc: "each channel's norm over every sample's positions (the same Nx for all)" },
  ],
  params: () => [],
  infer([x], attrs) {
    expectRank(x, 4, 'grn_stats');
    expectChannels(x, intAttr(attrs, 'dim'), 'grn_stats');
    return { shape: [x.shape[0], x.shape[1]], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: {
    kind: 'reduction',
    over: 'spatial',
    stats: [{ name: 'norm', term: (x) => mul(x, x), finish: (sum) => sqrt(sum) }],
    spansBatch: (attrs) => attrs.over_batch === true,
    then: {
      kind: 'reduction',
      over: 'channels',
      stats: [{ name: 'mean', term: (norm) => norm, finish: (sum, count) => div(sum, count) }],
      apply: (norm, s, _at, attrs) => div(norm, add(s.mean, f32(attrs.eps as number, 'EPS'))),
    },
  },
  evaluate([x], _weights, attrs) {
    return Float32Array.from(grnScales(x, attrs));
  },
};

export const grnApply: OpDef = {
  name: 'grn_apply',
  summary: 'GRN apply: gamma * (x * Nx) + beta + x, with Nx from grn_stats',
  kind: 'broadcast',
  arity: 2,
  callable: false,
  attrs: [{ name: 'dim', type: 'int', doc: 'channels' }],
  // The same weights, under the same names, as the grn node it came from.
  params: (attrs) => grn.params({ dim: attrs.dim, eps: 1e-6 }),
  infer([x, nx], attrs) {
    expectRank(x, 4, 'grn_apply');
    expectChannels(x, intAttr(attrs, 'dim'), 'grn_apply');
    if (!sameShape(nx.shape, [x.shape[0], x.shape[1]])) throw new ShapeError(`grn_apply needs statistics of shape ${formatShape([x.shape[0], x.shape[1]])}, got ${formatShape(nx.shape)}`);
    return x;
  },
  macs: () => 0,
  kernel: {
    kind: 'elementwise',
    apply: (x, at) => add(add(mul(at.param('gamma', at.c), mul(x, at.operand(0, 'nx'))), at.param('beta', at.c)), x),
  },
  evaluate([x, nx], weights, _attrs, out) {
    const [n, c, h, w] = x.shape;
    const positions = h * w;
    const gamma = weights.gamma.data;
    const beta = weights.beta.data;
    const result = new Float32Array(numel(out.shape));
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const scale = nx.data[b * c + ch];
        const plane = (b * c + ch) * positions;
        for (let p = 0; p < positions; p++) {
          const v = x.data[plane + p];
          result[plane + p] = gamma[ch] * (v * scale) + beta[ch] + v;
        }
      }
    }
    return result;
  },
};
