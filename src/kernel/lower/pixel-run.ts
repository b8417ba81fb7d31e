// The depthwise convolution normalised over channels after it (ConvNeXt's 7x7 depthwise conv +
// LayerNorm) with several output pixels of a row per thread. Neighbouring pixels' windows
// overlap along the row: for each filter row, a thread loads the (pixels - 1) * stride + KW
// input columns its run of pixels spans once, and the filter row's KW weights once, and adds
// each product to every pixel whose window holds it. With 4 pixels of a 7x7 filter that is
// 17 loads for 28 multiply-adds, against 2 loads for each one when every pixel reads its own
// window; on a CPU emulation, where each of those loads is a gather, the loads are the cost.
import { add, and, assign, bind, cast, comment, div, ge, group, i32, if_, let_, load, local, loop, lt, mul, ref, registers, rem, store, sub, u32, var_ } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
import type { Schedule } from '../schedule.js';
import type { Graph, Node } from '../../ir/types.js';
import { KernelBuilder, lessThan, type Site } from './builder.js';
import { anatomy, biasOf, contractionWeight, geometry, loadInput, program, reductionOf, weightIndex } from './contraction.js';

/**
 * `lanes` threads own a run of `pixels` adjacent output pixels of one row (the last run of a
 * row may stick out past its end: those pixels are computed from zeros and never stored).
 * Thread `lane` computes channels lane, lane + lanes, ... of every pixel of the run, then the
 * lanes reduce each pixel's statistics and normalise its channels, as lowerPixel does for one.
 */
