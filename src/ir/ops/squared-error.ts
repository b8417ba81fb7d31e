// The squared difference of two tensors of one shape, element by element: (x - target)^2.
// (Its binding is named 'expected': 'target' is a reserved word of WGSL.)
import { ShapeError, type OpDef } from '../op.js';
import { formatShape, sameShape } from '../types.js';
import { mul, sub } from '../../kernel/build.js';

export const squaredError: OpDef = {
  name: 'squared_error',
  summary: 'elementwise squared difference (x - target)^2 of two tensors of one shape',
  kind: 'elementwise',
  arity: 2,
  callable: false,
  attrs: [],
  params: () => [],
  infer([x, target]) {
    if (!sameShape(x.shape, target.shape)) throw new ShapeError(`squared_error compares tensors of one shape, got ${formatShape(x.shape)} and ${formatShape(target.shape)}`);
    return x;
  },
  macs: () => 0,
  kernel: {
    kind: 'elementwise',
    apply: (x, at) => {
      const d = sub(x, at.operand(0, 'expected'));
      return mul(d, d);
    },
  },
  evaluate([x, target]) {
    const result = new Float32Array(x.data.length);
    for (let i = 0; i < result.length; i++) result[i] = (x.data[i] - target.data[i]) ** 2;
    return result;
  },
};
