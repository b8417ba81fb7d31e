// conv2d over NHWC. Weights are packed [kh, kw, in/g, out] so neighbouring invocations
// (neighbouring output channels) read neighbouring weights. Fusion is anchor.ts's business.
import { pairAttr, intAttr, boolAttr } from '../../../ir/op.js';
import { anchorKernel } from './anchor.js';
import type { WgslKernels } from './kernel.js';
import type { Attrs } from '../../../ir/types.js';

/** [Ho, Wo] from the input shape, as the shape rule computes them. */
function outputSize(shape: readonly number[], attrs: Attrs): [number, number] {
  const [kh, kw] = pairAttr(attrs, 'kernel');
  const [sh, sw] = pairAttr(attrs, 'stride');
  const [ph, pw] = pairAttr(attrs, 'padding');
  return [Math.floor((shape[2] + 2 * ph - kh) / sh) + 1, Math.floor((shape[3] + 2 * pw - kw) / sw) + 1];
}

export const conv2dKernels: WgslKernels = {
  lower(ctx) {
    const { node, inputs, input, weight } = ctx;
    const [n, cin, h, w] = inputs[0].shape;
    const [cout, ho, wo] = [node.attrs.out as number, ...outputSize(inputs[0].shape, node.attrs)];
    const [kh, kw] = pairAttr(node.attrs, 'kernel');
    const [sh, sw] = pairAttr(node.attrs, 'stride');
    const [ph, pw] = pairAttr(node.attrs, 'padding');
    const groups = intAttr(node.attrs, 'groups');
    const hasBias = boolAttr(node.attrs, 'bias');
    const depthwise = groups === cin && groups === cout;
    return [
      anchorKernel(ctx, {
        name: `conv2d_${depthwise ? 'depthwise_' : ''}${kh}x${kw}${sh > 1 || sw > 1 ? `_s${sh}` : ''}`,
        summary: `${depthwise ? 'depthwise ' : ''}${kh}x${kw} convolution, stride ${sh}x${sw}, padding ${ph}x${pw}, ${cin} -> ${cout} channels${groups > 1 && !depthwise ? `, ${groups} groups` : ''}${hasBias ? ', + bias' : ''}`,
        batch: n,
        positions: ho * wo,
        outChannels: cout,
        inputChannels: cin,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'weight', access: 'read', buffer: weight('weight') },
          ...(hasBias ? [{ name: 'bias', access: 'read' as const, buffer: weight('bias') }] : []),
        ],
        window: { taps: kh * kw, pixel: '(n * H + (p / WO) * SH + tap / KW) * W + (p % WO) * SW + tap % KW', bias: hasBias },
        constants: { H: h, W: w, CIN: cin, WO: wo, KH: kh, KW: kw, SH: sh, SW: sw, PH: ph, PW: pw, CIN_PER_GROUP: cin / groups, COUT_PER_GROUP: cout / groups },
        value: `
let ox = p % WO;
let oy = p / WO;
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
      acc += load_input(pixel + ic, n, first_channel + ic) * weight[(tap + ic) * C_OUT + oc];
    }
  }
}
return acc;`,
      }),
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
