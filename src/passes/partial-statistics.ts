// GRN statistics from partial sums (../shared/DESIGN.md's pw1 epilogue): the pointwise layer
// that makes GRN's input (pw1, with GELU folded in) already holds every element it writes, so
// its kernel also writes each run of a few positions' sums of squares per channel, and the
// statistics kernel finishes those instead of reading the 4C-channel activation again. The
// runs follow the GEMM's rows per thread (a thread sums the rows it owns), so the pass asks
// the target's default schedule, and the schedule check keeps any other schedule compatible.
import { defaultSchedule } from '../kernel/schedule.js';
import { getOp } from '../ir/registry.js';
import type { Graph, Node } from '../ir/types.js';
import type { Pass } from './manager.js';
import { defaultPassContext, type PassContext } from './context.js';

/**
 * The positions per partial sum for `producer`'s kernel under the target's default schedule:
 * the largest power of two dividing both its threads' rows and the value's H x W, so that no
 * run straddles two samples; undefined where that is 1 (partials as large as the value) or the
 * kernel is not a GEMM.
 */
export function partialRun(producer: Node, context: PassContext): number | undefined {
  const schedule = defaultSchedule(producer, context.target);
  if (schedule.strategy !== 'gemm' || producer.type.shape.length !== 4) return undefined;
  const positions = producer.type.shape[2] * producer.type.shape[3];
  let run = 1;
  while (schedule.threadRows % (run * 2) === 0 && positions % (run * 2) === 0) run *= 2;
  return run >= 2 ? run : undefined;
}

function withPartials(graph: Graph, context: PassContext): Graph {
  const replace = new Map<number, Node>();
  for (const stats of graph.nodes) {
    const math = getOp(stats.op).kernel;
    // One spatial statistic, a sum of a term of each element alone, can be summed in parts.
    if (math.kind !== 'reduction' || math.over !== 'spatial' || stats.fusion || math.stats.length !== 1 || math.stats[0].centredOn !== undefined) continue;
    const producer = replace.get(stats.inputs[0]) ?? graph.nodes[stats.inputs[0]];
    if (getOp(producer.op).kind !== 'out-elementwise-fusable' || producer.fusion?.partials) continue;
    const candidate: Node = { ...producer, fusion: { prologue: producer.fusion?.prologue ?? [], epilogue: producer.fusion?.epilogue ?? [], partials: { op: stats.op, attrs: stats.attrs, positions: 1, name: stats.name } } };
    const run = partialRun(candidate, context);
    if (run === undefined) continue;
    replace.set(producer.id, { ...candidate, fusion: { ...candidate.fusion!, partials: { ...candidate.fusion!.partials!, positions: run } } });
    replace.set(stats.id, { ...stats, fusion: { prologue: [], epilogue: [], fromPartials: run } });
  }
  return replace.size === 0 ? graph : { ...graph, nodes: graph.nodes.map((node) => replace.get(node.id) ?? node) };
}

export const partialStatistics: Pass = {
  name: 'partial-statistics',
  description: "has the GEMM that makes a GRN's input write partial sums of squares, which grn_stats finishes",
  run: (graph, context = defaultPassContext) => withPartials(graph, context),
};
