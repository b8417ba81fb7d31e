// A graph's inputs and outputs by name. A classifier has one of each (`input`, `output`);
// FCMAE takes an image and a patch mask and returns its prediction and its loss.
import { userError } from '../util/diagnostics.js';
import { getOp } from './registry.js';
import type { Graph, Node, ValueId } from './types.js';

export interface GraphInput {
  readonly name: string;
  readonly node: Node;
}

export function isGraphInput(node: Node): boolean {
  return getOp(node.op).graphInput !== undefined;
}

/** The graph's inputs in node order, each under the name its op gives it. */
export function graphInputs(graph: Graph): GraphInput[] {
  const inputs: GraphInput[] = [];
  for (const node of graph.nodes) {
    const name = getOp(node.op).graphInput;
    if (name !== undefined) inputs.push({ name, node });
  }
  return inputs;
}

/** The input of this name; an internal error when the graph has none. */
export function graphInput(graph: Graph, name: string): Node {
  const found = graphInputs(graph).find((i) => i.name === name);
  if (!found) throw new Error(`internal: graph '${graph.name}' has no input '${name}'`);
  return found.node;
}

/** The main result: a classifier's logits, FCMAE's prediction. */
export function mainOutput(graph: Graph): ValueId {
  return graph.outputs[0].id;
}

export function isGraphOutput(graph: Graph, id: ValueId): boolean {
  return graph.outputs.some((o) => o.id === id);
}

/**
 * For the parts of convc that run models of one input and one output (the WebGPU runner, ONNX
 * export, the tuner): the image input and the output, or a user error naming what `what`
 * cannot do yet.
 */
export function singleInputOutput(graph: Graph, what: string): { readonly input: Node; readonly output: ValueId } {
  const inputs = graphInputs(graph);
  if (inputs.length !== 1 || inputs[0].name !== 'input' || graph.outputs.length !== 1) {
    const names = (list: readonly { readonly name: string }[]) => list.map((i) => i.name).join(', ');
    throw userError(
      `${what} handles models with one image input and one output; '${graph.name}' takes ${names(inputs)} and returns ${names(graph.outputs)}`,
    );
  }
  return { input: inputs[0].node, output: graph.outputs[0].id };
}
