// Kernels for convolutions and linear layers (contractions) with the steps fusion folded into
// them: prologue steps applied to each input element as it is loaded, epilogue steps to each
// result, a LayerNorm before (window, sample) or after (pixel) normalising over channels.
// The contraction's math is the op's declaration (src/kernel/math.ts); each strategy below is
// one way of walking it, chosen by the schedule.
import {
  add, and, assign, barrier, bind, cast, comment, div, ge, group, i32, if_, let_, load, local, loop, lt, min, mul, ref, registers, rem, store, sub, u32, var_,
} from '../build.js';
import type { BufferLayout, Expr, KernelProgram, Stmt } from '../ir.js';
import type { Contraction, ReductionMath } from '../math.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type HostTensor, type Node } from '../../ir/types.js';
import { guarded, KernelBuilder, lessThan, stepUse, type OpUse, type Site } from './builder.js';

export const reductionOf = (op: string): ReductionMath | undefined => {
  const math = getOp(op).kernel;
  return math.kind === 'reduction' ? math : undefined;
};

/** The node's contraction and how its fused steps fall around it. */
export function anatomy(node: Node) {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction') throw new Error(`internal: '${node.op}' is not a contraction`);
  const c = math.contraction(node.attrs);
  const prologue = (node.fusion?.prologue ?? []).map(stepUse);
  const epilogue = (node.fusion?.epilogue ?? []).map(stepUse);
  const normAt = epilogue.findIndex((s) => reductionOf(s.op)?.over === 'channels');
  const poolAt = prologue.findIndex((s) => reductionOf(s.op)?.over === 'spatial');
  const inputNormAt = prologue.findIndex((s) => reductionOf(s.op)?.over === 'channels');
  const firstReduction = [poolAt, inputNormAt].filter((i) => i >= 0).reduce((a, b) => Math.min(a, b), prologue.length);
  return {
    c,
    /** Elementwise steps applied to each input element as it is loaded. */
    pre: prologue.slice(0, firstReduction),
    pool: poolAt >= 0 ? prologue[poolAt] : undefined,
    /** Elementwise steps between a pooling and the input LayerNorm. */
    pooled: poolAt >= 0 ? prologue.slice(poolAt + 1, inputNormAt >= 0 ? inputNormAt : prologue.length) : [],
    inputNorm: inputNormAt >= 0 ? prologue[inputNormAt] : undefined,
    before: normAt >= 0 ? epilogue.slice(0, normAt) : epilogue,
    norm: normAt >= 0 ? epilogue[normAt] : undefined,
    after: normAt >= 0 ? epilogue.slice(normAt + 1) : [],
    prologue,
    epilogue,
  };
}

/** The kernel's name lists what it fuses: grn_apply_linear_add, conv2d_depthwise_7x7_layernorm. */
function kernelName(node: Node, c: Contraction, suffix: string): string {
  const [kh, kw] = c.kernel;
  const [sh] = c.stride;
  const depthwise = c.groups > 1 && c.groups === c.inChannels && c.groups === c.outChannels;
  const own = node.op === 'conv2d' ? `conv2d_${depthwise ? 'depthwise_' : ''}${kh}x${kw}${sh > 1 ? `_s${sh}` : ''}` : node.op;
  const steps = (s: readonly { op: string }[]) => s.filter((x) => x.op !== 'drop_path').map((x) => x.op);
  return [...steps(node.fusion?.prologue ?? []), own, ...steps(node.fusion?.epilogue ?? [])].join('_') + suffix;
}

