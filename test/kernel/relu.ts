// A ReLU op that exists only in tests: how the tests show that adding an elementwise op
// needs its definition and nothing else (new-op.test.ts), and that the op tables notice
// what such an op still lacks (op-tables.test.ts).
import { f32, max } from '../../src/kernel/build.js';
import { noMacs, noParams, type OpDef } from '../../src/ir/op.js';

export const relu: OpDef = {
  name: 'relu',
  summary: 'max(x, 0)',
  kind: 'elementwise',
  arity: 1,
  callable: true,
  attrs: [],
  params: noParams,
  infer: ([x]) => x,
  macs: noMacs,
  kernel: { kind: 'elementwise', apply: (x) => max(x, f32(0)) },
  evaluate: ([x]) => x.data.map((v) => Math.max(v, 0)),
};
