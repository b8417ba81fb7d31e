// The reference executor: runs any IR graph on the CPU, node by node, with each op's own
// evaluate() (fused nodes step by step). It is the ground truth every other backend is compared with, so it stays plain.
import { evaluateNode } from '../../ir/fusion.js';
import { graphInputs, singleInputOutput } from '../../ir/graph-io.js';
import { getOp } from '../../ir/registry.js';
import { formatShape, sameShape, type Graph, type HostTensor, type Node } from '../../ir/types.js';

export type WeightMap = ReadonlyMap<string, HostTensor>;

/** Values die after their last reader, so peak memory is a few activations, not all of them. */
function lastUses(graph: Graph): number[] {
  const last = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) last[input] = node.id;
  for (const output of graph.outputs) last[output.id] = Infinity;
  return last;
}

export interface ExecuteOptions {
  /** Called after each node, e.g. for a progress bar. */
  readonly onNode?: (done: number, total: number) => void;
  /** Called with each node's value as soon as it is computed. */
  readonly onValue?: (node: Node, value: HostTensor) => void;
}

/** Tensors by input or output name. */
export type NamedTensors = Readonly<Record<string, HostTensor>>;

/** Runs a graph on named inputs (every graph input, none else) to its named outputs. */
export function executeGraph(graph: Graph, weights: WeightMap, inputs: NamedTensors, options: ExecuteOptions = {}): Record<string, HostTensor> {
  const expected = graphInputs(graph).map((i) => i.name);
  const given = Object.keys(inputs);
  if (given.length !== expected.length || !expected.every((name) => name in inputs)) {
    throw new Error(`internal: '${graph.name}' takes inputs ${expected.join(', ')}, given ${given.join(', ')}`);
  }
  const values = new Map<number, HostTensor>();
  const last = lastUses(graph);
  for (const node of graph.nodes) {
    let result: HostTensor;
    const inputName = getOp(node.op).graphInput;
    if (inputName !== undefined) {
      result = inputs[inputName];
      if (!sameShape(result.shape, node.type.shape)) {
        throw new Error(`internal: ${inputName} is ${formatShape(result.shape)} but the graph was built for ${formatShape(node.type.shape)}`);
      }
    } else {
      const operands = node.inputs.map((i) => values.get(i)!);
      result = evaluateNode(node, operands, (key) => {
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
  return Object.fromEntries(graph.outputs.map((o) => [o.name, values.get(o.id)!]));
}

/** A model of one image input and one output: its output for `input`. */
export function executeReference(graph: Graph, weights: WeightMap, input: HostTensor, options: ExecuteOptions = {}): HostTensor {
  const { output } = singleInputOutput(graph, 'executeReference');
  const name = graph.outputs.find((o) => o.id === output)!.name;
  return executeGraph(graph, weights, { input }, options)[name];
}