function summaryOf(node: Node, c: Contraction): string {
  const [kh, kw] = c.kernel;
  const own =
    node.op === 'conv2d'
      ? `${c.groups > 1 ? (c.groups === c.inChannels ? 'depthwise ' : `${c.groups}-group `) : ''}${kh}x${kw} convolution, stride ${c.stride.join('x')}, padding ${c.padding.join('x')}, ${c.inChannels} -> ${c.outChannels} channels`
      : `linear over channels, ${c.inChannels} -> ${c.outChannels}`;
  const steps = [...(node.fusion?.prologue ?? []).map((s) => s.op), `[${node.op}]`, ...(node.fusion?.epilogue ?? []).map((s) => s.op)];
  return `${own}${c.bias ? ', + bias' : ''}${node.fusion ? `; fused: ${steps.join(' -> ')}` : ''}`;
}

/** Shapes and named constants every strategy uses. */
export function geometry(b: KernelBuilder, c: Contraction) {
  const inShape = b.inputType(0).shape;
  const outShape = b.node.type.shape;
  const [h, w] = inShape.length === 4 ? [inShape[2], inShape[3]] : [1, 1];
  const [ho, wo] = outShape.length === 4 ? [outShape[2], outShape[3]] : [1, 1];
  const n = outShape[0];
  const pointwise = c.kernel.every((k) => k === 1) && c.stride.every((s) => s === 1) && c.padding.every((p) => p === 0);
  return {
    n,
    h,
    w,
    positions: ho * wo,
    rows: n * ho * wo,
    pointwise,
    taps: c.kernel[0] * c.kernel[1],
    perGroupIn: c.inChannels / c.groups,
    perGroupOut: c.outChannels / c.groups,
    CIN: u32(c.inChannels, 'CIN'),
    COUT: u32(c.outChannels, 'C_OUT'),
    P_OUT: u32(ho * wo, 'P_OUT'),
    H: u32(h, 'H'),
    W: u32(w, 'W'),
    WO: u32(wo, 'WO'),
  };
}

export type Geometry = ReturnType<typeof geometry>;

/** Loads input element (pixel, channel) of sample n with the elementwise prologue applied. */
export function loadInput(b: KernelBuilder, g: Geometry, pre: readonly OpUse[], input: string, pixel: Expr, channel: Expr, n: Expr, body: Stmt[]): Expr {
  const index = add(mul(pixel, g.CIN), channel);
  const site: Site = { index, n, c: channel, shape: b.inputType(0).shape };
  return b.applyElementwise(pre, load(input, index), site, body);
}

/** Packed weight index of (tap, input channel within the group, output channel): [kh, kw, in/g, out]. */
export const weightIndex = (g: Geometry, tap: Expr, ic: Expr, oc: Expr): Expr => add(mul(add(mul(tap, u32(g.perGroupIn, 'CIN_PER_GROUP')), ic), g.COUT), oc);

/** Where a contraction's running sum lives: a `var` (one output) or a register slot (several). */
interface Accumulator {
  readonly oc: Expr;
  readonly value: Expr;
  set(value: Expr): Stmt;
}

const varAccumulator = (oc: Expr, name: string): Accumulator => ({ oc, value: ref(name, 'f32'), set: (v) => assign(name, v) });

/**
 * Statements adding the contraction's terms for output pixel (n, p) into each accumulator (one
 * per output channel), reading through the prologue. The window is walked once, outermost,
 * so a thread with several output channels computes each tap's position once. Padding is
 * skipped, never loaded.
 */
