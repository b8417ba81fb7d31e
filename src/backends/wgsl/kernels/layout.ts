// Layout changes at the model's edges: users pass NCHW (as PyTorch does); kernels use NHWC.
import type { TensorType } from '../../../ir/types.js';
import type { BufferRef, KernelSpec } from '../program.js';

export function nchwToNhwc(type: TensorType, from: BufferRef, to: BufferRef): KernelSpec {
  const [n, c, h, w] = type.shape;
  return {
    name: 'nchw_to_nhwc',
    summary: `input layout change, [${n}, ${c}, ${h}, ${w}] NCHW -> NHWC`,
    bindings: [
      { name: 'input', access: 'read', buffer: from },
      { name: 'output', access: 'read_write', buffer: to },
    ],
    invocations: n * c * h * w,
    constants: { C: c, H: h, W: w },
    body: `
let c = index % C;
let x = (index / C) % W;
let y = (index / (C * W)) % H;
let n = index / (C * W * H);
output[index] = input[((n * C + c) * H + y) * W + x];`,
  };
}

export function nhwcToNchw(type: TensorType, from: BufferRef, to: BufferRef): KernelSpec {
  const [n, c, h, w] = type.shape;
  return {
    name: 'nhwc_to_nchw',
    summary: `output layout change, [${n}, ${c}, ${h}, ${w}] NHWC -> NCHW`,
    bindings: [
      { name: 'input', access: 'read', buffer: from },
      { name: 'output', access: 'read_write', buffer: to },
    ],
    invocations: n * c * h * w,
    constants: { C: c, H: h, W: w },
    body: `
let x = index % W;
let y = (index / W) % H;
let c = (index / (W * H)) % C;
let n = index / (W * H * C);
output[index] = input[((n * H + y) * W + x) * C + c];`,
  };
}
