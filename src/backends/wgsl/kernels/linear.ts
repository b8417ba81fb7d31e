// linear over the channels of NHWC rows: out[p, o] = bias[o] + sum_i x[p, i] * W[o, i].
// W is packed transposed, [in, out], so neighbouring invocations read neighbouring weights.
import { boolAttr } from '../../../ir/op.js';
import { nhwc, type WgslKernels } from './kernel.js';

export const linearKernels: WgslKernels = {
  lower({ node, inputs, input, weight, output }) {
    const { n, positions, channels: cin } = nhwc(inputs[0]);
    const cout = node.type.shape[1];
    const hasBias = boolAttr(node.attrs, 'bias');
    return [
      {
        name: 'linear',
        summary: `linear over channels, ${cin} -> ${cout}${hasBias ? ', + bias' : ''}`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'weight', access: 'read', buffer: weight('weight') },
          ...(hasBias ? [{ name: 'bias', access: 'read' as const, buffer: weight('bias') }] : []),
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * positions * cout,
        constants: { CIN: cin, COUT: cout },
        body: `
let o = index % COUT;
let row = (index / COUT) * CIN;
var acc = ${hasBias ? 'bias[o]' : '0.0'};
for (var i = 0u; i < CIN; i++) {
  acc += input[row + i] * weight[i * COUT + o];
}
output[index] = acc;`,
      },
    ];
  },
  packing: (role) =>
    role !== 'weight'
      ? undefined
      : {
          layout: '[out, in] -> [in, out]',
          pack(tensor) {
            const [cout, cin] = tensor.shape;
            const data = new Float32Array(tensor.data.length);
            for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) data[i * cout + o] = tensor.data[o * cin + i];
            return data;
          },
        },
};
