// ConvNeXt V1's layer scale: a learnt per-channel multiplier on the block's branch. The weight
// is named by the node itself (official key "stages.i.j.gamma"), not "<name>.weight".
import { expectChannels, intAttr, type OpDef } from '../op.js';
import { mul } from '../../kernel/build.js';

export const layerScale: OpDef = {
  name: 'layer_scale',
  summary: 'per-channel learnt scale (ConvNeXt V1 layer scale)',
  kind: 'broadcast',
  arity: 1,
  callable: true,
  attrs: [
    { name: 'dim', type: 'int', doc: 'channels' },
    { name: 'init', type: 'float', default: 1e-6, doc: 'initial value in training (documentation only)' },
  ],
  params: (attrs) => [{ role: 'scale', suffix: '', shape: [intAttr(attrs, 'dim')], init: { kind: 'uniform', lo: 0.2, hi: 1 } }],
  infer([x], attrs) {
    expectChannels(x, intAttr(attrs, 'dim'), 'layer_scale');
    return x;
  },
  macs: () => 0,
  kernel: { kind: 'elementwise', apply: (x, at) => mul(x, at.param('scale', at.c)) },
  evaluate([x], weights) {
    const [n, c] = x.shape;
    const positions = x.data.length / (n * c);
    const scale = weights.scale.data;
    const result = new Float32Array(x.data.length);
    for (let i = 0; i < result.length; i++) result[i] = x.data[i] * scale[Math.floor(i / positions) % c];
    return result;
  },
};
