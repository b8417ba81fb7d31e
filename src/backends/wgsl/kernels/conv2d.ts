// conv2d over NHWC: one invocation per output element. Weights are packed [kh, kw, in/g, out]
// so neighbouring invocations (neighbouring output channels) read neighbouring weights.
import { pairAttr, intAttr, boolAttr } from '../../../ir/op.js';
import type { WgslKernels } from './kernel.js';

export const conv2dKernels: WgslKernels = {
  lower({ node, inputs, input, weight, output }) {
    const [n, cin, h, w] = inputs[0].shape;
    const [, cout, ho, wo] = node.type.shape;
    const [kh, kw] = pairAttr(node.attrs, 'kernel');
    const [sh, sw] = pairAttr(node.attrs, 'stride');
    const [ph, pw] = pairAttr(node.attrs, 'padding');
    const groups = intAttr(node.attrs, 'groups');
    const hasBias = boolAttr(node.attrs, 'bias');
    const depthwise = groups === cin && groups === cout;
    const name = `conv2d_${depthwise ? 'depthwise_' : ''}${kh}x${kw}${sh > 1 || sw > 1 ? `_s${sh}` : ''}`;
    return [
      {
        name,
        summary: `${depthwise ? 'depthwise ' : ''}${kh}x${kw} convolution, stride ${sh}x${sw}, padding ${ph}x${pw}, ${cin} -> ${cout} channels${groups > 1 && !depthwise ? `, ${groups} groups` : ''}${hasBias ? ', + bias' : ''}`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'weight', access: 'read', buffer: weight('weight') },
          ...(hasBias ? [{ name: 'bias', access: 'read' as const, buffer: weight('bias') }] : []),
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * ho * wo * cout,
        constants: { H: h, W: w, CIN: cin, HO: ho, WO: wo, COUT: cout, KH: kh, KW: kw, SH: sh, SW: sw, PH: ph, PW: pw, CIN_PER_GROUP: cin / groups, COUT_PER_GROUP: cout / groups },
        body: `
let oc = index % COUT;
let ox = (index / COUT) % WO;
let oy = (index / (COUT * WO)) % HO;
let n = index / (COUT * WO * HO);
let first_channel = (oc / COUT_PER_GROUP) * CIN_PER_GROUP;
var acc = ${hasBias ? 'bias[oc]' : '0.0'};
for (var ky = 0u; ky < KH; ky++) {
  let iy = i32(oy * SH + ky) - i32(PH);
  if (iy < 0 || iy >= i32(H)) { continue; }
  for (var kx = 0u; kx < KW; kx++) {
    let ix = i32(ox * SW + kx) - i32(PW);
    if (ix < 0 || ix >= i32(W)) { continue; }
    let pixel = ((n * H + u32(iy)) * W + u32(ix)) * CIN + first_channel;
    let tap = (ky * KW + kx) * CIN_PER_GROUP;
    for (var ic = 0u; ic < CIN_PER_GROUP; ic++) {
      acc += input[pixel + ic] * weight[(tap + ic) * COUT + oc];
    }
  }
}
output[index] = acc;`,
      },
    ];
  },
  packing: (role) =>
    role !== 'weight'
      ? undefined
      : {
          layout: '[out, in/g, kh, kw] -> [kh, kw, in/g, out]',
          pack(tensor) {
            const [cout, cinPerGroup, kh, kw] = tensor.shape;
            const data = new Float32Array(tensor.data.length);
            for (let o = 0; o < cout; o++)
              for (let i = 0; i < cinPerGroup; i++)
                for (let y = 0; y < kh; y++)
                  for (let x = 0; x < kw; x++) data[((y * kw + x) * cinPerGroup + i) * cout + o] = tensor.data[((o * cinPerGroup + i) * kh + y) * kw + x];
            return data;
          },
        },
};
