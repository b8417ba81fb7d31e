// The depthwise convolution normalised over channels after it (ConvNeXt's 7x7 depthwise conv +
// LayerNorm) with several output pixels of a row per thread. Neighbouring pixels' windows
// overlap along the row: for each filter row, a thread loads the (pixels - 1) * stride + KW
// input columns its run of pixels spans once, and the filter row's KW weights once, and adds
// each product to every pixel whose window holds it. With 4 pixels of a 7x7 filter that is
// 17 loads for 28 multiply-adds, against 2 loads for each one when every pixel reads its own
// window; on a CPU emulation, where each of those loads is a gather, the loads are the cost.
// Staged (schedule.stage), a workgroup's runs lie in one row and their input window (the halo)
// and the filter are loaded into workgroup memory once for all of them, a chunk of `lanes`
// channels at a time, as GPUs want; the default reads straight from memory.
import { add, and, assign, barrier, bind, cast, comment, div, f32, ge, group, i32, if_, let_, load, local, loop, lt, min, mul, ref, registers, rem, store, sub, u32, var_ } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
import type { Schedule } from '../schedule.js';
import type { Graph, Node } from '../../ir/types.js';
import { KernelBuilder, lessThan, type OpUse, type Site } from './builder.js';
import { anatomy, biasOf, channelWalk, contractionWeight, geometry, loadInput, program, reductionOf, weightIndex, type Geometry } from './contraction.js';

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
  const RUNS_PER_ROW = u32(runsPerRow, 'RUNS_PER_ROW');
  // Staged, a workgroup takes a segment of consecutive runs of one output row, whose input
  // rows and columns (the halo) it loads into workgroup memory together.
  const staged = schedule.stage === true;
  const segments = Math.ceil(runsPerRow / runsPerGroup);
  const body: Stmt[] = [comment(`${lanes} thread(s) per run of ${pixels} output pixels of a row: compute their channels, reduce over them, normalise.`)];
  if (staged) {
    body.push(
      comment(`A workgroup per ${runsPerGroup} runs of one row, its input window and filter staged in workgroup memory ${lanes} channels at a time.`),
      let_('out_row', div(group, u32(segments, 'SEGMENTS'))),
      let_('segment', rem(group, u32(segments, 'SEGMENTS'))),
      let_('run_in_row', add(mul(ref('segment', 'u32'), u32(runsPerGroup, 'RUNS_PER_WORKGROUP')), div(local, LANES))),
      let_('run', add(mul(ref('out_row', 'u32'), RUNS_PER_ROW), ref('run_in_row', 'u32'))),
      let_('ox0', mul(ref('run_in_row', 'u32'), u32(pixels, 'RUN_PIXELS'))),
    );
  } else {
    body.push(
      let_('run', add(mul(group, u32(runsPerGroup, 'RUNS_PER_WORKGROUP')), div(local, LANES))),
      let_('out_row', div(ref('run', 'u32'), RUNS_PER_ROW)),
      let_('ox0', mul(rem(ref('run', 'u32'), RUNS_PER_ROW), u32(pixels, 'RUN_PIXELS'))),
    );
  }
  body.push(let_('lane', rem(local, LANES)), let_('n', div(ref('out_row', 'u32'), u32(ho, 'HO'))), let_('oy', rem(ref('out_row', 'u32'), u32(ho, 'HO'))));
  const [run, lane, outRow, ox0, n, oy] = ['run', 'lane', 'out_row', 'ox0', 'n', 'oy'].map((x) => ref(x, 'u32'));
  const active = staged ? and(lessThan(outRow, g.n * ho, 'OUT_ROWS'), lessThan(ref('run_in_row', 'u32'), runsPerRow, 'RUNS_PER_ROW')) : lessThan(run, runs, 'RUNS');
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
  const eachChannel = channelWalk({ lane, lanes, channels: g.COUT, perThread, registers: stash !== undefined });
  const walk = (name: string, inner: (channel: Expr, slot: Expr, into: Stmt[]) => void, uniform = false): Stmt => {
    if (!uniform) return eachChannel(name, inner);
    // Every thread the same number of times (barriers inside): channel chunk by chunk, the
    // lanes past the last channel computing on zeros and storing nothing.
    const into: Stmt[] = [let_(name, add(lane, mul(ref('slot', 'u32'), LANES)))];
    inner(ref(name, 'u32'), ref('slot', 'u32'), into);
    return loop('slot', 0, perThread, into, stash ? { unroll: true } : {});
  };
  const stashed = (q: number, slot: Expr): Expr => add(u32(q * perThread), slot);
  const stored = (q: number, channel: Expr, slot: Expr): Expr => (stash ? load(stash, stashed(q, slot)) : load(output, add(bases[q], channel)));
  if (stash) body.push(registers(stash, pixels * perThread));

  const haloCols = (runsPerGroup * pixels - 1) * sw + kw;
  const halo = staged ? b.sharedArray('halo_chunk', kh * haloCols * lanes) : '';
  const filter = staged ? b.sharedArray('filter_chunk', kh * kw * lanes) : '';
  const compute = walk('oc', (channel, slot, into) => {
    const zero: Expr = { kind: 'const', type: 'f32', value: 0 };
    // Staged, a lane past the last channel still runs (barriers): it reads the last one's.
    const oc = staged ? bind(into, 'oc_read', min(channel, u32(c.outChannels - 1))) : channel;
    const bias = biasOf(b, c, oc);
    for (const q of qs) into.push(var_(`acc_${q}`, bias ?? zero));
    if (staged) {
      into.push(...stageHalo(b, { g, pre: a.pre, input, weight, halo, filter, lanes, workgroupSize, haloCols, kh, kw, sh, sw, ph, pw, runs: runsPerGroup * pixels }));
      const filterRow: Stmt[] = [];
      const column0 = bind(filterRow, 'column0', mul(div(local, LANES), u32(pixels * sw)));
      const weights = Array.from({ length: kw }, (_, kx) => bind(filterRow, `w_${kx}`, load(filter, add(mul(add(mul(ref('ky', 'u32'), u32(kw, 'KW')), u32(kx)), LANES), lane))));
      for (let t = 0; t < (pixels - 1) * sw + kw; t++) {
        const x = bind(filterRow, `x_${t}`, load(halo, add(mul(add(mul(ref('ky', 'u32'), u32(haloCols, 'HALO_COLS')), add(column0, u32(t))), LANES), lane)));
        for (const q of qs) {
          const kx = t - q * sw;
          if (kx >= 0 && kx < kw) filterRow.push(assign(`acc_${q}`, add(ref(`acc_${q}`, 'f32'), mul(x, weights[kx]))));
        }
      }
      into.push(loop('ky', 0, u32(kh, 'KH'), filterRow), barrier);
    } else {
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
    }
    for (const q of qs) {
      const v = b.applyElementwise(a.before, ref(`acc_${q}`, 'f32'), site(q, oc), into);
      const within = staged ? and(exists(q), lt(channel, g.COUT)) : inRow(q);
      const keep = stash ? store(stash, stashed(q, slot), v) : store(output, add(bases[q], channel), v);
      into.push(!within || (stash && !staged) ? keep : if_(within, [keep]));
    }
  }, staged);
  body.push(staged ? compute : if_(active, [compute]));
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
  return program(b, node, c, schedule, workgroupSize, staged ? g.n * ho * segments : Math.ceil(runs / runsPerGroup), body, staged ? '_staged' : '');
}

