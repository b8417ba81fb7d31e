// What a graph costs: parameter count and multiply-adds (conv and linear only, the convention
// of the ConvNeXt papers' "FLOPs" column).
import { getOp } from './registry.js';
import { numel, type Graph } from './types.js';

export interface GraphCost {
  readonly params: number;
  readonly macs: number;
  /** How many nodes of each op. */
  readonly ops: Readonly<Record<string, number>>;
}

export function graphCost(graph: Graph): GraphCost {
  let params = 0;
  // The model's parameters are those a checkpoint holds; folded weights are computed from them.
  for (const spec of graph.params.values()) if (!spec.derived) params += numel(spec.shape);
  let macs = 0;
  const ops: Record<string, number> = {};
  for (const node of graph.nodes) {
    const op = getOp(node.op);
    macs += op.macs(node.inputs.map((i) => graph.nodes[i].type), node.type, node.attrs);
    ops[node.op] = (ops[node.op] ?? 0) + 1;
  }
  return { params, macs, ops };
}

/** 28_589_128 -> "28.59M"; 4_470_000_000 -> "4.47G". */
export function humanCount(n: number): string {
  const units: readonly [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, unit] of units) if (n >= scale) return `${(n / scale).toFixed(2)}${unit}`;
  return String(n);
}

/**
 * Host memory a forward pass on the reference executor needs at its peak, in bytes (f32): every
 * weight (folded ones included), plus the activations alive at once, each value freed after its
 * last reader as the executor does. The WebGPU backend holds the same weights on the host while
 * it packs them, and less in activations.
 */
export function peakHostBytes(graph: Graph): number {
  let weights = 0;
  for (const spec of graph.params.values()) weights += numel(spec.shape);
  const lastUse = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) lastUse[input] = node.id;
  for (const output of graph.outputs) lastUse[output.id] = Infinity;
  let live = 0;
  let peak = 0;
  for (const node of graph.nodes) {
    live += numel(node.type.shape);
    peak = Math.max(peak, live);
    for (const input of new Set(node.inputs)) if (lastUse[input] === node.id) live -= numel(graph.nodes[input].type.shape);
  }
  return 4 * (weights + peak);
}