function accumulate(b: KernelBuilder, g: Geometry, c: Contraction, pre: readonly OpUse[], names: { input: string; weight: string }, n: Expr, p: Expr, accs: (tap: Expr, into: Stmt[]) => readonly Accumulator[]): Stmt[] {
  const body: Stmt[] = [];
  const addTerms = (pixel: Expr, tap: Expr, into: Stmt[]) => {
    const ic = ref('ic', 'u32');
    for (const acc of accs(tap, into)) {
      const inner: Stmt[] = [];
      const firstChannel = g.perGroupIn === c.inChannels ? u32(0) : mul(div(acc.oc, u32(g.perGroupOut, 'COUT_PER_GROUP')), u32(g.perGroupIn, 'CIN_PER_GROUP'));
      const x = loadInput(b, g, pre, names.input, pixel, add(firstChannel, ic), n, inner);
      inner.push(acc.set(add(acc.value, mul(x, load(names.weight, weightIndex(g, tap, ic, acc.oc))))));
      into.push(loop('ic', 0, u32(g.perGroupIn, 'CIN_PER_GROUP'), inner));
    }
  };
  if (g.pointwise) {
    addTerms(add(mul(n, g.P_OUT), p), u32(0), body);
    return body;
  }
  const [kh, kw] = c.kernel;
  const [sh, sw] = c.stride;
  const [ph, pw] = c.padding;
  body.push(let_('oy', div(p, g.WO)), let_('ox', rem(p, g.WO)));
  const coordinate = (name: string, out: string, k: string, stride: number, pad: number, extent: number, into: Stmt[]): Expr | undefined => {
    const at = add(mul(ref(out, 'u32'), u32(stride)), ref(k, 'u32'));
    if (pad === 0) {
      into.push(let_(name, at));
      return undefined;
    }
    into.push(let_(`${name}_signed`, sub(cast('i32', at), i32(pad))));
    const signed = ref(`${name}_signed`, 'i32');
    into.push(let_(name, cast('u32', signed)));
    return and(ge(signed, i32(0)), lt(signed, i32(extent)));
  };
  const rowBody: Stmt[] = [];
  const inRow = coordinate('iy', 'oy', 'ky', sh, ph, g.h, rowBody);
  const colBody: Stmt[] = [];
  const inCol = coordinate('ix', 'ox', 'kx', sw, pw, g.w, colBody);
  const tapBody: Stmt[] = [];
  addTerms(add(mul(add(mul(n, g.H), ref('iy', 'u32')), g.W), ref('ix', 'u32')), add(mul(ref('ky', 'u32'), u32(kw, 'KW')), ref('kx', 'u32')), tapBody);
  colBody.push(...guarded(inCol, tapBody));
  rowBody.push(...guarded(inRow, [loop('kx', 0, u32(kw, 'KW'), colBody)]));
  body.push(loop('ky', 0, u32(kh, 'KH'), rowBody));
  return body;
}

/** Statements running `inner` for one of a thread's channels; see channelWalk. */
export type ChannelWalk = (name: string, inner: (channel: Expr, slot: Expr, into: Stmt[]) => void) => Stmt;

/**
 * A thread's channels of a pixel, lane, lane + lanes, ...: a loop over them, or, when they are
 * kept in registers, `perThread` unrolled slots (so `slot` indexes the registers by a
 * constant), each guarded by the channel count.
 */
export function channelWalk(w: { lane: Expr; lanes: number; channels: Expr; perThread: number; registers: boolean }): ChannelWalk {
  const LANES = u32(w.lanes, 'LANES');
  return (name, inner) => {
    const into: Stmt[] = [];
    if (!w.registers) {
      inner(ref(name, 'u32'), ref(name, 'u32'), into);
      return { kind: 'loop', index: name, from: w.lane, to: w.channels, step: LANES, body: into };
    }
    into.push(let_(name, add(w.lane, mul(ref('slot', 'u32'), LANES))));
    const guardedBody: Stmt[] = [];
    inner(ref(name, 'u32'), ref('slot', 'u32'), guardedBody);
    into.push(if_(lt(ref(name, 'u32'), w.channels), guardedBody));
    return loop('slot', 0, w.perThread, into, { unroll: true });
  };
}

/** The packed layout of a contraction's weight (packContractionWeight): output channels innermost. */
export function packedWeightLayout(c: Contraction): BufferLayout {
  const [kh, kw] = c.kernel;
  const inPerGroup = c.inChannels / c.groups;
  return kh === 1 && kw === 1 ? { axes: ['in', 'out'], shape: [inPerGroup, c.outChannels] } : { axes: ['kh', 'kw', 'in', 'out'], shape: [kh, kw, inPerGroup, c.outChannels] };
}

