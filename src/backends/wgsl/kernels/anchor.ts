// The kernel of a conv2d or linear node with whatever the fusion passes folded into it. The
// op's math is a function anchor_value(n, p, oc) that reads its input through load_input, so
// a prologue is applied as each input element is loaded and an epilogue to each result.
// With a channel reduction (LayerNorm) in the epilogue an invocation owns a whole pixel: it
// writes all channels, normalises them in place, then applies the remaining steps.
import type { KernelBinding, KernelSpec } from '../program.js';
import { renderStep, type RenderedStep } from '../steps.js';
import { getOp } from '../../../ir/registry.js';
import { numel, type FusedStep } from '../../../ir/types.js';
import type { LoweringContext } from './kernel.js';

export interface AnchorMath {
  readonly name: string;
  readonly summary: string;
  readonly batch: number;
  /** Output positions per sample (Ho * Wo, or H * W for linear). */
  readonly positions: number;
  readonly outChannels: number;
  /** Channels of the input, as the prologue sees them. */
  readonly inputChannels: number;
  /** The op's own bindings: `input` and its weights. */
  readonly bindings: readonly KernelBinding[];
  readonly constants: Readonly<Record<string, number>>;
  /** Body of `fn anchor_value(n: u32, p: u32, oc: u32) -> f32`; loads via load_input(i, n, c). */
  readonly value: string;
}

const isChannelReduction = (step: FusedStep) => getOp(step.op).kind === 'reduction' && getOp(step.op).reduces === 'channels';

function applySteps(steps: readonly RenderedStep[], at: { index: string; n: string; c: string }): string[] {
  return steps.map((s) => `v = ${s.apply('v', at)};`);
}

export function anchorKernel(ctx: LoweringContext, math: AnchorMath): KernelSpec {
  const { node } = ctx;
  const prologue = node.fusion?.prologue ?? [];
  const epilogue = node.fusion?.epilogue ?? [];
  // The steps' small weights share one buffer (step_params), at offsets fixed here.
  const group: string[] = [];
  const offsets = new Map<string, number>();
  const param = (key: string, index: string): string => {
    if (!offsets.has(key)) {
      offsets.set(key, group.reduce((sum, k) => sum + numel(ctx.paramShape(k)), 0));
      group.push(key);
    }
    return `step_params[${offsets.get(key)}u + ${index}]`;
  };
  const sources = { operand: (position: number) => ctx.input(position), param };
  const reductionAt = epilogue.findIndex(isChannelReduction);
  const render = (steps: readonly FusedStep[], channels: number, offset: number) =>
    steps.map((step, i) => renderStep(step, `_${offset + i}`, channels, sources));
  const pre = render(prologue, math.inputChannels, 0);
  const before = render(reductionAt < 0 ? epilogue : epilogue.slice(0, reductionAt), math.outChannels, prologue.length);
  const after = reductionAt < 0 ? [] : render(epilogue.slice(reductionAt + 1), math.outChannels, prologue.length + reductionAt + 1);
  const all = [...pre, ...before, ...after];
  const norm = reductionAt < 0 ? undefined : epilogue[reductionAt];
  const normGamma = norm ? param(norm.params.weight, 'oc') : '';
  const normBeta = norm ? param(norm.params.bias, 'oc') : '';
  const loadInput = `
fn load_input(i: u32, n: u32, c: u32) -> f32 {
  var v = input[i];
${applySteps(pre, { index: 'i', n: 'n', c: 'c' }).map((l) => `  ${l}`).join('\n')}
  return v;
}`;
  const anchorValue = `
fn anchor_value(n: u32, p: u32, oc: u32) -> f32 {
${math.value.trim().split('\n').map((l) => `  ${l}`).join('\n')}
}`;
  const body = norm
    ? [
        '// This invocation owns one pixel: all C_OUT channels, then their LayerNorm.',
        'let n = index / P_OUT;',
        'let base = index * C_OUT;',
        'for (var oc = 0u; oc < C_OUT; oc++) {',
        '  var v = anchor_value(n, index % P_OUT, oc);',
        ...applySteps(before, { index: 'base + oc', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
        '  output[base + oc] = v;',
        '}',
        'var mean = 0.0;',
        'for (var oc = 0u; oc < C_OUT; oc++) { mean += output[base + oc]; }',
        'mean /= f32(C_OUT);',
        'var variance = 0.0;',
        'for (var oc = 0u; oc < C_OUT; oc++) {',
        '  let d = output[base + oc] - mean;',
        '  variance += d * d;',
        '}',
        'let inv = inverseSqrt(variance / f32(C_OUT) + NORM_EPS);',
        'for (var oc = 0u; oc < C_OUT; oc++) {',
        `  var v = (output[base + oc] - mean) * inv * ${normGamma} + ${normBeta};`,
        ...applySteps(after, { index: 'base + oc', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
        '  output[base + oc] = v;',
        '}',
      ]
    : [
        'let oc = index % C_OUT;',
        'let pixel = index / C_OUT;',
        'let n = pixel / P_OUT;',
        'var v = anchor_value(n, pixel % P_OUT, oc);',
        ...applySteps(before, { index: 'index', n: 'n', c: 'oc' }),
        'output[index] = v;',
      ];
  // Only now, with every step rendered, is the set of grouped weights complete.
  const groupBindings: KernelBinding[] = group.length > 0 ? [{ name: 'step_params', access: 'read', buffer: { kind: 'weight-group', keys: group } }] : [];
  const steps = [...prologue.map((s) => s.op), `[${node.op}]`, ...epilogue.map((s) => s.op)];
  return {
    // Kernel names list what they fuse: grn_apply_linear_add, conv2d_depthwise_7x7_layernorm.
    name: [...prologue.map((s) => s.op), math.name, ...epilogue.filter((s) => s.op !== 'drop_path').map((s) => s.op)].join('_'),
    summary: node.fusion ? `${math.summary}; fused: ${steps.join(' -> ')}` : math.summary,
    bindings: [...math.bindings, ...all.flatMap((s) => s.bindings), ...groupBindings, { name: 'output', access: 'read_write', buffer: ctx.output }],
    invocations: math.batch * math.positions * (norm ? 1 : math.outChannels),
    constants: { ...math.constants, ...Object.assign({}, ...all.map((s) => s.constants)), P_OUT: math.positions, C_OUT: math.outChannels },
    ...(norm ? { floats: { NORM_EPS: norm.attrs.eps as number } } : {}),
    helpers: [...new Set(all.flatMap((s) => s.helpers)), loadInput, anchorValue],
    body: body.join('\n'),
  };
}
