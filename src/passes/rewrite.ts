// Helpers for passes that drop, replace or insert nodes: renumbering keeps ids equal to positions.
import type { Graph, Node, ValueId } from '../ir/types.js';

/**
 * Rebuilds a graph with some nodes replaced and others removed. Each removed node's uses go to
 * the value it forwards to (which must come earlier); replacements keep their position.
 * Ids are renumbered densely.
 */
export function rewriteGraph(graph: Graph, forward: ReadonlyMap<ValueId, ValueId>, replace: ReadonlyMap<ValueId, Node> = new Map()): Graph {
  // Memoised, so long forwarding chains cost linear time in all.
  const resolved = new Map<ValueId, ValueId>();
  const resolve = (id: ValueId): ValueId => {
    let target = id;
    const chain: ValueId[] = [];
    while (forward.has(target)) {
      const known = resolved.get(target);
      if (known !== undefined) {
        target = known;
        break;
      }
      chain.push(target);
      target = forward.get(target)!;
    }
    for (const at of chain) resolved.set(at, target);
    return target;
  };
  const renumber = new Map<ValueId, ValueId>();
  const nodes: Node[] = [];
  for (const original of graph.nodes) {
    if (forward.has(original.id)) continue;
    const node = replace.get(original.id) ?? original;
    const id = nodes.length;
    renumber.set(original.id, id);
    nodes.push({ ...node, id, inputs: node.inputs.map((i) => renumber.get(resolve(i))!) });
  }
  return { ...graph, nodes, outputs: graph.outputs.map((o) => ({ ...o, id: renumber.get(resolve(o.id))! })) };
}

/** Removes nodes, sending their uses to the value each forwards to. */
export function removeForwarded(graph: Graph, forward: ReadonlyMap<ValueId, ValueId>): Graph {
  return rewriteGraph(graph, forward);
}

/** How many times each value is read (the graph's output counts as a read). */
export function useCounts(graph: Graph): number[] {
  const uses = graph.nodes.map(() => 0);
  for (const node of graph.nodes) for (const input of node.inputs) uses[input]++;
  for (const output of graph.outputs) uses[output.id]++;
  return uses;
}

/**
 * Rebuilds a graph node by node: `expand` returns the nodes that replace one (ids are assigned
 * here, inputs name values of the new graph) and which of them stands for the original.
 */
export function expandNodes(graph: Graph, expand: (node: Node, remap: (id: ValueId) => ValueId, next: () => ValueId) => { nodes: Node[]; result: ValueId } | undefined): Graph {
  const remapped = new Map<ValueId, ValueId>();
  const nodes: Node[] = [];
  const remap = (id: ValueId) => remapped.get(id)!;
  for (const node of graph.nodes) {
    let nextId = nodes.length;
    const expansion = expand(node, remap, () => nextId++);
    if (expansion) {
      nodes.push(...expansion.nodes);
      remapped.set(node.id, expansion.result);
    } else {
      const id = nodes.length;
      nodes.push({ ...node, id, inputs: node.inputs.map(remap) });
      remapped.set(node.id, id);
    }
  }
  return { ...graph, nodes, outputs: graph.outputs.map((o) => ({ ...o, id: remap(o.id) })) };
}