export function contractionWeight(b: KernelBuilder, c: Contraction, vector?: 4): string {
  return b.weight(b.node.params[c.weight], 'weight', vector, packedWeightLayout(c));
}

export function biasOf(b: KernelBuilder, c: Contraction, oc: Expr): Expr | undefined {
  return c.bias ? load(b.weight(b.node.params[c.bias], 'bias'), oc) : undefined;
}

export function program(b: KernelBuilder, node: Node, c: Contraction, schedule: Schedule, workgroupSize: number, workgroups: number, body: Stmt[], suffix = ''): KernelProgram {
  return b.finish({ name: kernelName(node, c, suffix), summary: summaryOf(node, c), workgroupSize, workgroups, schedule, body });
}

/** One thread per output. */
export function lowerDirect(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'direct' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  const names = { input: b.input(0), weight: contractionWeight(b, a.c) };
  const total = g.rows * a.c.outChannels;
  const body: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const index = ref('index', 'u32');
  const inner: Stmt[] = [let_('oc', rem(index, g.COUT)), let_('pixel', div(index, g.COUT))];
  inner.push(let_('n', div(ref('pixel', 'u32'), g.P_OUT)), let_('p', rem(ref('pixel', 'u32'), g.P_OUT)));
  const [n, p, oc] = [ref('n', 'u32'), ref('p', 'u32'), ref('oc', 'u32')];
  inner.push(var_('acc', biasOf(b, a.c, oc) ?? { kind: 'const', type: 'f32', value: 0 }));
  inner.push(...accumulate(b, g, a.c, a.pre, names, n, p, () => [varAccumulator(oc, 'acc')]));
  const output = b.output();
  const v = b.applyElementwise(a.before, ref('acc', 'f32'), { index, n, c: oc, shape: node.type.shape }, inner);
  inner.push(store(output, index, v));
  body.push(...guarded(lessThan(index, total, 'OUTPUTS'), inner));
  return program(b, node, a.c, schedule, schedule.workgroupSize, Math.ceil(total / schedule.workgroupSize), body);
}

/**
 * A LayerNorm (or any channel reduction) after the contraction: `lanes` threads own an output
 * pixel. They write its channels, reduce the statistics, then normalise them in place; each
 * thread only re-reads the channels it wrote itself.
 */
