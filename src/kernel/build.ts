// Builders for kernel-IR expressions and statements, so that op math and lowering read like
// the formulas they implement: add(x, f32(1)), lt(i, u32(n)), rsqrt(...).
import type { BinaryOp, Expr, ScalarType, Stmt, UnaryOp } from './ir.js';

export const f32 = (value: number, name?: string): Expr => ({ kind: 'const', type: 'f32', value, ...(name ? { name } : {}) });
export const u32 = (value: number, name?: string): Expr => {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`internal: ${value} is not a u32`);
  return { kind: 'const', type: 'u32', value, ...(name ? { name } : {}) };
};
export const i32 = (value: number): Expr => ({ kind: 'const', type: 'i32', value });
export const bool = (value: boolean): Expr => ({ kind: 'const', type: 'bool', value });
export const ref = (name: string, type: ScalarType): Expr => ({ kind: 'ref', name, type });
export const local: Expr = { kind: 'builtin', type: 'u32', name: 'local' };
export const group: Expr = { kind: 'builtin', type: 'u32', name: 'group' };

const comparisons: ReadonlySet<BinaryOp> = new Set(['lt', 'le', 'gt', 'ge', 'eq', 'ne', 'and', 'or']);
/** The binary ops defined on two vec4f operands (componentwise). */
const vectorOps: ReadonlySet<BinaryOp> = new Set(['add', 'sub', 'mul', 'div', 'min', 'max']);

function binary(op: BinaryOp, a: Expr, b: Expr): Expr {
  if (a.type !== b.type) throw new Error(`internal: ${op} of ${a.type} and ${b.type}`);
  if (a.type === 'vec4f' && !vectorOps.has(op)) throw new Error(`internal: ${op} of vec4f`);
  return { kind: 'binary', op, a, b, type: comparisons.has(op) ? 'bool' : a.type };
}
const scalarOnly = (what: string, e: Expr): Expr => {
  if (e.type === 'vec4f') throw new Error(`internal: ${what} of vec4f`);
  return e;
};
const unary = (op: UnaryOp, a: Expr): Expr => ({ kind: 'unary', op, a: scalarOnly(op, a), type: a.type });
/** The identity folds below must not hide a vec4f mixed with a scalar. */
const noMix = (op: BinaryOp, a: Expr, b: Expr): void => {
  if ((a.type === 'vec4f') !== (b.type === 'vec4f')) throw new Error(`internal: ${op} of ${a.type} and ${b.type}`);
};

const isConst = (e: Expr, value: number): boolean => e.kind === 'const' && e.value === value && e.name === undefined;

