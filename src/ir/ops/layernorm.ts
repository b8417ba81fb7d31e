// LayerNorm over the channel axis: ConvNeXt's channels_first LayerNorm, and nn.LayerNorm on
// channels-last data, are the same operation on the logical NCHW tensor.
import { expectChannels, intAttr, scaleInit, ShapeError, shiftInit, type OpDef } from '../op.js';
import { numel } from '../types.js';
import { add, div, f32, mul, rsqrt, sub } from '../../kernel/build.js';

export const layernorm: OpDef = {
  name: 'layernorm',
  summary: 'LayerNorm over channels, biased variance, affine',
  kind: 'reduction',
  reduces: 'channels',
  arity: 1,
  callable: true,
  attrs: [
    { name: 'dim', type: 'int', doc: 'channels normalised over' },
    { name: 'eps', type: 'float', default: 1e-6, doc: 'added to the variance' },
  ],
  params(attrs) {
    const dim = intAttr(attrs, 'dim');
    return [
      { role: 'weight', suffix: 'weight', shape: [dim], init: scaleInit },
      { role: 'bias', suffix: 'bias', shape: [dim], init: shiftInit },
    ];
  },
  infer([x], attrs) {
    if (!((attrs.eps as number) > 0)) throw new ShapeError(`layernorm eps must be positive, got ${String(attrs.eps)}`);
    expectChannels(x, intAttr(attrs, 'dim'), 'layernorm');
    return x;
  },
  macs: () => 0,
  kernel: {
    kind: 'reduction',
    over: 'channels',
    stats: [
      { name: 'mean', term: (x) => x, finish: (sum, count) => div(sum, count) },
      { name: 'inv', term: (x, s) => mul(sub(x, s.mean), sub(x, s.mean)), finish: (sum, count, _s, attrs) => rsqrt(add(div(sum, count), f32(attrs.eps as number, 'EPS'))), centredOn: 'mean' },
    ],
    apply: (x, s, at) => add(mul(mul(sub(x, s.mean), s.inv), at.param('weight', at.c)), at.param('bias', at.c)),
  },
  evaluate([x], weights, attrs, out) {
    const [n, c] = x.shape;
    const positions = numel(x.shape.slice(2));
    const eps = attrs.eps as number;
    const gamma = weights.weight.data;
    const beta = weights.bias.data;
    const result = new Float32Array(numel(out.shape));
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < positions; p++) {
        const base = b * c * positions + p;
        let mean = 0;
        for (let ch = 0; ch < c; ch++) mean += x.data[base + ch * positions];
        mean /= c;
        let variance = 0;
        for (let ch = 0; ch < c; ch++) {
          const d = x.data[base + ch * positions] - mean;
          variance += d * d;
        }
        const inv = 1 / Math.sqrt(variance / c + eps);
        for (let ch = 0; ch < c; ch++) {
          const i = base + ch * positions;
          result[i] = (x.data[i] - mean) * inv * gamma[ch] + beta[ch];
        }
      }
    }
    return result;
  },
};