export function lowerPixel(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'pixel' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  const norm = a.norm!;
  const math = reductionOf(norm.op)!;
  const names = { input: b.input(0), weight: contractionWeight(b, a.c) };
  const output = b.output();
  const { lanes, workgroupSize } = schedule;
  const pixelsPerGroup = workgroupSize / lanes;
  const body: Stmt[] = [
    comment(`${lanes} thread(s) per output pixel: compute its channels, reduce over them, normalise.`),
    let_('pixel', add(mul(group, u32(pixelsPerGroup, 'PIXELS_PER_WORKGROUP')), div(local, u32(lanes, 'LANES')))),
    let_('lane', rem(local, u32(lanes, 'LANES'))),
    let_('n', div(ref('pixel', 'u32'), g.P_OUT)),
    let_('p', rem(ref('pixel', 'u32'), g.P_OUT)),
    let_('base', mul(ref('pixel', 'u32'), g.COUT)),
  ];
  const [n, p, lane, base] = [ref('n', 'u32'), ref('p', 'u32'), ref('lane', 'u32'), ref('base', 'u32')];
  const active = lessThan(ref('pixel', 'u32'), g.rows, 'ROWS');
  const site = (channel: Expr): Site => ({ index: add(base, channel), n, c: channel, shape: node.type.shape });
  // Each thread's channels: lane, lane + lanes, ...; held in registers (an unrolled slot each)
  // when the schedule says so, else written to the output and read back.
  const perThread = Math.ceil(a.c.outChannels / lanes);
  const stash = schedule.registers ? 'vals' : undefined;
  const walk = channelWalk({ lane, lanes, channels: g.COUT, perThread, registers: stash !== undefined });
  const stored = (channel: Expr, slot: Expr): Expr => (stash ? load(stash, slot) : load(output, add(base, channel)));
  const zero: Expr = { kind: 'const', type: 'f32', value: 0 };
  if (stash) {
    // All of the thread's channels at once: each tap's position is computed once for them.
    body.push(registers(stash, perThread));
    const compute: Stmt[] = [walk('oc', (oc, slot, into) => into.push(store(stash, slot, biasOf(b, a.c, oc) ?? zero)))];
    const slots = (_tap: Expr, into: Stmt[]): Accumulator[] =>
      Array.from({ length: perThread }, (_, j) => {
        const oc = bind(into, `oc_${j}`, min(add(lane, u32(j * lanes)), sub(g.COUT, u32(1))));
        // A slot past the last channel recomputes the last one (clamped) and is never stored.
        return { oc, value: load(stash, u32(j)), set: (v: Expr) => store(stash, u32(j), v) };
      });
    compute.push(...accumulate(b, g, a.c, a.pre, names, n, p, slots));
    compute.push(walk('oc', (oc, slot, into) => into.push(store(stash, slot, b.applyElementwise(a.before, load(stash, slot), site(oc), into)))));
    body.push(if_(active, compute));
  } else {
    body.push(
      if_(active, [
        walk('oc', (oc, _slot, compute) => {
          compute.push(var_('acc', biasOf(b, a.c, oc) ?? zero));
          compute.push(...accumulate(b, g, a.c, a.pre, names, n, p, () => [varAccumulator(oc, 'acc')]));
          const v = b.applyElementwise(a.before, ref('acc', 'f32'), site(oc), compute);
          compute.push(store(output, add(base, oc), v));
        }),
      ]),
    );
  }
  const stats = b.rowStatistics(
    math,
    norm.attrs,
    { length: a.c.outChannels, lane, lanes, active, reduction: schedule.reduction, ...(stash ? { perThread } : {}) },
    (ch, _into, slot) => stored(ch, slot),
    body,
  );
  body.push(
    if_(active, [
      walk('c', (ch, slot, finish) => {
        const normed = bind(finish, 'v_' + norm.op, math.apply!(stored(ch, slot), stats, b.context(norm, site(ch)), norm.attrs));
        const last = b.applyElementwise(a.after, normed, site(ch), finish);
        finish.push(store(output, add(base, ch), last));
      }),
    ]),
  );
  return program(b, node, a.c, schedule, workgroupSize, Math.ceil(g.rows / pixelsPerGroup), body);
}

/**
 * A convolution that normalises its input over channels first (the downsampling layers'
 * LayerNorm): a workgroup per `pixels` output pixels. Each tap's statistics come from one
 * thread reading that input pixel, not from a workgroup reduction per tap: a pixel's channels
 * are few enough for one thread, and the contraction costs more per output channel anyway.
 * The normalised windows are then staged `stagingFloats` at a time (all pixels' together),
 * every thread accumulating some output channels from each chunk: a weight loaded once serves
 * every pixel of the workgroup.
 */
