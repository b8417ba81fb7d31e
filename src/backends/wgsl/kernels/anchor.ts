// The kernel of a conv2d or linear node with whatever the fusion passes folded into it. The
// op's math is a function anchor_value(n, p, oc) that reads its input through load_input, so
// a prologue is applied as each input element is loaded and an epilogue to each result.
// With a channel reduction (LayerNorm) in the epilogue a workgroup owns a whole pixel: its
// threads write the channels, reduce for mean and variance, then normalise in place.
import type { KernelBinding, KernelSpec } from '../program.js';
import type { GemmTiling } from '../schedule.js';
import { renderStep, type RenderedStep } from '../steps.js';
import { reductionVars, workgroupSum } from './reduce.js';
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
  /**
   * Set when the op is a GEMM, out[row, oc] = sum_k in[row, k] * weight[k, oc] (+ bias[oc]), rows
   * being (sample, position) pairs: then, unless a LayerNorm needs whole pixels, the kernel is
   * tiled through workgroup memory as the schedule says.
   */
  readonly gemm?: { readonly k: number; readonly bias: boolean };
  /**
   * Set by convolutions that can take a LayerNorm prologue: the taps of one output pixel's
   * input window and a WGSL expression for the input pixel (n, tap) that output p reads.
   */
  readonly window?: { readonly taps: number; readonly pixel: string; readonly bias: boolean };
  /**
   * Set by linear layers on pooled [N, C] inputs: one workgroup per sample can then pool and
   * normalise its input first (the head: global_avg_pool, LayerNorm, linear in one kernel).
   */
  readonly sample?: { readonly bias: boolean };
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
  // Reductions end the prologue (the passes put them there): a LayerNorm is applied to the
  // staged input window or sample, a pooling to the sample, not per element.
  const inputNorm = prologue.length > 0 && isChannelReduction(prologue[prologue.length - 1]) ? prologue[prologue.length - 1] : undefined;
  const inputPool = prologue.find((s) => getOp(s.op).kind === 'reduction' && getOp(s.op).reduces === 'spatial');
  const pre = render(prologue.filter((s) => getOp(s.op).kind !== 'reduction'), math.inputChannels, 0);
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
  // Tiling pays off only when the GEMM fills its tiles; small ones (the head, tiny images) run
  // one invocation per output, which also keeps drivers' compile times down.
  const tiling = ctx.schedule.gemm;
  const worthTiling = math.gemm !== undefined && math.batch * math.positions >= 2 * tiling.rows && math.outChannels >= tiling.cols && math.gemm.k >= tiling.depth;
  if (math.gemm && !norm && worthTiling) {
    const tiled = gemmBody(ctx.schedule.gemm, math.gemm, (at) => applySteps(before, at));
    const groups = Math.ceil((math.batch * math.positions) / ctx.schedule.gemm.rows) * Math.ceil(math.outChannels / ctx.schedule.gemm.cols);
    return finish(tiled.body, { groups, workgroupVars: tiled.workgroupVars }, '_tiled', [tiled.helper]);
  }
  if ((inputNorm || inputPool) && math.sample) {
    if (norm || (inputPool && inputPool.op !== 'global_avg_pool')) throw new Error(`internal: ${node.op} cannot take this prologue`);
    const poolPositions = inputPool ? ctx.inputs[0].shape.slice(2).reduce((a, b) => a * b, 1) : 1;
    const normLines = inputNorm
      ? [
          ...workgroupSum('sum', 'total', 0),
          'let mean = total / f32(CIN);',
          'var squares = 0.0;',
          'for (var c = local; c < CIN; c += WORKGROUP_SIZE) {',
          '  let d = sample[c] - mean;',
          '  squares += d * d;',
          '}',
          ...workgroupSum('squares', 'total_squares', 1),
          'let inv = inverseSqrt(total_squares / f32(CIN) + INPUT_NORM_EPS);',
          'for (var c = local; c < CIN; c += WORKGROUP_SIZE) {',
          `  sample[c] = (sample[c] - mean) * inv * ${param(inputNorm.params.weight, 'c')} + ${param(inputNorm.params.bias, 'c')};`,
          '}',
        ]
      : [];
    const lines = [
      `// One workgroup per sample: ${inputPool ? 'pool its input over space, ' : ''}${inputNorm ? 'LayerNorm it over channels, ' : ''}then the linear layer.`,
      'let n = group;',
      'if (n >= ROWS) { return; }',
      'var sum = 0.0;',
      'for (var c = local; c < CIN; c += WORKGROUP_SIZE) {',
      ...(inputPool
        ? ['  var v = 0.0;', `  for (var q = 0u; q < ${poolPositions}u; q++) { v += load_input((n * ${poolPositions}u + q) * CIN + c, n, c); }`, `  v = v / ${poolPositions}.0;`]
        : ['  let v = load_input(n * CIN + c, n, c);']),
      '  sample[c] = v;',
      '  sum += v;',
      '}',
      ...normLines,
      'workgroupBarrier();',
      'for (var oc = local; oc < C_OUT; oc += WORKGROUP_SIZE) {',
      `  var v = ${math.sample.bias ? 'bias[oc]' : '0.0'};`,
      '  for (var c = 0u; c < CIN; c++) { v += sample[c] * weight[c * C_OUT + oc]; }',
      ...applySteps(before, { index: 'n * C_OUT + oc', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
      '  output[n * C_OUT + oc] = v;',
      '}',
    ];
    const spec = finish(lines, { groups: math.batch, workgroupVars: [...reductionVars(2), `sample: array<f32, ${math.inputChannels}>`] });
    return inputNorm ? { ...spec, floats: { ...spec.floats, INPUT_NORM_EPS: inputNorm.attrs.eps as number } } : spec;
  }
  if (inputNorm) {
    if (!math.window || norm) throw new Error(`internal: ${node.op} cannot normalise its input in this kernel`);
    const gamma = param(inputNorm.params.weight, 'c');
    const beta = param(inputNorm.params.bias, 'c');
    const windowFloats = math.window.taps * math.inputChannels;
    const taps = math.window.taps;
    // Each tap's LayerNorm statistics come from one thread reading that input pixel, not from
    // a workgroup reduction per tap (see reduce.ts for what Mesa's llvmpipe made of those);
    // a pixel's channels are few enough for one thread, and the GEMM below costs more per
    // output channel anyway. The normalised window is then staged in chunks of at most
    // `stagingFloats`, so wide layers fit WebGPU's default 16 KiB of workgroup memory.
    const chunk = Math.min(windowFloats, ctx.schedule.stagingFloats);
    const perThread = Math.ceil(math.outChannels / ctx.schedule.workgroupSize);
    const lines = [
      '// One workgroup per output pixel: LayerNorm each input pixel of its window over channels',
      '// (the fused prologue) as the window is staged chunk by chunk; every thread accumulates',
      '// some output channels from each chunk.',
      'let pixel = group;',
      'if (pixel >= ROWS) { return; }',
      'let n = pixel / P_OUT;',
      'let p = pixel % P_OUT;',
      `if (local < ${taps}u) {`,
      '  let tap = local;',
      `  let at = (${math.window.pixel}) * CIN;`,
      '  var sum = 0.0;',
      '  for (var c = 0u; c < CIN; c++) { sum += load_input(at + c, n, c); }',
      '  let mean = sum / f32(CIN);',
      '  var squares = 0.0;',
      '  for (var c = 0u; c < CIN; c++) {',
      '    let d = load_input(at + c, n, c) - mean;',
      '    squares += d * d;',
      '  }',
      '  tap_mean[tap] = mean;',
      '  tap_inv[tap] = inverseSqrt(squares / f32(CIN) + INPUT_NORM_EPS);',
      '}',
      'workgroupBarrier();',
      `var acc: array<f32, ${perThread}>;`,
      `for (var start = 0u; start < ${windowFloats}u; start += ${chunk}u) {`,
      `  for (var e = local; e < ${chunk}u; e += WORKGROUP_SIZE) {`,
      '    let i = start + e;',
      `    if (i < ${windowFloats}u) {`,
      '      let tap = i / CIN;',
      '      let c = i % CIN;',
      `      let x = load_input((${math.window.pixel}) * CIN + c, n, c);`,
      `      window[e] = (x - tap_mean[tap]) * tap_inv[tap] * ${gamma} + ${beta};`,
      '    }',
      '  }',
      '  workgroupBarrier();',
      `  let count = min(${chunk}u, ${windowFloats}u - start);`,
      `  for (var j = 0u; j < ${perThread}u; j++) {`,
      '    let oc = local + j * WORKGROUP_SIZE;',
      '    if (oc < C_OUT) {',
      '      var v = acc[j];',
      '      for (var e = 0u; e < count; e++) { v += window[e] * weight[(start + e) * C_OUT + oc]; }',
      '      acc[j] = v;',
      '    }',
      '  }',
      '  workgroupBarrier();',
      '}',
      `for (var j = 0u; j < ${perThread}u; j++) {`,
      '  let oc = local + j * WORKGROUP_SIZE;',
      '  if (oc < C_OUT) {',
      `    var v = acc[j]${math.window.bias ? ' + bias[oc]' : ''};`,
      ...applySteps(before, { index: 'pixel * C_OUT + oc', n: 'n', c: 'oc' }).map((l) => `    ${l}`),
      '    output[pixel * C_OUT + oc] = v;',
      '  }',
      '}',
    ];
    const spec = finish(lines, {
      groups: math.batch * math.positions,
      workgroupVars: [`window: array<f32, ${chunk}>`, `tap_mean: array<f32, ${taps}>`, `tap_inv: array<f32, ${taps}>`],
    });
    return { ...spec, floats: { ...spec.floats, INPUT_NORM_EPS: inputNorm.attrs.eps as number } };
  }
  if (norm) {
    const lines = [
      '// One workgroup per output pixel: its threads share the channels, then reduce for LayerNorm.',
      'let pixel = group;',
      'if (pixel >= ROWS) { return; }',
      'let n = pixel / P_OUT;',
      'let base = pixel * C_OUT;',
      'var sum = 0.0;',
      'for (var oc = local; oc < C_OUT; oc += WORKGROUP_SIZE) {',
      '  var v = anchor_value(n, pixel % P_OUT, oc);',
      ...applySteps(before, { index: 'base + oc', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
      '  output[base + oc] = v;',
      '  sum += v;',
      '}',
      ...workgroupSum('sum', 'total', 0),
      'let mean = total / f32(C_OUT);',
      'var squares = 0.0;',
      'for (var oc = local; oc < C_OUT; oc += WORKGROUP_SIZE) {',
      '  let d = output[base + oc] - mean;',
      '  squares += d * d;',
      '}',
      ...workgroupSum('squares', 'total_squares', 1),
      'let inv = inverseSqrt(total_squares / f32(C_OUT) + NORM_EPS);',
      'for (var oc = local; oc < C_OUT; oc += WORKGROUP_SIZE) {',
      `  var v = (output[base + oc] - mean) * inv * ${normGamma} + ${normBeta};`,
      ...applySteps(after, { index: 'base + oc', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
      '  output[base + oc] = v;',
      '}',
    ];
    return finish(lines, { groups: math.batch * math.positions, workgroupVars: reductionVars(2) });
  }
  const body = [
    'let oc = index % C_OUT;',
    'let pixel = index / C_OUT;',
    'let n = pixel / P_OUT;',
    'var v = anchor_value(n, pixel % P_OUT, oc);',
    ...applySteps(before, { index: 'index', n: 'n', c: 'oc' }),
    'output[index] = v;',
  ];
  return finish(body);

  function finish(lines: readonly string[], cooperative?: KernelSpec['cooperative'], suffix = '', extraHelpers: readonly string[] = []): KernelSpec {
    // Only now, with every step rendered, is the set of grouped weights complete.
    const groupBindings: KernelBinding[] = group.length > 0 ? [{ name: 'step_params', access: 'read', buffer: { kind: 'weight-group', keys: group } }] : [];
    const steps = [...prologue.map((s) => s.op), `[${node.op}]`, ...epilogue.map((s) => s.op)];
    return {
      // Kernel names list what they fuse: grn_apply_linear_add, conv2d_depthwise_7x7_layernorm.
      name: [...prologue.map((s) => s.op), math.name, ...epilogue.filter((s) => s.op !== 'drop_path').map((s) => s.op)].join('_') + suffix,
      summary: node.fusion ? `${math.summary}; fused: ${steps.join(' -> ')}` : math.summary,
      bindings: [...math.bindings, ...all.flatMap((s) => s.bindings), ...groupBindings, { name: 'output', access: 'read_write', buffer: ctx.output }],
      invocations: math.batch * math.positions * (norm ? 1 : math.outChannels),
      ...(cooperative ? { cooperative } : {}),
      constants: { ...math.constants, ...Object.assign({}, ...all.map((s) => s.constants)), P_OUT: math.positions, C_OUT: math.outChannels, ROWS: math.batch * math.positions },
      ...(norm ? { floats: { NORM_EPS: norm.attrs.eps as number } } : {}),
      helpers: [...new Set(all.flatMap((s) => s.helpers)), loadInput, anchorValue, ...extraHelpers],
      body: lines.join('\n'),
    };
  }
}

/**
 * A GEMM tiled through workgroup memory: each workgroup computes a rows x cols block of
 * outputs, stepping over K `depth` at a time; every thread keeps threadRows x threadCols
 * accumulators. Inputs pass through load_input (the prologue) as they are staged, so a fused
 * prologue costs once per input element, not once per output channel.
 */
function gemmBody(t: GemmTiling, gemm: { k: number; bias: boolean }, epilogue: (at: { index: string; n: string; c: string }) => string[]): { body: string[]; workgroupVars: string[]; helper: string } {
  const threadsPerRow = t.cols / t.threadCols;
  const threads = (t.rows / t.threadRows) * threadsPerRow;
  const aSize = t.rows * t.depth;
  const bSize = t.depth * t.cols;
  // One function for the epilogue, called per accumulator: the kernel's code stays small, which
  // matters to drivers that compile it on the CPU (lavapipe's LLVM).
  const helper = [
    'fn store_output(row: u32, oc: u32, value: f32) {',
    '  if (row >= ROWS || oc >= C_OUT) { return; }',
    '  let n = row / P_OUT;',
    '  let index = row * C_OUT + oc;',
    `  var v = value${gemm.bias ? ' + bias[oc]' : ''};`,
    ...epilogue({ index: 'index', n: 'n', c: 'oc' }).map((l) => `  ${l}`),
    '  output[index] = v;',
    '}',
  ].join('\n');
  return {
    helper,
    workgroupVars: [`tile_in: array<f32, ${aSize}>`, `tile_weight: array<f32, ${bSize}>`],
    body: [
      `// Tile: ${t.rows} rows x ${t.cols} output channels, K in steps of ${t.depth}; ${t.threadRows}x${t.threadCols} outputs per thread.`,
      `let tiles_across = (C_OUT + ${t.cols - 1}u) / ${t.cols}u;`,
      `let row0 = (group / tiles_across) * ${t.rows}u;`,
      `let col0 = (group % tiles_across) * ${t.cols}u;`,
      `let thread_row = (local / ${threadsPerRow}u) * ${t.threadRows}u;`,
      `let thread_col = (local % ${threadsPerRow}u) * ${t.threadCols}u;`,
      ...range(t.threadRows).flatMap((i) => range(t.threadCols).map((j) => `var acc${i}_${j} = 0.0;`)),
      `for (var k0 = 0u; k0 < ${gemm.k}u; k0 += ${t.depth}u) {`,
      `  for (var e = local; e < ${aSize}u; e += ${threads}u) {`,
      `    let row = row0 + e / ${t.depth}u;`,
      `    let k = k0 + e % ${t.depth}u;`,
      `    var v = 0.0;`,
      `    if (row < ROWS && k < ${gemm.k}u) { v = load_input(row * ${gemm.k}u + k, row / P_OUT, k); }`,
      `    tile_in[e] = v;`,
      `  }`,
      `  for (var e = local; e < ${bSize}u; e += ${threads}u) {`,
      `    let k = k0 + e / ${t.cols}u;`,
      `    let col = col0 + e % ${t.cols}u;`,
      `    var w = 0.0;`,
      `    if (k < ${gemm.k}u && col < C_OUT) { w = weight[k * C_OUT + col]; }`,
      `    tile_weight[e] = w;`,
      `  }`,
      `  workgroupBarrier();`,
      `  for (var kk = 0u; kk < ${t.depth}u; kk++) {`,
      // Unrolled: the accumulators stay scalar registers rather than an indexed array.
      ...range(t.threadRows).map((i) => `    let a${i} = tile_in[(thread_row + ${i}u) * ${t.depth}u + kk];`),
      ...range(t.threadCols).map((j) => `    let b${j} = tile_weight[kk * ${t.cols}u + thread_col + ${j}u];`),
      ...range(t.threadRows).flatMap((i) => range(t.threadCols).map((j) => `    acc${i}_${j} += a${i} * b${j};`)),
      `  }`,
      `  workgroupBarrier();`,
      `}`,
      ...range(t.threadRows).flatMap((i) => range(t.threadCols).map((j) => `store_output(row0 + thread_row + ${i}u, col0 + thread_col + ${j}u, acc${i}_${j});`)),
    ],
  };
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
