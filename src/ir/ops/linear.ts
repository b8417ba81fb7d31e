// A linear layer over the channel axis: PyTorch's nn.Linear applied channels-last, which is
// the same as a 1x1 convolution. Works on [N, C, H, W] and on pooled [N, C].
import { boolAttr, expectChannels, intAttr, ShapeError, shiftInit, type OpDef } from '../op.js';
import { numel } from '../types.js';

export const linear: OpDef = {
  name: 'linear',
  summary: 'linear layer over channels (a 1x1 / pointwise convolution)',
  kind: 'out-elementwise-fusable',
  readsInputElementwise: () => true,
  // On pooled [N, C] inputs a workgroup owns a sample and normalises (or pools) it as it
  // loads. Whether a sample's C values fit the target's workgroup memory is the fusion pass's
  // question to the target, not the op's.
  channelPrologue: (_attrs, input) => input.shape.length === 2,
  spatialPrologue: (_attrs, input) => input.shape.length === 2,
  arity: 1,
  callable: true,
  attrs: [
    { name: 'in', type: 'int', doc: 'input features (channels)' },
    { name: 'out', type: 'int', doc: 'output features (channels)' },
    { name: 'bias', type: 'bool', default: true, doc: 'whether a bias is added' },
  ],
  params(attrs) {
    const cin = intAttr(attrs, 'in');
    const cout = intAttr(attrs, 'out');
    const weight = { role: 'weight', suffix: 'weight', shape: [cout, cin], init: { kind: 'fan-in', fanIn: Math.max(1, cin) } } as const;
    return boolAttr(attrs, 'bias') ? [weight, { role: 'bias', suffix: 'bias', shape: [cout], init: shiftInit }] : [weight];
  },
  infer([x], attrs) {
    const cin = intAttr(attrs, 'in');
    const cout = intAttr(attrs, 'out');
    if (cin < 1 || cout < 1) throw new ShapeError(`linear needs at least one input and output feature, got in=${cin}, out=${cout}`);
    expectChannels(x, cin, 'linear');
    const shape = [...x.shape];
    shape[1] = cout;
    return { shape, dtype: x.dtype };
  },
  macs([x], out) {
    return numel(out.shape) * x.shape[1];
  },
  kernel: {
    kind: 'contraction',
    // A 1x1 convolution; the weight [out, in] is [out, in, 1, 1] without the unit axes.
    contraction: (attrs) => ({
      kernel: [1, 1],
      stride: [1, 1],
      padding: [0, 0],
      groups: 1,
      inChannels: intAttr(attrs, 'in'),
      outChannels: intAttr(attrs, 'out'),
      weight: 'weight',
      ...(boolAttr(attrs, 'bias') ? { bias: 'bias' } : {}),
    }),
  },
  evaluate([x], weights, attrs, out) {
    const [n, cin] = x.shape;
    const cout = out.shape[1];
    const positions = numel(x.shape.slice(2));
    const wt = weights.weight.data;
    const bias = weights.bias?.data;
    const result = new Float32Array(numel(out.shape));
    const acc = new Float64Array(positions);
    for (let b = 0; b < n; b++) {
      for (let o = 0; o < cout; o++) {
        acc.fill(bias ? bias[o] : 0);
        for (let i = 0; i < cin; i++) {
          const wv = wt[o * cin + i];
          const plane = (b * cin + i) * positions;
          for (let p = 0; p < positions; p++) acc[p] += wv * x.data[plane + p];
        }
        result.set(acc, (b * cout + o) * positions);
      }
    }
    return result;
  },
};