export function lowerWindow(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'window' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  if (a.c.groups !== 1 || a.c.padding.some((x) => x !== 0)) throw new Error(`internal: ${node.op} cannot normalise its input in this kernel`);
  const norm = a.inputNorm!;
  const math = reductionOf(norm.op)!;
  const input = b.input(0);
  const weight = contractionWeight(b, a.c);
  const output = b.output();
  const { workgroupSize, pixels } = schedule;
  const windowFloats = g.taps * a.c.inChannels;
  const chunk = Math.max(1, Math.min(windowFloats, Math.floor(schedule.stagingFloats / pixels)));
  const perThread = Math.ceil(a.c.outChannels / workgroupSize);
  const [kw] = [a.c.kernel[1]];
  const [sh, sw] = a.c.stride;
  const windowArray = b.sharedArray('window', pixels * chunk);
  const tapStats = math.stats.map((s) => b.sharedArray(`tap_${s.name}`, pixels * g.taps));
  const [TAPS, CHUNK, WG, PIXELS, ROWS] = [u32(g.taps, 'TAPS'), u32(chunk, 'CHUNK'), u32(workgroupSize, 'WORKGROUP_SIZE'), u32(pixels, 'PIXELS'), u32(g.rows, 'ROWS')];
  const body: Stmt[] = [
    comment(`${pixels} output pixel(s) a workgroup: normalise each input pixel of their windows over channels (the`),
    comment('fused prologue) as the windows are staged chunk by chunk; every thread accumulates some output channels.'),
    let_('pixel0', mul(group, PIXELS)),
  ];
  const pixel0 = ref('pixel0', 'u32');
  /** Statements binding `prefix`n, `prefix`oy, `prefix`ox of the workgroup's `q`th pixel (the last pixel where it lies past the end). */
  const locate = (prefix: string, q: Expr, into: Stmt[]): { n: Expr; tapPixel: (tap: Expr) => Expr } => {
    into.push(
      let_(`${prefix}pixel`, min(add(pixel0, q), sub(ROWS, u32(1)))),
      let_(`${prefix}n`, div(ref(`${prefix}pixel`, 'u32'), g.P_OUT)),
      let_(`${prefix}p`, rem(ref(`${prefix}pixel`, 'u32'), g.P_OUT)),
    );
    const [n, p] = [ref(`${prefix}n`, 'u32'), ref(`${prefix}p`, 'u32')];
    const [oy, ox] = [div(p, g.WO), rem(p, g.WO)];
    return { n, tapPixel: (tap) => add(mul(add(mul(n, g.H), add(mul(oy, u32(sh)), div(tap, u32(kw, 'KW')))), g.W), add(mul(ox, u32(sw)), rem(tap, u32(kw, 'KW')))) };
  };
  // Statistics, a thread per (pixel, tap).
  const slot = ref('slot', 'u32');
  const perTap: Stmt[] = [];
  const statsAt = locate('stat_', div(slot, TAPS), perTap);
  perTap.push(let_('tap_pixel', statsAt.tapPixel(rem(slot, TAPS))));
  const stats = b.rowStatistics(math, norm.attrs, { length: a.c.inChannels, lane: u32(0), lanes: 1 }, (ch, into) => loadInput(b, g, a.pre, input, ref('tap_pixel', 'u32'), ch, statsAt.n, into), perTap);
  math.stats.forEach((s, i) => perTap.push(store(tapStats[i], slot, stats[s.name])));
  body.push(loop('slot', local, u32(pixels * g.taps, 'PIXEL_TAPS'), perTap, { step: WG }), barrier);
  body.push(registers('acc', pixels * perThread));
  // Stage a chunk of every pixel's window, normalised.
  const start = ref('start', 'u32');
  const e = ref('e', 'u32');
  const staged: Stmt[] = [let_('q', div(e, CHUNK)), let_('i', add(start, rem(e, CHUNK)))];
  const ii = ref('i', 'u32');
  const inWindow: Stmt[] = [let_('tap', div(ii, g.CIN)), let_('c', rem(ii, g.CIN))];
  const [tapE, ch] = [ref('tap', 'u32'), ref('c', 'u32')];
  const at = locate('', ref('q', 'u32'), inWindow);
  const x = loadInput(b, g, a.pre, input, at.tapPixel(tapE), ch, at.n, inWindow);
  const tapStatsAt: Record<string, Expr> = {};
  math.stats.forEach((s, i) => (tapStatsAt[s.name] = load(tapStats[i], add(mul(ref('q', 'u32'), TAPS), tapE))));
  const site: Site = { index: add(mul(at.tapPixel(tapE), g.CIN), ch), n: at.n, c: ch, shape: b.inputType(0).shape };
  const normed = bind(inWindow, 'v_' + norm.op, math.apply!(x, tapStatsAt, b.context(norm, site), norm.attrs));
  inWindow.push(store(windowArray, e, normed));
  staged.push(if_(lessThan(ii, windowFloats, 'WINDOW'), inWindow));
  const jj = ref('j', 'u32');
  const ocJ = ref('oc', 'u32');
  const accOf = (q: number): Expr => add(u32(q * perThread), jj);
  const pixelsRange = [...Array(pixels).keys()];
  const accumulateChunk: Stmt[] = [
    let_('oc', add(local, mul(jj, WG))),
    if_(lt(ocJ, g.COUT), [
      ...pixelsRange.map((q) => var_(`v${q}`, load('acc', accOf(q)))),
      loop('e', 0, ref('count', 'u32'), [
        let_('w', load(weight, add(mul(add(start, e), g.COUT), ocJ))),
        ...pixelsRange.map((q) => assign(`v${q}`, add(ref(`v${q}`, 'f32'), mul(load(windowArray, add(u32(q * chunk), e)), ref('w', 'f32'))))),
      ]),
      ...pixelsRange.map((q) => store('acc', accOf(q), ref(`v${q}`, 'f32'))),
    ]),
  ];
  body.push(
    loop(
      'start',
      0,
      u32(windowFloats, 'WINDOW'),
      [
        loop('e', local, u32(pixels * chunk, 'STAGED'), staged, { step: WG }),
        barrier,
        let_('count', min(CHUNK, sub(u32(windowFloats, 'WINDOW'), start))),
        loop('j', 0, perThread, accumulateChunk),
        barrier,
      ],
      { step: CHUNK },
    ),
  );
  const q = ref('q', 'u32');
  const write: Stmt[] = [let_('pixel', add(pixel0, q))];
  const pixel = ref('pixel', 'u32');
  const perChannel: Stmt[] = [let_('oc', add(local, mul(jj, WG)))];
  const writeInner: Stmt[] = [let_('out_index', add(mul(pixel, g.COUT), ocJ))];
  const bias = biasOf(b, a.c, ocJ);
  const acc = load('acc', add(mul(q, u32(perThread, 'PER_THREAD')), jj));
  const v = b.applyElementwise(a.before, bias ? bind(writeInner, 'v_bias', add(acc, bias)) : acc, { index: ref('out_index', 'u32'), n: div(pixel, g.P_OUT), c: ocJ, shape: node.type.shape }, writeInner);
  writeInner.push(store(output, ref('out_index', 'u32'), v));
  perChannel.push(if_(lt(ocJ, g.COUT), writeInner));
  write.push(if_(lt(pixel, ROWS), [loop('j', 0, perThread, perChannel)]));
  body.push(loop('q', 0, pixels, write));
  return program(b, node, a.c, schedule, workgroupSize, Math.ceil(g.rows / pixels), body);
}

