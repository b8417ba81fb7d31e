// Mean over H and W: [N, C, H, W] -> [N, C], as ConvNeXt's x.mean([-2, -1]) before its head.
import { expectRank, type OpDef } from '../op.js';
import { div } from '../../kernel/build.js';

export const globalAvgPool: OpDef = {
  name: 'global_avg_pool',
  summary: 'mean over the spatial axes, [N, C, H, W] -> [N, C]',
  kind: 'reduction',
  reduces: 'spatial',
  arity: 1,
  callable: true,
  attrs: [],
  params: () => [],
  infer([x]) {
    expectRank(x, 4, 'global_avg_pool');
    return { shape: [x.shape[0], x.shape[1]], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: { kind: 'reduction', over: 'spatial', stats: [{ name: 'mean', term: (x) => x, finish: (sum, count) => div(sum, count) }] },
  evaluate([x]) {
    const [n, c, h, w] = x.shape;
    const positions = h * w;
    const result = new Float32Array(n * c);
    for (let plane = 0; plane < n * c; plane++) {
      let sum = 0;
      for (let p = 0; p < positions; p++) sum += x.data[plane * positions + p];
      result[plane] = sum / positions;
    }
    return result;
  },
};
