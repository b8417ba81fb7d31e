// Helpers for passes that drop or replace nodes: renumbering keeps ids equal to positions.
import type { Graph, Node, ValueId } from '../ir/types.js';

/**
 * Rebuilds a graph without the nodes in `forward`, each of whose uses is redirected to the
 * value it maps to (which must come earlier). Ids are renumbered densely.
 */
export function removeForwarded(graph: Graph, forward: ReadonlyMap<ValueId, ValueId>): Graph {
  const resolve = (id: ValueId): ValueId => {
    let target = id;
    while (forward.has(target)) target = forward.get(target)!;
    return target;
  };
  const renumber = new Map<ValueId, ValueId>();
  const nodes: Node[] = [];
  for (const node of graph.nodes) {
    if (forward.has(node.id)) continue;
    const id = nodes.length;
    renumber.set(node.id, id);
    nodes.push({ ...node, id, inputs: node.inputs.map((i) => renumber.get(resolve(i))!) });
  }
  return { ...graph, nodes, output: renumber.get(resolve(graph.output))! };
}
