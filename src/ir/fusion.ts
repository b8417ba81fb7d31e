// The meaning of a fused node, for everything that is not a backend: its type, the weights it
// reads, and its value on the host. A fused node computes
//   epilogue(op(prologue(inputs[0]), inputs[1 .. arity-1]))
// where each step takes its running value first and its operands (node inputs) after.
import { getOp } from './registry.js';
import type { FusedStep, HostTensor, Node, TensorType } from './types.js';

/** The steps of a node in execution order, with the anchor op in the middle. */
export function stepsOf(node: Node): { readonly prologue: readonly FusedStep[]; readonly epilogue: readonly FusedStep[] } {
  return node.fusion ?? { prologue: [], epilogue: [] };
}

/** Runs `apply` for the prologue, the node's own op, and the epilogue, threading the value. */
function chain<T>(node: Node, inputs: readonly T[], apply: (op: string, args: readonly T[], attrs: Node['attrs'], params: Node['params']) => T): T {
  const { prologue, epilogue } = stepsOf(node);
  const arity = getOp(node.op).arity;
  let value = inputs[0];
  for (const step of prologue) value = apply(step.op, [value, ...step.operands.map((i) => inputs[i])], step.attrs, step.params);
  value = arity === 0 ? apply(node.op, [], node.attrs, node.params) : apply(node.op, [value, ...inputs.slice(1, arity)], node.attrs, node.params);
  for (const step of epilogue) value = apply(step.op, [value, ...step.operands.map((i) => inputs[i])], step.attrs, step.params);
  return value;
}

/** The node's output type from its inputs' types; throws ShapeError as op shape rules do. */
export function inferNode(node: Node, inputs: readonly TensorType[]): TensorType {
  return chain(node, inputs, (op, args, attrs) => getOp(op).infer(args, attrs));
}

/** Every (role -> key) map of the node: its own op's and each step's. */
export function paramSetsOf(node: Node): { readonly op: string; readonly attrs: Node['attrs']; readonly params: Node['params'] }[] {
  const { prologue, epilogue } = stepsOf(node);
  return [...prologue, { op: node.op, attrs: node.attrs, params: node.params }, ...epilogue];
}

/** The node's value on the host, with each op's reference semantics. */
export function evaluateNode(node: Node, inputs: readonly HostTensor[], weight: (key: string) => HostTensor): HostTensor {
  return chain(node, inputs, (op, args, attrs, params) => {
    const def = getOp(op);
    const type = def.infer(args.map((a) => ({ shape: a.shape, dtype: 'f32' })), attrs);
    const bound: Record<string, HostTensor> = {};
    for (const [role, key] of Object.entries(params)) bound[role] = weight(key);
    return { shape: type.shape, data: def.evaluate(args, bound, attrs, type) };
  });
}
