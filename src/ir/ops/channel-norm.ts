// Normalisation over channels without an affine step: each position's values less their mean,
// over their standard deviation (+ eps inside the root). With `unbiased` the variance divides
// by C - 1, as torch's var() does: FCMAE's norm_pix_loss normalises each patch's target so.
import { ShapeError, type OpDef } from '../op.js';
import { numel } from '../types.js';
import { add, div, f32, mul, rsqrt, sub } from '../../kernel/build.js';

export const channelNorm: OpDef = {
  name: 'channel_norm',
  summary: 'normalises each position over channels: (x - mean) / sqrt(variance + eps), no affine step',
  kind: 'reduction',
  reduces: 'channels',
  arity: 1,
  callable: false,
  attrs: [
    { name: 'eps', type: 'float', default: 1e-6, doc: 'added to the variance' },
    { name: 'unbiased', type: 'bool', default: false, doc: 'divide the squared deviations by C - 1 (torch var()), not C' },
  ],
  params: () => [],
  infer([x], attrs) {
    if (!((attrs.eps as number) >= 0)) throw new ShapeError(`channel_norm eps must not be negative, got ${String(attrs.eps)}`);
    if (x.shape.length < 2) throw new ShapeError(`channel_norm needs a tensor with a channel axis, got shape [${x.shape.join(', ')}]`);
    if (attrs.unbiased === true && x.shape[1] < 2) throw new ShapeError('channel_norm with an unbiased variance needs at least two channels');
    return x;
  },
  macs: () => 0,
  kernel: {
    kind: 'reduction',
    over: 'channels',
    stats: [
      { name: 'mean', term: (x) => x, finish: (sum, count) => div(sum, count) },
      {
        name: 'inv',
        term: (x, s) => mul(sub(x, s.mean), sub(x, s.mean)),
        finish: (sum, count, _s, attrs) => rsqrt(add(div(sum, attrs.unbiased === true ? sub(count, f32(1)) : count), f32(attrs.eps as number, 'EPS'))),
        centredOn: 'mean',
      },
    ],
    apply: (x, s) => mul(sub(x, s.mean), s.inv),
  },
  evaluate([x], _weights, attrs, out) {
    const [n, c] = x.shape;
    const positions = numel(x.shape.slice(2));
    const eps = attrs.eps as number;
    const divisor = attrs.unbiased === true ? c - 1 : c;
    const result = new Float32Array(numel(out.shape));
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < positions; p++) {
        const base = b * c * positions + p;
        let mean = 0;
        for (let ch = 0; ch < c; ch++) mean += x.data[base + ch * positions];
        mean /= c;
        let squares = 0;
        for (let ch = 0; ch < c; ch++) squares += (x.data[base + ch * positions] - mean) ** 2;
        const std = Math.sqrt(squares / divisor + eps);
        for (let ch = 0; ch < c; ch++) result[base + ch * positions] = (x.data[base + ch * positions] - mean) / std;
      }
    }
    return result;
  },
};
