// What identifies a kernel for tuning, independent of node names: the node's op, attributes,
// value type, the ops and attributes of its fused steps and the roles of the weights it reads.
// Two nodes with the same key lower to the same kernel under the same schedule (the memory plan
// may bind other buffers), so one measurement serves all of them, in this model and any other.
// The target's limits are not in the key: they are checked where a tuned schedule is used
// (lookup.ts), so a schedule that no longer fits falls back to the default instead of failing.
import { createHash } from 'node:crypto';
import { formatShape, type FusedStep, type Node } from '../ir/types.js';

/** JSON with object keys sorted, so equal structures give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const stepStructure = (s: FusedStep) => ({ op: s.op, attrs: s.attrs, operands: s.operands.length, params: Object.keys(s.params).sort() });

/**
 * The tuning key of the kernel computing `node`: a readable part (the fused ops and the output
 * shape) and a hash of the whole structure, e.g. `linear+gelu [1, 160, 56, 56] #3f09c1d2a7b4`.
 */
export function kernelKey(node: Node): string {
  const prologue = node.fusion?.prologue ?? [];
  const epilogue = node.fusion?.epilogue ?? [];
  const structure = {
    op: node.op,
    attrs: node.attrs,
    type: { shape: node.type.shape, dtype: node.type.dtype, masked: node.type.mask !== undefined },
    arity: node.inputs.length,
    params: Object.keys(node.params).sort(),
    prologue: prologue.map(stepStructure),
    epilogue: epilogue.map(stepStructure),
  };
  const hash = createHash('sha256').update(canonicalJson(structure)).digest('hex').slice(0, 12);
  const ops = [...prologue.map((s) => s.op), node.op, ...epilogue.map((s) => s.op)].join('+');
  return `${ops} ${formatShape(node.type.shape)} #${hash}`;
}
