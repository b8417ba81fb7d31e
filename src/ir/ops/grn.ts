// Global Response Normalization (ConvNeXt V2): per sample, each channel's L2 norm over H and W,
// divided by that norm's mean over channels (+ eps); out = gamma * (x * Nx) + beta + x.
// With over_batch, each channel's norm spans the whole batch's positions instead, as GRN on a
// MinkowskiEngine sparse tensor does (FCMAE's encoder): one Nx for every sample.
import { expectChannels, expectRank, intAttr, ShapeError, type OpDef } from '../op.js';
import { numel, type Attrs, type HostTensor } from '../types.js';


export const grn: OpDef = {
  name: 'grn',
  summary: 'Global Response Normalization (ConvNeXt V2)',
  kind: 'reduction',
  reduces: 'spatial',
  arity: 1,
  callable: true,
  attrs: [
    { name: 'dim', type: 'int', doc: 'channels' },
    { name: 'eps', type: 'float', default: 1e-6, doc: "added to the norms' channel mean" },
    { name: 'over_batch', type: 'bool', default: false, doc: "take each channel's norm over every sample's positions, not each sample's" },
  ],
  params(attrs) {
    const dim = intAttr(attrs, 'dim');
    // Official checkpoints store these as [1, 1, 1, dim] and timm's as [dim]; both load.
    const init = { kind: 'uniform', lo: -1, hi: 1 } as const;
    return [
      { role: 'gamma', suffix: 'gamma', shape: [dim], init },
      { role: 'beta', suffix: 'beta', shape: [dim], init },
    ];
  },
  infer([x], attrs) {
    if (!((attrs.eps as number) > 0)) throw new ShapeError(`grn eps must be positive, got ${String(attrs.eps)}`);
    expectRank(x, 4, 'grn');
    expectChannels(x, intAttr(attrs, 'dim'), 'grn');
    return x;
  },
  macs: () => 0,
  // Kernels see GRN as its statistics and its apply step (grn_stats, grn_apply).
  kernel: { kind: 'split', pass: 'split-grn' },
  evaluate([x], weights, attrs, out) {
    const [n, c, h, w] = x.shape;
    const positions = h * w;
    const gamma = weights.gamma.data;
    const beta = weights.beta.data;
    const result = new Float32Array(numel(out.shape));
    const nxs = grnScales(x, attrs);
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const nx = nxs[b * c + ch];
        const plane = (b * c + ch) * positions;
        for (let p = 0; p < positions; p++) {
          const v = x.data[plane + p];
          result[plane + p] = gamma[ch] * (v * nx) + beta[ch] + v;
        }
      }
    }
    return result;
  },
};

/**
 * GRN's Nx per (sample, channel), [N, C]: each channel's L2 norm over H and W (over every
 * sample's, with over_batch), divided by the mean of those norms over channels + eps.
 */
export function grnScales(x: HostTensor, attrs: Attrs): Float64Array {
  const [n, c, h, w] = x.shape;
  const positions = h * w;
  const eps = attrs.eps as number;
  const sums = new Float64Array(n * c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const plane = (b * c + ch) * positions;
      let sumSq = 0;
      for (let p = 0; p < positions; p++) sumSq += x.data[plane + p] * x.data[plane + p];
      sums[b * c + ch] = sumSq;
    }
  }
  const groups = attrs.over_batch === true ? [[...Array(n).keys()]] : [...Array(n).keys()].map((b) => [b]);
  const scales = new Float64Array(n * c);
  for (const samples of groups) {
    const norms = Array.from({ length: c }, (_, ch) => Math.sqrt(samples.reduce((sum, b) => sum + sums[b * c + ch], 0)));
    const meanNorm = norms.reduce((sum, v) => sum + v, 0) / c;
    for (const b of samples) for (let ch = 0; ch < c; ch++) scales[b * c + ch] = norms[ch] / (meanNorm + eps);
  }
  return scales;
}