export function lowerPixelRun(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'pixel' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const { c } = a;
  const g = geometry(b, c);
  if (c.groups !== c.inChannels || c.groups !== c.outChannels || node.type.shape.length !== 4) throw new Error(`internal: ${node.name} is not a depthwise convolution`);
  const norm = a.norm!;
  const math = reductionOf(norm.op)!;
  const input = b.input(0);
  const weight = contractionWeight(b, c);
  const output = b.output();
  const { lanes, workgroupSize } = schedule;
  const pixels = schedule.pixels ?? 1;
  const [, , ho, wo] = node.type.shape;
  const [kh, kw] = c.kernel;
  const [sh, sw] = c.stride;
  const [ph, pw] = c.padding;
  const runsPerRow = Math.ceil(wo / pixels);
  const runs = g.n * ho * runsPerRow;
  const runsPerGroup = workgroupSize / lanes;
  const LANES = u32(lanes, 'LANES');
  const body: Stmt[] = [
    comment(`${lanes} thread(s) per run of ${pixels} output pixels of a row: compute their channels, reduce over them, normalise.`),
    let_('run', add(mul(group, u32(runsPerGroup, 'RUNS_PER_WORKGROUP')), div(local, LANES))),
    let_('lane', rem(local, LANES)),
    let_('out_row', div(ref('run', 'u32'), u32(runsPerRow, 'RUNS_PER_ROW'))),
    let_('ox0', mul(rem(ref('run', 'u32'), u32(runsPerRow, 'RUNS_PER_ROW')), u32(pixels, 'RUN_PIXELS'))),
    let_('n', div(ref('out_row', 'u32'), u32(ho, 'HO'))),
    let_('oy', rem(ref('out_row', 'u32'), u32(ho, 'HO'))),
  ];
  const [run, lane, outRow, ox0, n, oy] = ['run', 'lane', 'out_row', 'ox0', 'n', 'oy'].map((x) => ref(x, 'u32'));
  const active = lessThan(run, runs, 'RUNS');
  const qs = Array.from({ length: pixels }, (_, q) => q);
  const bases = qs.map((q) => bind(body, `base_${q}`, mul(add(mul(outRow, g.WO), add(ox0, u32(q))), g.COUT)));
  // Whether pixel q of the run lies in the row: always, unless the runs overhang the row's end.
  const inRow = (q: number): Expr | undefined => (wo % pixels === 0 || q === 0 ? undefined : lt(add(ox0, u32(q)), g.WO));
  const exists = (q: number): Expr => {
    const within = inRow(q);
    return within ? and(active, within) : active;
  };
  const site = (q: number, channel: Expr): Site => ({ index: add(bases[q], channel), n, c: channel, shape: node.type.shape });

  // The thread's channels: a loop, or unrolled slots whose values stay in registers.
  const perThread = Math.ceil(c.outChannels / lanes);
  const stash = schedule.registers ? 'vals' : undefined;
  const walk = (name: string, inner: (channel: Expr, slot: Expr, into: Stmt[]) => void): Stmt => {
    const into: Stmt[] = [];
    if (!stash) {
      inner(ref(name, 'u32'), ref(name, 'u32'), into);
      return { kind: 'loop', index: name, from: lane, to: g.COUT, step: LANES, body: into };
    }
    into.push(let_(name, add(lane, mul(ref('slot', 'u32'), LANES))));
    const guardedBody: Stmt[] = [];
    inner(ref(name, 'u32'), ref('slot', 'u32'), guardedBody);
    into.push(if_(lt(ref(name, 'u32'), g.COUT), guardedBody));
    return loop('slot', 0, perThread, into, { unroll: true });
  };
  const stashed = (q: number, slot: Expr): Expr => add(u32(q * perThread), slot);
  const stored = (q: number, channel: Expr, slot: Expr): Expr => (stash ? load(stash, stashed(q, slot)) : load(output, add(bases[q], channel)));
  if (stash) body.push(registers(stash, pixels * perThread));

  const compute = walk('oc', (oc, slot, into) => {
    const zero: Expr = { kind: 'const', type: 'f32', value: 0 };
    const bias = biasOf(b, c, oc);
    for (const q of qs) into.push(var_(`acc_${q}`, bias ?? zero));
    const filterRow: Stmt[] = [];
    const iy = inputCoordinate(filterRow, 'iy', add(mul(oy, u32(sh)), ref('ky', 'u32')), ph, g.h);
    const taps: Stmt[] = [];
    const weights = Array.from({ length: kw }, (_, kx) => bind(taps, `w_${kx}`, load(weight, weightIndex(g, add(mul(ref('ky', 'u32'), u32(kw, 'KW')), u32(kx)), u32(0), oc))));
    const span = (pixels - 1) * sw + kw;
    // Without padding a column can still fall past the input's edge when the last run overhangs.
    const overhangs = (runsPerRow * pixels - 1) * sw + kw - 1 - pw >= g.w;
    for (let t = 0; t < span; t++) {
      const ix = inputCoordinate(taps, `ix_${t}`, add(mul(ox0, u32(sw)), u32(t)), pw, g.w, overhangs);
      const x = `x_${t}`;
      taps.push(var_(x, zero));
      const loaded: Stmt[] = [];
      const value = loadInput(b, g, a.pre, input, add(mul(add(mul(n, g.H), iy.at), g.W), ix.at), oc, n, loaded);
      loaded.push(assign(x, value));
      taps.push(...(ix.inside ? [if_(ix.inside, loaded)] : loaded));
      for (const q of qs) {
        const kx = t - q * sw;
        if (kx >= 0 && kx < kw) taps.push(assign(`acc_${q}`, add(ref(`acc_${q}`, 'f32'), mul(ref(x, 'f32'), weights[kx]))));
      }
    }
    filterRow.push(...(iy.inside ? [if_(iy.inside, taps)] : taps));
    into.push(loop('ky', 0, u32(kh, 'KH'), filterRow));
    for (const q of qs) {
      const v = b.applyElementwise(a.before, ref(`acc_${q}`, 'f32'), site(q, oc), into);
      const within = inRow(q);
      const keep = stash ? store(stash, stashed(q, slot), v) : store(output, add(bases[q], oc), v);
      into.push(stash || !within ? keep : if_(within, [keep]));
    }
  });
  body.push(if_(active, [compute]));
  const statistics = qs.map((q) =>
    b.rowStatistics(
      math,
      norm.attrs,
      { length: c.outChannels, lane, lanes, active: exists(q), reduction: schedule.reduction, ...(stash ? { perThread } : {}) },
      (ch, _into, slot) => stored(q, ch, slot),
      body,
    ),
  );
  for (const q of qs) {
    body.push(
      if_(exists(q), [
        walk('c', (ch, slot, finish) => {
          const normed = bind(finish, b.fresh('v_' + norm.op), math.apply!(stored(q, ch, slot), statistics[q], b.context(norm, site(q, ch)), norm.attrs));
          const last = b.applyElementwise(a.after, normed, site(q, ch), finish);
          finish.push(store(output, add(bases[q], ch), last));
        }),
      ]),
    );
  }
  return program(b, node, c, schedule, workgroupSize, Math.ceil(runs / runsPerGroup), body);
}

/**
 * Input coordinate `name` = `at` - pad along an axis of `extent`, with the condition that it lies
 * inside (none when it always does). `checkEnd`: without padding the position may still pass
 * the far edge (a run overhanging its row).
 */
function inputCoordinate(into: Stmt[], name: string, at: Expr, pad: number, extent: number, checkEnd = false): { at: Expr; inside?: Expr } {
  if (pad === 0) {
    const coordinate = bind(into, name, at);
    return checkEnd ? { at: coordinate, inside: lt(coordinate, u32(extent)) } : { at: coordinate };
  }
  const signed = bind(into, `${name}_signed`, sub(cast('i32', at), i32(pad)));
  const coordinate = bind(into, name, cast('u32', signed));
  return { at: coordinate, inside: and(ge(signed, i32(0)), lt(signed, i32(extent))) };
}
