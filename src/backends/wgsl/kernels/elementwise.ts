// Elementwise ops: GELU, the residual add and layer scale.
import { nhwc, type WgslKernels } from './kernel.js';

/**
 * erf for f32: Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7, which is under f32's
 * own rounding at the magnitudes GELU sees. WGSL has no built-in erf.
 */
export const erfHelper = `
fn erf_approx(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-x * x));
}`;

export const geluKernels: WgslKernels = {
  lower({ node, input, output }) {
    const count = node.type.shape.reduce((a, b) => a * b, 1);
    return [
      {
        name: 'gelu',
        summary: 'GELU with erf: x * 0.5 * (1 + erf(x / sqrt(2)))',
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: count,
        constants: {},
        helpers: [erfHelper],
        body: `
let x = input[index];
output[index] = 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));`,
      },
    ];
  },
};

export const addKernels: WgslKernels = {
  lower({ node, input, output }) {
    const count = node.type.shape.reduce((a, b) => a * b, 1);
    return [
      {
        name: 'residual_add',
        summary: 'elementwise sum (residual connection)',
        bindings: [
          { name: 'shortcut', access: 'read', buffer: input(0) },
          { name: 'branch', access: 'read', buffer: input(1) },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: count,
        constants: {},
        body: 'output[index] = shortcut[index] + branch[index];',
      },
    ];
  },
};

export const layerScaleKernels: WgslKernels = {
  lower({ node, input, weight, output }) {
    const { n, positions, channels } = nhwc(node.type);
    return [
      {
        name: 'layer_scale',
        summary: `per-channel scale over ${channels} channels`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'scale', access: 'read', buffer: weight('scale') },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * positions * channels,
        constants: { C: channels },
        body: 'output[index] = input[index] * scale[index % C];',
      },
    ];
  },
};
