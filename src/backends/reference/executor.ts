// The reference executor: runs any IR graph on the CPU, node by node, with each op's own
// evaluate() (fused nodes step by step). It is the ground truth every other backend is compared with, so it stays plain.
import { evaluateNode } from '../../ir/fusion.js';
import { formatShape, sameShape, type Graph, type HostTensor, type Node } from '../../ir/types.js';

export type WeightMap = ReadonlyMap<string, HostTensor>;

/** Values die after their last reader, so peak memory is a few activations, not all of them. */
function lastUses(graph: Graph): number[] {
  const last = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) last[input] = node.id;
  last[graph.output] = Infinity;
  return last;
}

export interface ExecuteOptions {
  /** Called after each node, e.g. for a progress bar. */
  readonly onNode?: (done: number, total: number) => void;
  /** Called with each node's value as soon as it is computed. */
  readonly onValue?: (node: Node, value: HostTensor) => void;
}

export function executeReference(graph: Graph, weights: WeightMap, input: HostTensor, options: ExecuteOptions = {}): HostTensor {
  const values = new Map<number, HostTensor>();
  const last = lastUses(graph);
  for (const node of graph.nodes) {
    let result: HostTensor;
    if (node.op === 'input') {
      if (!sameShape(input.shape, node.type.shape)) {
        throw new Error(`internal: input is ${formatShape(input.shape)} but the graph was built for ${formatShape(node.type.shape)}`);
      }
      result = input;
    } else {
      const inputs = node.inputs.map((i) => values.get(i)!);
      result = evaluateNode(node, inputs, (key) => {
        const tensor = weights.get(key);
        if (!tensor) throw new Error(`internal: weight '${key}' was not bound`);
        return tensor;
      });
    }
    values.set(node.id, result);
    options.onValue?.(node, result);
    for (const i of node.inputs) if (last[i] === node.id) values.delete(i);
    options.onNode?.(node.id + 1, graph.nodes.length);
  }
  return values.get(graph.output)!;
}
