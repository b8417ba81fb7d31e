// Kernels for nodes whose op is a reduction (LayerNorm, pooling, GRN statistics), from the
// statistics the op declares: `lanes` threads share each reduced row.
//   over channels: a row is a pixel; out = apply(x, stats) for each of its channels.
//   over space:    a row is a (sample, channel); out = the last statistic. With `then`, a
//                  row is a sample: each channel's statistic, then those reduced over channels.
//   over all:      one row of every element; out = the last statistic.
import { add, and, div, f32, group, if_, let_, load, local, loop, mul, ref, rem, store, sub, u32 } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
import type { ReductionMath } from '../math.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type Node } from '../../ir/types.js';
import { guarded, KernelBuilder, lessThan, nodeUse, type Site } from './builder.js';
import { nhwc } from './elementwise.js';

export function lowerReduction(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'rows' }>): KernelProgram {
  const declared = getOp(node.op).kernel;
  if (declared.kind !== 'reduction') throw new Error(`internal: '${node.op}' is not a reduction`);
  const b = new KernelBuilder(graph, node);
  const shape = nhwc(b.inputType(0).shape);
  const { n, channels } = shape;
  // Finishing partial sums (Fusion.fromPartials): each run of `run` positions is one element
  // already holding its terms' sum, laid out as the value's positions were ([n, runs, c]).
  const run = node.fusion?.fromPartials;
  // Statistics over the whole batch (GRN over_batch): one row whose positions are every
  // sample's in turn (NHWC keeps them consecutive), its result written for each sample.
  const spansBatch = declared.spansBatch?.(node.attrs) === true;
  if (spansBatch && (declared.over !== 'spatial' || !declared.then)) throw new Error(`internal: ${node.op} spans the batch but is no spatial reduction with a second one`);
  const perSample = run === undefined ? shape.positions : shape.positions / run;
  const positions = spansBatch ? n * perSample : perSample;
  const math = run === undefined ? declared : fromPartialSums(declared, spansBatch ? n * shape.positions : shape.positions);
  const input = run === undefined ? b.input(0) : b.partials(node.inputs[0], run, 'read');
  const output = b.output();
  if (schedule.element) return lowerReductionElements(b, node, schedule, { math, input, output, channels, n, positions, spansBatch });
  const { lanes, workgroupSize } = schedule;
  const rowsPerGroup = workgroupSize / lanes;
  const body: Stmt[] = [];
  const rowCount = math.over === 'channels' ? n * positions : math.over === 'all' ? 1 : math.then ? (spansBatch ? 1 : n) : n * channels;
  body.push(let_('row', add(mul(group, u32(rowsPerGroup, 'ROWS_PER_WORKGROUP')), div(local, u32(lanes, 'LANES')))));
  body.push(let_('lane', rem(local, u32(lanes, 'LANES'))));
  const row = ref('row', 'u32');
  const lane = ref('lane', 'u32');
  const active = lessThan(row, rowCount, 'ROWS');
  const C = u32(channels, 'C');
  const P = u32(positions, 'P');

  if (math.over === 'channels') {
    // A pixel's channels are contiguous in NHWC.
    body.push(let_('base', mul(row, C)), let_('n', div(row, P)));
    const base = ref('base', 'u32');
    const at = (c: Expr) => add(base, c);
    const stats = b.rowStatistics(math, node.attrs, { length: channels, lane, lanes, active, reduction: schedule.reduction }, (c) => load(input, at(c)), body);
    const apply = math.apply;
    if (!apply) throw new Error(`internal: ${node.op} reduces channels away`);
    const inner: Stmt[] = [];
    const c = ref('c', 'u32');
    const site = { index: at(c), n: ref('n', 'u32'), c, shape: node.type.shape };
    inner.push(store(output, at(c), apply(load(input, at(c)), stats, b.context(nodeUseOf(node), site), node.attrs)));
    body.push(if_(active, [{ kind: 'loop', index: 'c', from: lane, to: C, step: u32(lanes), body: inner }]));
  } else if (math.over === 'all') {
    // One row: every element in memory (NHWC) order, each term at its own site (a masked
    // mean's weight is the mask there); the last statistic is the one output.
    const inShape = b.inputType(0).shape;
    const total = numel(inShape);
    const site = (i: Expr): Site => ({ index: i, n: div(i, u32(total / n)), c: rem(i, u32(channels)), shape: inShape });
    const stats = b.rowStatistics(math, node.attrs, { length: total, lane, lanes, active, reduction: schedule.reduction, at: (i) => b.context(nodeUse(node), site(i)) }, (i) => load(input, i), body);
    body.push(if_(and(active, lessThan(lane, 1)), [store(output, u32(0), stats[math.stats[math.stats.length - 1].name])]));
  } else if (!math.then) {
    // A (sample, channel)'s positions are C apart.
    body.push(let_('c', rem(row, C)), let_('n', div(row, C)));
    const [nn, cc] = [ref('n', 'u32'), ref('c', 'u32')];
    const stats = b.rowStatistics(math, node.attrs, { length: positions, lane, lanes, active, reduction: schedule.reduction }, (p) => load(input, add(mul(add(mul(nn, P), p), C), cc)), body);
    const last = stats[math.stats[math.stats.length - 1].name];
    body.push(if_(and(active, lessThan(lane, 1)), [store(output, row, last)]));
  } else {
    // A sample per row: its lanes take channels lane, lane + lanes, ...; each channel's spatial
    // statistic is computed by one thread, written out, then reduced over channels.
    const then = math.then;
    const nn = row;
    const perChannel: Stmt[] = [];
    const cc = ref('c', 'u32');
    const spatial = b.rowStatistics(math, node.attrs, { length: positions, lane: u32(0), lanes: 1 }, (p) => load(input, add(mul(add(mul(nn, P), p), C), cc)), perChannel);
    perChannel.push(store(output, add(mul(nn, C), cc), spatial[math.stats[math.stats.length - 1].name]));
    body.push(if_(active, [{ kind: 'loop', index: 'c', from: lane, to: C, step: u32(lanes), body: perChannel }]));
    const stats = b.rowStatistics(then as ReductionMath, node.attrs, { length: channels, lane, lanes, active, reduction: schedule.reduction }, (c) => load(output, add(mul(nn, C), c)), body);
    const apply = then.apply;
    if (!apply) throw new Error(`internal: ${node.op}'s second reduction has no apply`);
    const inner: Stmt[] = [];
    const c = ref('c', 'u32');
    const index = add(mul(nn, C), c);
    const site = { index, n: nn, c, shape: node.type.shape };
    const value = apply(load(output, index), stats, b.context(nodeUseOf(node), site), node.attrs);
    if (spansBatch) {
      // Row 0 holds the statistics; every sample gets the same result.
      inner.push(let_('result', value), loop('s', 0, n, [store(output, add(mul(ref('s', 'u32'), C), c), ref('result', 'f32'))]));
    } else {
      inner.push(store(output, index, value));
    }
    body.push(if_(active, [{ kind: 'loop', index: 'c', from: lane, to: C, step: u32(lanes), body: inner }]));
  }
  return b.finish({
    name: node.op === 'layernorm' ? 'layernorm_channels' : node.op,
    summary: getOp(node.op).summary,
    workgroupSize,
    workgroups: Math.ceil(rowCount / rowsPerGroup),
    schedule,
    body,
  });
}