// Index arithmetic folds identities, so generated code does not say `x * 1u + 0u`.
// add, sub, mul, div, min and max also take two vec4f operands (componentwise).
export const add = (a: Expr, b: Expr): Expr => {
  noMix('add', a, b);
  return isConst(b, 0) ? a : isConst(a, 0) ? b : binary('add', a, b);
};
export const sub = (a: Expr, b: Expr): Expr => {
  noMix('sub', a, b);
  return isConst(b, 0) ? a : binary('sub', a, b);
};
export const mul = (a: Expr, b: Expr): Expr => {
  noMix('mul', a, b);
  return a.type !== 'f32' && (isConst(b, 1) || isConst(a, 1)) ? (isConst(b, 1) ? a : b) : binary('mul', a, b);
};
export const div = (a: Expr, b: Expr): Expr => {
  noMix('div', a, b);
  return a.type !== 'f32' && isConst(b, 1) ? a : binary('div', a, b);
};
export const rem = (a: Expr, b: Expr): Expr => binary('rem', a, b);
export const min = (a: Expr, b: Expr): Expr => binary('min', a, b);
export const max = (a: Expr, b: Expr): Expr => binary('max', a, b);
/** Bitwise exclusive or of two u32. */
export const xor = (a: Expr, b: Expr): Expr => {
  if (a.type !== 'u32') throw new Error(`internal: xor of ${a.type}`);
  return binary('xor', a, b);
};
export const lt = (a: Expr, b: Expr): Expr => binary('lt', a, b);
export const le = (a: Expr, b: Expr): Expr => binary('le', a, b);
export const gt = (a: Expr, b: Expr): Expr => binary('gt', a, b);
export const ge = (a: Expr, b: Expr): Expr => binary('ge', a, b);
export const eq = (a: Expr, b: Expr): Expr => binary('eq', a, b);
export const and = (a: Expr, b: Expr): Expr => binary('and', a, b);
export const or = (a: Expr, b: Expr): Expr => binary('or', a, b);
export const neg = (a: Expr): Expr => unary('neg', a);
export const abs = (a: Expr): Expr => unary('abs', a);
export const sqrt = (a: Expr): Expr => unary('sqrt', a);
export const rsqrt = (a: Expr): Expr => unary('rsqrt', a);
export const exp = (a: Expr): Expr => unary('exp', a);
export const erf = (a: Expr): Expr => unary('erf', a);
export const not = (a: Expr): Expr => unary('not', a);
export const cast = (type: ScalarType, a: Expr): Expr => {
  if (type === 'vec4f' || a.type === 'vec4f') throw new Error(`internal: cast of ${a.type} to ${type}`);
  return a.type === type ? a : { kind: 'cast', type, a };
};
export const select = (cond: Expr, a: Expr, b: Expr): Expr => {
  if (a.type !== b.type) throw new Error(`internal: select of ${a.type} and ${b.type}`);
  return { kind: 'select', type: scalarOnly('select', a).type, cond, a, b };
};
export const load = (memory: string, index: Expr): Expr => ({ kind: 'load', type: 'f32', memory, index });
/** Elements index .. index+3 as a vec4f: memory declared `vector: 4`, index a multiple of 4. */
export const load4 = (memory: string, index: Expr): Expr => ({ kind: 'load', type: 'vec4f', memory, index });
/** A vec4f of four f32 parts (x, y, z, w). */
export const vec4 = (a: Expr, b: Expr, c: Expr, d: Expr): Expr => {
  for (const p of [a, b, c, d]) if (p.type !== 'f32') throw new Error(`internal: a vec4f part of type ${p.type}`);
  return { kind: 'vector', type: 'vec4f', parts: [a, b, c, d] };
};
/** Component i (0 = x .. 3 = w) of a vec4f. */
export const component = (v: Expr, i: 0 | 1 | 2 | 3): Expr => {
  if (v.type !== 'vec4f') throw new Error(`internal: component of ${v.type}`);
  if (![0, 1, 2, 3].includes(i)) throw new Error(`internal: component ${String(i)} of a vec4f`);
  return { kind: 'component', type: 'f32', a: v, index: i };
};

/** ceil(a / b) for positive integers, at build time. */
export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

// Statements.
export const comment = (text: string): Stmt => ({ kind: 'comment', text });
export const let_ = (name: string, value: Expr): Stmt => ({ kind: 'let', name, value });
export const var_ = (name: string, value: Expr): Stmt => ({ kind: 'var', name, value });
export const assign = (name: string, value: Expr): Stmt => ({ kind: 'assign', name, value });
export const registers = (name: string, length: number): Stmt => ({ kind: 'registers', name, length });
export const store = (memory: string, index: Expr, value: Expr): Stmt => ({ kind: 'store', memory, index, value });
export const barrier: Stmt = { kind: 'barrier' };
export const if_ = (cond: Expr, then: readonly Stmt[], else_?: readonly Stmt[]): Stmt => ({ kind: 'if', cond, then, ...(else_ ? { else: else_ } : {}) });
export const reduceSum = (into: string, value: Expr, lanes: number, strategy: 'tree' | 'subgroup' = 'tree'): Stmt => ({ kind: 'reduce', into, value, lanes, strategy });

/** for (index = from; index < to; index += step), u32; `step` defaults to 1. */
export function loop(index: string, from: Expr | number, to: Expr | number, body: readonly Stmt[], options: { step?: Expr | number; unroll?: boolean } = {}): Stmt {
  const asExpr = (e: Expr | number): Expr => (typeof e === 'number' ? u32(e) : e);
  return { kind: 'loop', index, from: asExpr(from), to: asExpr(to), step: asExpr(options.step ?? 1), body, ...(options.unroll ? { unroll: true } : {}) };
}

/** A `let` and a reference to it, for the common "name this value" step. */
export function bind(into: Stmt[], name: string, value: Expr): Expr {
  into.push(let_(name, value));
  return ref(name, value.type);
}
