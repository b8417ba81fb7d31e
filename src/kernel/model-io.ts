// Where a model's named inputs and outputs meet its kernels. An image (rank 4) arrives NCHW and
// a layout kernel turns it into the NHWC value kernels read; any other input (a patch mask,
// [N, rows, cols]) lies the same way for the caller and the kernels, so they read the caller's
// buffer as that node's value and it has no kernel of its own. Likewise a rank-4 output leaves
// through a layout kernel into a buffer of its own, and any other is its node's own buffer.
import { getOp } from '../ir/registry.js';
import type { Graph, GraphOutput, Node, ValueId } from '../ir/types.js';

/** The input's name when kernels read the caller's tensor as this node's value; else undefined. */
export function directInput(node: Node): string | undefined {
  const name = getOp(node.op).graphInput;
  return name !== undefined && node.type.shape.length !== 4 ? name : undefined;
}

/**
 * An input's shape as callers hold it: images NCHW; a patch mask [N, L], one row of patches
 * per sample, which is the graph's [N, rows, cols] in the same memory.
 */
export function callerShape(node: Node): readonly number[] {
  const shape = node.type.shape;
  return shape.length === 3 ? [shape[0], shape[1] * shape[2]] : shape;
}

/** Whether the node is computed by a kernel (all but the inputs read directly). */
export const hasKernel = (node: Node): boolean => directInput(node) === undefined;

export interface ModelInput {
  readonly name: string;
  readonly node: Node;
}

/**
 * The graph's inputs in the order a caller passes them (a runner's `run(input, mask)`): the
 * image first, the others in node order.
 */
export function modelInputs(graph: Graph): ModelInput[] {
  const inputs: ModelInput[] = [];
  for (const node of graph.nodes) {
    const name = getOp(node.op).graphInput;
    if (name !== undefined) inputs.push({ name, node });
  }
  return [...inputs.filter((i) => i.name === 'input'), ...inputs.filter((i) => i.name !== 'input')];
}

/** Whether the output leaves through a layout kernel (NHWC -> NCHW) rather than as its node's buffer. */
export const leavesThroughLayout = (graph: Graph, output: GraphOutput): boolean => graph.nodes[output.id].type.shape.length === 4;

/** Whether value `id` is the caller's as it is: an output that is its node's own buffer. */
export const isDirectOutput = (graph: Graph, id: ValueId): boolean => graph.outputs.some((o) => o.id === id && !leavesThroughLayout(graph, o));
