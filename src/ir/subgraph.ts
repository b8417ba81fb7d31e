// A graph cut down to some of its values: what `convc bench` times apart (FCMAE's encoder, the
// sparse region, without its decoder). Inputs stay, so the cut graph takes what the whole does.
import { getOp } from './registry.js';
import type { Graph, GraphOutput, Node, ValueId } from './types.js';

/** The nodes `outputs` depend on (and every graph input), renumbered, with only their weights. */
export function subgraph(graph: Graph, outputs: readonly GraphOutput[]): Graph {
  const needed = new Set<ValueId>();
  const visit = (id: ValueId) => {
    if (needed.has(id)) return;
    needed.add(id);
    for (const input of graph.nodes[id].inputs) visit(input);
  };
  for (const output of outputs) visit(output.id);
  for (const node of graph.nodes) if (getOp(node.op).graphInput !== undefined) needed.add(node.id);
  const renumber = new Map<ValueId, ValueId>();
  const nodes: Node[] = [];
  for (const node of graph.nodes) {
    if (!needed.has(node.id)) continue;
    renumber.set(node.id, nodes.length);
    const mask = node.type.mask === undefined ? {} : { mask: renumber.get(node.type.mask)! };
    const compact = node.type.compact === undefined ? {} : { compact: renumber.get(node.type.compact)! };
    nodes.push({ ...node, id: nodes.length, inputs: node.inputs.map((i) => renumber.get(i)!), type: { ...node.type, ...mask, ...compact } });
  }
  const used = new Set(nodes.flatMap((n) => [...Object.values(n.params), ...[...(n.fusion?.prologue ?? []), ...(n.fusion?.epilogue ?? [])].flatMap((s) => Object.values(s.params))]));
  for (const spec of graph.params.values()) if (used.has(spec.key) && spec.derived) used.add(spec.derived.source).add(spec.derived.scale);
  return {
    ...graph,
    nodes,
    outputs: outputs.map((o) => ({ name: o.name, id: renumber.get(o.id)! })),
    params: new Map([...graph.params].filter(([key]) => used.has(key))),
  };
}

/**
 * The values a sparse region hands to the rest of the graph (FCMAE's encoding): region values
 * (dense-masked or compact) read outside it, in the region's dense form where compacted. For
 * an elaborated graph (passes may fold region values into nodes outside it).
 */
export function sparseRegionResults(graph: Graph): ValueId[] {
  const inRegion = (n: Node) => n.type.mask !== undefined || n.type.compact !== undefined;
  const results: ValueId[] = [];
  for (const node of graph.nodes) {
    if (inRegion(node)) continue;
    for (const input of node.inputs) {
      const source = graph.nodes[input];
      // The dense form of a compact value is its scatter_patches, outside the region itself.
      const result = source.op === 'scatter_patches' ? source.id : inRegion(source) ? source.id : undefined;
      if (result !== undefined && !results.includes(result)) results.push(result);
    }
  }
  return results;
}
