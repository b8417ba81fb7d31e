// 2-D convolution over NCHW, PyTorch's semantics (floor for output sizes). With groups equal
// to the channel count it is the depthwise conv of ConvNeXt blocks.
import {
  boolAttr,
  expectChannels,
  expectRank,
  intAttr,
  pairAttr,
  ShapeError,
  shiftInit,
  type OpDef,
} from '../op.js';
import { numel, type Attrs, type TensorType } from '../types.js';

function geometry(attrs: Attrs) {
  const [kh, kw] = pairAttr(attrs, 'kernel');
  const [sh, sw] = pairAttr(attrs, 'stride');
  const [ph, pw] = pairAttr(attrs, 'padding');
  return { kh, kw, sh, sw, ph, pw, groups: intAttr(attrs, 'groups') };
}

export const conv2d: OpDef = {
  name: 'conv2d',
  summary: '2-D convolution (NCHW); groups = channels makes it depthwise',
  kind: 'out-elementwise-fusable',
  channelEpilogue: true,
  // A LayerNorm before an unpadded, ungrouped conv normalises each input pixel of the window as
  // the kernel stages it (padding would have to stay zero after normalisation).
  channelPrologue: (attrs) => pairAttr(attrs, 'padding').every((p) => p === 0) && intAttr(attrs, 'groups') === 1,
  readsInputElementwise: (attrs) => pairAttr(attrs, 'padding').every((p) => p === 0),
  arity: 1,
  callable: true,
  attrs: [
    { name: 'in', type: 'int', doc: 'input channels' },
    { name: 'out', type: 'int', doc: 'output channels' },
    { name: 'kernel', type: 'int-pair', doc: 'kernel size, k or [kh, kw]' },
    { name: 'stride', type: 'int-pair', default: [1, 1], doc: 'stride, s or [sh, sw]' },
    { name: 'padding', type: 'int-pair', default: [0, 0], doc: 'zero padding, p or [ph, pw]' },
    { name: 'groups', type: 'int', default: 1, doc: 'channel groups' },
    { name: 'bias', type: 'bool', default: true, doc: 'whether a bias is added' },
  ],
  params(attrs) {
    const { kh, kw, groups } = geometry(attrs);
    const cin = intAttr(attrs, 'in');
    const cout = intAttr(attrs, 'out');
    const fanIn = Math.max(1, Math.floor(cin / groups) * kh * kw);
    const weight = { role: 'weight', suffix: 'weight', shape: [cout, Math.floor(cin / groups), kh, kw], init: { kind: 'fan-in', fanIn } } as const;
    return boolAttr(attrs, 'bias') ? [weight, { role: 'bias', suffix: 'bias', shape: [cout], init: shiftInit }] : [weight];
  },
  infer([x], attrs) {
    const { kh, kw, sh, sw, ph, pw, groups } = geometry(attrs);
    const cin = intAttr(attrs, 'in');
    const cout = intAttr(attrs, 'out');
    if (cin < 1 || cout < 1) throw new ShapeError(`conv2d needs at least one input and output channel, got in=${cin}, out=${cout}`);
    if (kh < 1 || kw < 1) throw new ShapeError(`conv2d kernel must be at least 1, got [${kh}, ${kw}]`);
    if (sh < 1 || sw < 1) throw new ShapeError(`conv2d stride must be at least 1, got [${sh}, ${sw}]`);
    if (ph < 0 || pw < 0) throw new ShapeError(`conv2d padding cannot be negative, got [${ph}, ${pw}]`);
    if (groups < 1 || cin % groups !== 0 || cout % groups !== 0) {
      throw new ShapeError(`conv2d groups=${groups} must divide both in=${cin} and out=${cout}`);
    }
    expectRank(x, 4, 'conv2d');
    expectChannels(x, cin, 'conv2d');
    const [n, , h, w] = x.shape;
    const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
    const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
    if (ho < 1 || wo < 1) {
      throw new ShapeError(
        `conv2d with kernel [${kh}, ${kw}] and padding [${ph}, ${pw}] does not fit a ${h}x${w} input; ` +
          `use a larger input size (--size) or fewer downsampling steps`,
      );
    }
    return { shape: [n, cout, ho, wo], dtype: x.dtype };
  },
  macs([x], out, attrs) {
    const { kh, kw, groups } = geometry(attrs);
    return numel(out.shape) * (x.shape[1] / groups) * kh * kw;
  },
  kernel: {
    kind: 'contraction',
    contraction: (attrs) => ({
      kernel: pairAttr(attrs, 'kernel'),
      stride: pairAttr(attrs, 'stride'),
      padding: pairAttr(attrs, 'padding'),
      groups: intAttr(attrs, 'groups'),
      inChannels: intAttr(attrs, 'in'),
      outChannels: intAttr(attrs, 'out'),
      weight: 'weight',
      ...(boolAttr(attrs, 'bias') ? { bias: 'bias' } : {}),
    }),
  },
  evaluate([x], weights, attrs, out) {
    const { kh, kw, sh, sw, ph, pw, groups } = geometry(attrs);
    const [n, cin, h, w] = x.shape;
    const [, cout, ho, wo] = out.shape;
    const cinPerGroup = cin / groups;
    const coutPerGroup = cout / groups;
    const wt = weights.weight.data;
    const bias = weights.bias?.data;
    const result = new Float32Array(numel(out.shape));
    // Accumulate in f64 so the reference is as exact as the goldens it is compared with.
    const acc = new Float64Array(ho * wo);
    for (let b = 0; b < n; b++) {
      for (let oc = 0; oc < cout; oc++) {
        acc.fill(bias ? bias[oc] : 0);
        const g = Math.floor(oc / coutPerGroup);
        for (let ic = 0; ic < cinPerGroup; ic++) {
          const plane = (b * cin + g * cinPerGroup + ic) * h * w;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const wv = wt[((oc * cinPerGroup + ic) * kh + ky) * kw + kx];
              // Output columns whose input column lies inside the image (the rest read padding).
              const oxFirst = Math.max(0, Math.ceil((pw - kx) / sw));
              const oxLast = Math.min(wo - 1, Math.floor((w - 1 + pw - kx) / sw));
              for (let oy = 0; oy < ho; oy++) {
                const iy = oy * sh - ph + ky;
                if (iy < 0 || iy >= h) continue;
                const row = plane + iy * w - pw + kx;
                const outRow = oy * wo;
                for (let ox = oxFirst; ox <= oxLast; ox++) acc[outRow + ox] += wv * x.data[row + ox * sw];
              }
            }
          }
        }
        result.set(acc, (b * cout + oc) * ho * wo);
      }
    }
    return result;
  },
};
