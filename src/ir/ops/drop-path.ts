// Stochastic depth. An identity at inference; kept in the graph so that the model text reads
// like the paper, and removed by the eliminate-drop-path pass.
import { ShapeError, type OpDef } from '../op.js';


export const dropPath: OpDef = {
  name: 'drop_path',
  summary: 'stochastic depth (identity at inference)',
  kind: 'elementwise',
  arity: 1,
  callable: true,
  attrs: [{ name: 'rate', type: 'float', default: 0, doc: 'drop probability in training' }],
  params: () => [],
  infer([x], attrs) {
    const rate = attrs.rate as number;
    if (!(rate >= 0 && rate < 1)) throw new ShapeError(`drop_path rate must be in [0, 1), got ${rate}`);
    return x;
  },
  macs: () => 0,
  // Identity at inference; the passes remove it before kernels are made.
  kernel: { kind: 'elementwise', apply: (x) => x },
  evaluate: ([x]) => x.data,
};