/**
 * A linear layer over pooled samples whose input is pooled and/or normalised first (the head:
 * global_avg_pool, LayerNorm, linear): a workgroup per sample stages it in workgroup memory.
 */
export function lowerSample(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'sample' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  const input = b.input(0);
  const weight = contractionWeight(b, a.c);
  const output = b.output();
  const { workgroupSize } = schedule;
  const cin = a.c.inChannels;
  const slice = Math.min(schedule.outputsPerWorkgroup ?? a.c.outChannels, a.c.outChannels);
  const slices = Math.ceil(a.c.outChannels / slice);
  const sample = b.sharedArray('sample', cin);
  const inShape = b.inputType(0).shape;
  const pooledPositions = inShape.slice(2).reduce((x, y) => x * y, 1);
  const n = ref('n', 'u32');
  const ch = ref('c', 'u32');
  const WG = u32(workgroupSize, 'WORKGROUP_SIZE');
  const body: Stmt[] = [
    comment(
      `${slices > 1 ? `${slices} workgroups per sample, each computing ${slice} outputs` : 'One workgroup per sample'}: ${a.pool ? 'pool its input over space, ' : ''}${a.inputNorm ? 'normalise it over channels, ' : ''}then the linear layer.`,
    ),
    let_('n', slices > 1 ? div(group, u32(slices, 'SLICES')) : group),
  ];
  const stage: Stmt[] = [];
  let value: Expr;
  if (a.pool) {
    const pool = reductionOf(a.pool.op)!;
    const P = u32(pooledPositions, 'P_IN');
    const stats = b.rowStatistics(pool, a.pool.attrs, { length: pooledPositions, lane: u32(0), lanes: 1 }, (q, into) => loadInput(b, g, a.pre, input, add(mul(n, P), q), ch, n, into), stage);
    value = stats[pool.stats[pool.stats.length - 1].name];
  } else {
    value = loadInput(b, g, a.pre, input, n, ch, n, stage);
  }
  const pooledSite: Site = { index: add(mul(n, g.CIN), ch), n, c: ch, shape: [inShape[0], cin] };
  value = b.applyElementwise(a.pooled, value, pooledSite, stage);
  stage.push(store(sample, ch, value));
  body.push(loop('c', local, g.CIN, stage, { step: WG }), barrier);
  if (a.inputNorm) {
    const norm = reductionOf(a.inputNorm.op)!;
    const stats = b.rowStatistics(norm, a.inputNorm.attrs, { length: cin, lane: local, lanes: workgroupSize }, (c) => load(sample, c), body);
    const apply: Stmt[] = [];
    const normed = bind(apply, 'v_' + a.inputNorm.op, norm.apply!(load(sample, ch), stats, b.context(a.inputNorm, pooledSite), a.inputNorm.attrs));
    apply.push(store(sample, ch, normed));
    body.push(loop('c', local, g.CIN, apply, { step: WG }), barrier);
  }
  const oc = ref('oc', 'u32');
  const perOutput: Stmt[] = [var_('acc', biasOf(b, a.c, oc) ?? { kind: 'const', type: 'f32', value: 0 })];
  perOutput.push(loop('k', 0, g.CIN, [assign('acc', add(ref('acc', 'f32'), mul(load(sample, ref('k', 'u32')), load(weight, add(mul(ref('k', 'u32'), g.COUT), oc)))))]));
  const outIndex = add(mul(n, g.COUT), oc);
  const v = b.applyElementwise(a.before, ref('acc', 'f32'), { index: outIndex, n, c: oc, shape: node.type.shape }, perOutput);
  perOutput.push(store(output, outIndex, v));
  if (slices === 1) {
    body.push(loop('oc', local, g.COUT, perOutput, { step: WG }));
  } else {
    // The pooling and normalisation are recomputed by each slice's workgroup: far less work
    // than its share of the linear layer, which then spreads over the device.
    body.push(let_('first', mul(rem(group, u32(slices, 'SLICES')), u32(slice, 'SLICE'))));
    const first = ref('first', 'u32');
    body.push(loop('oc', add(first, local), min(add(first, u32(slice, 'SLICE')), g.COUT), perOutput, { step: WG }));
  }
  return program(b, node, a.c, schedule, workgroupSize, g.n * slices, body);
}

/** How a contraction's weight is packed: [out, in/g, kh, kw] -> [kh, kw, in/g, out]. */
export function packContractionWeight(tensor: HostTensor): Float32Array {
  const [cout, cinPerGroup, kh = 1, kw = 1] = tensor.shape;
  const data = new Float32Array(numel(tensor.shape));
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < cinPerGroup; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) data[((y * kw + x) * cinPerGroup + i) * cout + o] = tensor.data[((o * cinPerGroup + i) * kh + y) * kw + x];
  return data;
}
