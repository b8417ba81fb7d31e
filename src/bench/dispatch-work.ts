// What each dispatch of a lowered program computes, in IR terms: the ops it covers (a node and
// the steps fused into it), the FLOPs that work is worth, the bytes it binds, and which dispatch
// of the fused program computes the same IR nodes as a dispatch of the unfused one. `convc
// bench --profile` turns per-dispatch times into GFLOP/s and GB/s with it, and sets each fused
// kernel beside the unfused kernels it replaces. Read off the graph and the WgslProgram only:
// nothing here decides anything about kernels.
import type { WgslProgram } from '../backends/wgsl/program.js';
import { describeNode } from '../ir/print.js';
import { getOp } from '../ir/registry.js';
import { numel, type Attrs, type Graph, type Node, type TensorType } from '../ir/types.js';
import { mainOutput } from '../ir/graph-io.js';

/** How FLOPs are counted; printed under the profile table and carried in its JSON. */
export const flopsConvention =
  'FLOPs = 2 x MACs for conv and linear, plus 1 per element of the larger of input and output for every other op or fused step (LayerNorm, GELU, GRN, add: a floor; they do several), 0 for layout changes';

/** How bytes are counted; printed under the profile table and carried in its JSON. */
export const bytesConvention = "bytes = the tensors a dispatch binds, each counted once (bytes bound: a lower bound on its memory traffic)";

/** One IR op a dispatch computes: a node, or a step fused into one, by op and node name. */
export interface CoveredOp {
  readonly op: string;
  /** The IR node's name (a fused step keeps the name of the node it absorbed); "" when unnamed. */
  readonly name: string;
}

/** The op the output's layout change (NHWC back to NCHW) is listed as; it is no IR node. */
export const outputLayoutOp = 'output_layout';

export interface DispatchWork {
  /** The kernel kind: the shader's entry point, e.g. conv2d_depthwise_7x7_layernorm. */
  readonly kernel: string;
  /** The IR nodes it computes, as text (Dispatch.covers). */
  readonly covers: string;
  readonly flops: number;
  /** Bytes bound (Dispatch.bytes). */
  readonly bytes: number;
  /** What it computes, in order: prologue steps, the node's op, epilogue steps. */
  readonly ops: readonly CoveredOp[];
  /** The dispatches whose outputs it reads (its node's inputs). */
  readonly reads: readonly number[];
}

/**
 * The FLOPs of one op application under flopsConvention. Opaque ops (the graph input, whose
 * kernel only changes the layout) count none.
 */
export function opFlops(op: string, inputs: readonly TensorType[], out: TensorType, attrs: Attrs): number {
  const def = getOp(op);
  if (def.kind === 'opaque') return 0;
  const macs = def.macs(inputs, out, attrs);
  if (macs > 0) return 2 * macs;
  return Math.max(numel(out.shape), inputs.length > 0 ? numel(inputs[0].shape) : 0);
}

/** A node's FLOPs, its fused steps included: epilogue(op(prologue(inputs[0]), inputs[1..])). */
export function nodeFlops(graph: Graph, node: Node): number {
  const typeOf = (id: number) => graph.nodes[id].type;
  if (!node.fusion) return opFlops(node.op, node.inputs.map(typeOf), node.type, node.attrs);
  let flops = 0;
  // Each step's shapes are inferred along the chain, so a pooling prologue shrinks what follows.
  const apply = (op: string, operands: readonly TensorType[], attrs: Attrs, value: TensorType): TensorType => {
    const inputs = [value, ...operands];
    const out = getOp(op).infer(inputs, attrs);
    flops += opFlops(op, inputs, out, attrs);
    return out;
  };
  let value = typeOf(node.inputs[0]);
  for (const step of node.fusion.prologue) value = apply(step.op, step.operands.map((i) => typeOf(node.inputs[i])), step.attrs, value);
  value = apply(node.op, node.inputs.slice(1, getOp(node.op).arity).map(typeOf), node.attrs, value);
  for (const step of node.fusion.epilogue) value = apply(step.op, step.operands.map((i) => typeOf(node.inputs[i])), step.attrs, value);
  return flops;
}

function coveredOps(node: Node): CoveredOp[] {
  const step = (s: CoveredOp) => ({ op: s.op, name: s.name });
  return [...(node.fusion?.prologue.map(step) ?? []), step(node), ...(node.fusion?.epilogue.map(step) ?? [])];
}

/**
 * The work of each dispatch of `program`, lowered from `graph`. Lowering makes one dispatch per
 * node, in order (so a node's id is its dispatch's index), and then the output's layout change
 * where the output is 4-D. `graph` must be split for kernels already, as both of bench's
 * pipelines are (they run split-grn). Each dispatch's kernel program names the node it was made
 * for, and that is checked here, so a change in lowering shows up as an error, never as a
 * wrong profile.
 */
export function dispatchWork(graph: Graph, program: WgslProgram): DispatchWork[] {
  const nodes = graph.nodes;
  const count = program.dispatches.length;
  if (count !== nodes.length && count !== nodes.length + 1) {
    throw new Error(`internal: ${count} dispatches for ${nodes.length} nodes; the profile cannot tell which dispatch computes which node`);
  }
  return program.dispatches.map((d, i) => {
    const kernel = program.shaders[d.shader].name;
    const node = nodes[i] ?? nodes[mainOutput(graph)];
    if (program.programs[i].covers !== describeNode(node)) {
      throw new Error(`internal: dispatch ${i} computes '${program.programs[i].covers}', not '${describeNode(node)}' as the profile expected`);
    }
    if (i >= nodes.length) return { kernel, covers: d.covers, flops: 0, bytes: d.bytes, ops: [{ op: outputLayoutOp, name: '' }], reads: [node.id] };
    return { kernel, covers: d.covers, flops: nodeFlops(graph, node), bytes: d.bytes, ops: coveredOps(node), reads: node.inputs };
  });
}

/**
 * Keys of the ops of each dispatch: op, name, and how many ops of that op and name came before
 * it in program order. Names alone are not unique: split GRN's two parts share their node's
 * name, and the residual adds have none; fusion keeps the order of the nodes it merges, so
 * the k-th unnamed add of one pipeline is the k-th of the other.
 */
function occurrenceKeys(works: readonly DispatchWork[]): string[][] {
  const seen = new Map<string, number>();
  return works.map((w) =>
    w.ops.map((o) => {
      const base = `${o.op}\u0000${o.name}`;
      const k = seen.get(base) ?? 0;
      seen.set(base, k + 1);
      return `${base}\u0000${k}`;
    }),
  );
}

/**
 * For each unfused dispatch, the fused dispatch that computes its IR node, or null where none
 * does. An op a pass folded away without a trace (a layer scale folded into the weights of the
 * conv or linear before it) is charged to the fused dispatch that computes its input. Every
 * unfused dispatch is assigned once, so the unfused time a fused kernel is set beside sums to
 * the unfused total.
 */
export function replacedBy(fused: readonly DispatchWork[], unfused: readonly DispatchWork[]): (number | null)[] {
  const owner = new Map<string, number>();
  occurrenceKeys(fused).forEach((keys, i) => keys.forEach((key) => owner.set(key, i)));
  const result: (number | null)[] = [];
  occurrenceKeys(unfused).forEach((keys, i) => {
    const direct = keys.map((key) => owner.get(key)).find((at) => at !== undefined);
    const folded = unfused[i].reads.length > 0 ? result[unfused[i].reads[0]] : null;
    result.push(direct ?? folded ?? null);
  });
  return result;
}
