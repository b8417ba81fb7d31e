// LayerNorm over channels and GRN. In NHWC a pixel's channels are contiguous, so LayerNorm is
// one invocation per pixel. GRN needs statistics over H*W and then over channels before it
// can be applied, so unfused it takes three kernels.
import type { KernelSpec } from '../program.js';
import type { WgslKernels } from './kernel.js';
import { nhwc } from './kernel.js';
import { reductionVars, workgroupSum } from './reduce.js';

export const layernormKernels: WgslKernels = {
  lower({ node, inputs, input, weight, output }) {
    const { n, positions, channels } = nhwc(inputs[0]);
    return [
      {
        name: 'layernorm_channels',
        summary: `LayerNorm over ${channels} channels (biased variance), affine`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'gamma', access: 'read', buffer: weight('weight') },
          { name: 'beta', access: 'read', buffer: weight('bias') },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * positions,
        constants: { C: channels },
        floats: { EPS: node.attrs.eps as number },
        body: `
let base = index * C;
var mean = 0.0;
for (var c = 0u; c < C; c++) { mean += input[base + c]; }
mean /= f32(C);
var variance = 0.0;
for (var c = 0u; c < C; c++) {
  let d = input[base + c] - mean;
  variance += d * d;
}
let inv = inverseSqrt(variance / f32(C) + EPS);
for (var c = 0u; c < C; c++) {
  output[base + c] = (input[base + c] - mean) * inv * gamma[c] + beta[c];
}`,
      },
    ];
  },
};

export const grnKernels: WgslKernels = {
  lower({ node, inputs, input, weight, scratch, output }): KernelSpec[] {
    const { n, positions, channels } = nhwc(inputs[0]);
    const norms = scratch('norms', n * channels);
    const means = scratch('means', n);
    return [
      {
        name: 'grn_norms',
        summary: `GRN step 1 of 3: each (sample, channel)'s L2 norm over ${positions} positions`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'norms', access: 'read_write', buffer: norms },
        ],
        invocations: n * channels,
        constants: { C: channels, P: positions },
        body: `
let c = index % C;
let n = index / C;
var sum = 0.0;
for (var p = 0u; p < P; p++) {
  let v = input[(n * P + p) * C + c];
  sum += v * v;
}
norms[index] = sqrt(sum);`,
      },
      {
        name: 'grn_mean',
        summary: `GRN step 2 of 3: each sample's mean norm over ${channels} channels`,
        bindings: [
          { name: 'norms', access: 'read', buffer: norms },
          { name: 'means', access: 'read_write', buffer: means },
        ],
        invocations: n,
        constants: { C: channels },
        body: `
var sum = 0.0;
for (var c = 0u; c < C; c++) { sum += norms[index * C + c]; }
means[index] = sum / f32(C);`,
      },
      {
        name: 'grn_apply',
        summary: 'GRN step 3 of 3: out = gamma * (x * Nx) + beta + x, Nx = norm / (mean norm + eps)',
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'norms', access: 'read', buffer: norms },
          { name: 'means', access: 'read', buffer: means },
          { name: 'gamma', access: 'read', buffer: weight('gamma') },
          { name: 'beta', access: 'read', buffer: weight('beta') },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * positions * channels,
        constants: { C: channels, P: positions },
        floats: { EPS: node.attrs.eps as number },
        body: `
let c = index % C;
let n = index / (P * C);
let nx = norms[n * C + c] / (means[n] + EPS);
let x = input[index];
output[index] = gamma[c] * (x * nx) + beta[c] + x;`,
      },
    ];
  },
};

export const globalAvgPoolKernels: WgslKernels = {
  lower({ inputs, input, output }) {
    const { n, positions, channels } = nhwc(inputs[0]);
    return [
      {
        name: 'global_avg_pool',
        summary: `mean over ${positions} positions, NHWC -> NC`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * channels,
        constants: { C: channels, P: positions },
        body: `
let c = index % C;
let n = index / C;
var sum = 0.0;
for (var p = 0u; p < P; p++) { sum += input[(n * P + p) * C + c]; }
output[index] = sum / f32(P);`,
      },
    ];
  },
};

export const grnStatsKernels: WgslKernels = {
  lower({ node, inputs, input, output }) {
    const { n, positions, channels } = nhwc(inputs[0]);
    return [
      {
        name: 'grn_stats',
        summary: `GRN statistics in one pass: Nx = L2 norm over ${positions} positions / (mean norm over ${channels} channels + eps); one workgroup per sample`,
        bindings: [
          { name: 'input', access: 'read', buffer: input(0) },
          { name: 'output', access: 'read_write', buffer: output },
        ],
        invocations: n * channels,
        cooperative: { groups: n, workgroupVars: reductionVars(1) },
        constants: { C: channels, P: positions },
        floats: { EPS: node.attrs.eps as number },
        body: `
// Each thread takes channels local, local + WORKGROUP_SIZE, ...; norms go to the output
// first, the workgroup sums them, then each thread divides its own by the mean.
var total = 0.0;
for (var c = local; c < C; c += WORKGROUP_SIZE) {
  var sum = 0.0;
  for (var p = 0u; p < P; p++) {
    let v = input[(group * P + p) * C + c];
    sum += v * v;
  }
  let norm = sqrt(sum);
  output[group * C + c] = norm;
  total += norm;
}
${workgroupSum('total', 'norms', 0).join('\n')}
let scale = 1.0 / (norms / f32(C) + EPS);
for (var c = local; c < C; c += WORKGROUP_SIZE) {
  output[group * C + c] *= scale;
}`,
      },
    ];
  },
};