/** What lowerReduction has worked out of the node before choosing a thread's work. */
interface ReductionPlan {
  readonly math: ReductionMath;
  readonly input: string;
  readonly output: string;
  readonly channels: number;
  /** Samples. */
  readonly n: number;
  /** Positions a row of a spatial statistic covers (every sample's where it spans the batch). */
  readonly positions: number;
  readonly spansBatch: boolean;
}

/**
 * A thread per element of the value (schedule.element): each computes the statistics of its
 * row itself and writes only its own element, the one its global index numbers. A LayerNorm
 * element reads its pixel's channels; a GRN statistic reads every channel's positions of its
 * sample, computing each channel's spatial statistic on the way (C x H x W reads an element,
 * where a thread per sample would share them: the price of a target without shared writes).
 */
function lowerReductionElements(b: KernelBuilder, node: Node, schedule: Extract<Schedule, { strategy: 'rows' }>, plan: ReductionPlan): KernelProgram {
  const { math, input, output, channels, n, positions, spansBatch } = plan;
  const total = numel(node.type.shape);
  const body: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const index = ref('index', 'u32');
  const inner: Stmt[] = [];
  const C = u32(channels, 'C');
  const P = u32(positions, 'P');
  const one = { lane: u32(0), lanes: 1 };
  const last = (stats: Record<string, Expr>, of: ReductionMath) => stats[of.stats[of.stats.length - 1].name];
  if (math.over === 'channels') {
    // The element's pixel (a row) and channel; a pixel's channels are contiguous in NHWC.
    inner.push(let_('c', rem(index, C)), let_('base', sub(index, ref('c', 'u32'))), let_('n', div(index, mul(P, C))));
    const base = ref('base', 'u32');
    const stats = b.rowStatistics(math, node.attrs, { length: channels, ...one }, (c) => load(input, add(base, c)), inner);
    if (!math.apply) throw new Error(`internal: ${node.op} reduces channels away`);
    const site = { index, n: ref('n', 'u32'), c: ref('c', 'u32'), shape: node.type.shape };
    inner.push(store(output, index, math.apply(load(input, index), stats, b.context(nodeUseOf(node), site), node.attrs)));
  } else if (math.over === 'all') {
    const inShape = b.inputType(0).shape;
    const all = numel(inShape);
    const site = (i: Expr): Site => ({ index: i, n: div(i, u32(all / n)), c: rem(i, C), shape: inShape });
    const stats = b.rowStatistics(math, node.attrs, { length: all, ...one, at: (i) => b.context(nodeUse(node), site(i)) }, (i) => load(input, i), inner);
    inner.push(store(output, index, last(stats, math)));
  } else {
    // The element is a (sample, channel); a (sample, channel)'s positions are C apart, and
    // across the batch (spansBatch) every sample's positions in turn.
    inner.push(let_('c', rem(index, C)), let_('n', div(index, C)));
    const [nn, cc] = [ref('n', 'u32'), ref('c', 'u32')];
    const first = spansBatch ? u32(0) : mul(nn, P);
    const spatial = (channel: Expr, into: Stmt[]): Expr => last(b.rowStatistics(math, node.attrs, { length: positions, ...one }, (p) => load(input, add(mul(add(first, p), C), channel)), into), math);
    const mine = spatial(cc, inner);
    if (!math.then) {
      inner.push(store(output, index, mine));
    } else {
      const then = math.then as ReductionMath;
      const stats = b.rowStatistics(then, node.attrs, { length: channels, ...one }, (c, into) => spatial(c, into), inner);
      if (!then.apply) throw new Error(`internal: ${node.op}'s second reduction has no apply`);
      const site = { index, n: nn, c: cc, shape: node.type.shape };
      inner.push(store(output, index, then.apply(mine, stats, b.context(nodeUseOf(node), site), node.attrs)));
    }
  }
  body.push(...guarded(lessThan(index, total, 'ELEMENTS'), inner));
  return b.finish({
    name: node.op === 'layernorm' ? 'layernorm_channels' : node.op,
    summary: getOp(node.op).summary,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(total / schedule.workgroupSize),
    schedule,
    body,
  });
}

function nodeUseOf(node: Node) {
  return { op: node.op, attrs: node.attrs, params: node.params, operands: [], name: node.name };
}

/**
 * The op's spatial statistic over partial sums: each element is already a sum of terms, so its
 * term is the element itself, and the statistic is finished with the count of positions the
 * sums cover, not of the sums.
 */
function fromPartialSums(math: ReductionMath, positions: number): ReductionMath {
  if (math.over !== 'spatial' || math.stats.length !== 1) throw new Error('internal: only a single spatial statistic is summed in parts');
  const [stat] = math.stats;
  return { ...math, stats: [{ name: stat.name, term: (x) => x, finish: (sum, _count, stats, attrs) => stat.finish(sum, f32(positions), stats, attrs) }] };
}