/**
 * Statements loading, for this thread's channel chunk (channels slot * lanes ..), the
 * workgroup's input window (KH rows x haloCols columns around its segment of a row, through the
 * prologue, zeros outside the input) and the chunk's filter into workgroup memory, then a
 * barrier. Both are laid out with the chunk's channels innermost, so lane l reads its own.
 */
function stageHalo(
  b: KernelBuilder,
  s: {
    g: Geometry; pre: readonly OpUse[]; input: string; weight: string; halo: string; filter: string;
    lanes: number; workgroupSize: number; haloCols: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; runs: number;
  },
): Stmt[] {
  const { g, lanes, haloCols } = s;
  const LANES = u32(lanes, 'LANES');
  const chunk = mul(ref('slot', 'u32'), LANES);
  const e = ref('e', 'u32');
  const stageIn: Stmt[] = [
    let_('e_channel', add(chunk, rem(e, LANES))),
    let_('e_column', rem(div(e, LANES), u32(haloCols, 'HALO_COLS'))),
    let_('e_row', div(e, u32(lanes * haloCols))),
    let_('e_y', sub(cast('i32', add(mul(ref('oy', 'u32'), u32(s.sh)), ref('e_row', 'u32'))), i32(s.ph))),
    let_('e_x', sub(cast('i32', add(mul(ref('segment', 'u32'), u32(s.runs * s.sw)), ref('e_column', 'u32'))), i32(s.pw))),
    var_('e_value', f32(0)),
  ];
  const [y, x, channel] = [ref('e_y', 'i32'), ref('e_x', 'i32'), ref('e_channel', 'u32')];
  const inside = and(and(and(ge(y, i32(0)), lt(y, i32(g.h))), and(ge(x, i32(0)), lt(x, i32(g.w)))), and(lt(channel, g.COUT), lt(ref('n', 'u32'), u32(g.n))));
  const loaded: Stmt[] = [];
  const value = loadInput(b, g, s.pre, s.input, add(mul(add(mul(ref('n', 'u32'), g.H), cast('u32', y)), g.W), cast('u32', x)), channel, ref('n', 'u32'), loaded);
  loaded.push(assign('e_value', value));
  stageIn.push(if_(inside, loaded), store(s.halo, e, ref('e_value', 'f32')));
  const stageFilter: Stmt[] = [let_('f_channel', add(chunk, rem(e, LANES))), var_('f_value', f32(0))];
  const fChannel = ref('f_channel', 'u32');
  stageFilter.push(if_(lt(fChannel, g.COUT), [assign('f_value', load(s.weight, weightIndex(g, div(e, LANES), u32(0), fChannel)))]), store(s.filter, e, ref('f_value', 'f32')));
  const WG = u32(s.workgroupSize, 'WORKGROUP_SIZE');
  return [loop('e', local, s.kh * haloCols * lanes, stageIn, { step: WG }), loop('e', local, s.kh * s.kw * lanes, stageFilter, { step: WG }), barrier];
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
