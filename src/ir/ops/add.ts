// The residual add. The language writes it as `residual { ... }`, never as a call.
import { ShapeError, type OpDef } from '../op.js';
import { formatShape, sameShape } from '../types.js';
import { add as plus } from '../../kernel/build.js';

export const add: OpDef = {
  name: 'add',
  summary: 'elementwise sum of two tensors of one shape (residual connections)',
  kind: 'elementwise',
  commutative: true,
  arity: 2,
  callable: false,
  attrs: [],
  params: () => [],
  infer([a, b]) {
    if (!sameShape(a.shape, b.shape)) {
      throw new ShapeError(`a residual connection needs its body to keep the shape ${formatShape(a.shape)}, but it gives ${formatShape(b.shape)}`);
    }
    return a;
  },
  macs: () => 0,
  kernel: { kind: 'elementwise', apply: (x, at) => plus(x, at.operand(0, 'shortcut')) },
  evaluate([a, b]) {
    const result = new Float32Array(a.data.length);
    for (let i = 0; i < result.length; i++) result[i] = a.data[i] + b.data[i];
    return result;
  },
};
