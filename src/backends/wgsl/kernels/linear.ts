// linear over the channels of NHWC rows: out[p, o] = bias[o] + sum_i x[p, i] * W[o, i].
// W is packed transposed, [in, out], so neighbouring invocations read neighbouring weights.
import { boolAttr } from '../../../ir/op.js';
import { anchorKernel } from './anchor.js';
import { nhwc, type WgslKernels } from './kernel.js';

export const linearKernels: WgslKernels = {
  lower(ctx) {
    const { node, inputs, input, weight } = ctx;
    // The output's positions: a pooling prologue makes the input larger than the output.
    const { n, positions } = nhwc(node.type);
    const cin = inputs[0].shape[1];
    const cout = node.attrs.out as number;
    const hasBias = boolAttr(node.attrs, 'bias');
    return [
      anchorKernel(ctx, {
        name: 'linear',
        summary: `linear over channels, ${cin} -> ${cout}${hasBias ? ', + bias' : ''}`,
        batch: n,
        positions,
        outChannels: cout,
        inputChannels: cin,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'weight', access: 'read', buffer: weight('weight') },
          ...(hasBias ? [{ name: 'bias', access: 'read' as const, buffer: weight('bias') }] : []),
        ],
        constants: { CIN: cin },
        gemm: { k: cin, bias: hasBias },
        ...(node.type.shape.length === 2 ? { sample: { bias: hasBias } } : {}),
        value: `
let row = (n * P_OUT + p) * CIN;
var acc = ${hasBias ? 'bias[oc]' : '0.0'};
for (var i = 0u; i < CIN; i++) {
  acc += load_input(row + i, n, i) * weight[i * C_OUT + oc];
}
return acc;`,
      }),
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
