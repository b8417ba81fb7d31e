// Values of the .cnx language at elaboration time, and the expression evaluator.
import type { Expr } from './ast.js';
import { userError, type SourceLoc } from '../util/diagnostics.js';

export type Value =
  | { readonly t: 'int'; readonly v: number }
  | { readonly t: 'float'; readonly v: number }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'string'; readonly v: string }
  | { readonly t: 'list'; readonly items: readonly Value[] }
  /** A tensor of the graph being built, named by `let x = op(...)`: an argument to ops that take one. */
  | { readonly t: 'tensor'; readonly id: number; readonly shape: readonly number[] };

export const int = (v: number): Value => ({ t: 'int', v });

// Limits that keep elaboration bounded whatever the input: a .cnx file is a program, and a
// program can loop, recurse or multiply work without end. Each limit is far above what any real
// ConvNeXt needs and far below what would take minutes or gigabytes.

/**
 * Work units (statements run, expression nodes evaluated, list items compared or summed) one
 * elaboration may spend. The largest zoo model needs about 10^4; a 2000-block model about 10^5.
 */
export const MAX_ELABORATION_STEPS = 5_000_000;
/** Items in one list value; lists are written out literally, so no real model comes close. */
export const MAX_LIST_LENGTH = 10_000;
/** Characters of a value quoted in an error message, so a huge list cannot flood the terminal. */
const MAX_SHOWN_CHARS = 120;

/** The work budget of one elaboration, shared by every environment of it. */
export class Budget {
  private spent = 0;
  constructor(readonly limit: number = MAX_ELABORATION_STEPS) {}

  /** Spends `units`; a located error once the budget is gone. */
  charge(units: number, loc: SourceLoc | undefined): void {
    this.spent += units;
    if (this.spent > this.limit) {
      throw userError(`elaboration takes more than ${this.limit} steps here; is a loop range or a block call far larger than intended?`, loc);
    }
  }

  get used(): number {
    return this.spent;
  }
}

/** An int result that JS numbers cannot hold exactly is an error, never a rounded value. */
function checkedInt(v: number, loc: SourceLoc): Value {
  if (!Number.isSafeInteger(v)) throw userError(`integer overflow: the result ${v} is beyond ±(2^53 - 1), the largest integers convc represents exactly`, loc);
  return { t: 'int', v };
}

/** A float result must stay finite (1e300 * 1e300 is not a number any target can use). */
function checkedFloat(v: number, loc: SourceLoc): Value {
  if (!Number.isFinite(v)) throw userError(`float overflow: the result is ${v}`, loc);
  return { t: 'float', v };
}

export function typeName(value: Value): string {
  switch (value.t) {
    case 'int':
      return 'an integer';
    case 'float':
      return 'a float';
    case 'bool':
      return 'a bool';
    case 'string':
      return 'a string';
    case 'list':
      return 'a list';
    case 'tensor':
      return 'a tensor';
  }
}

export function show(value: Value): string {
  const text = showFull(value, MAX_SHOWN_CHARS + 1);
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 3)}...` : text;
}

/** The value's text, stopping early once it is longer than `room` characters. */
function showFull(value: Value, room: number): string {
  switch (value.t) {
    case 'list': {
      let text = '[';
      for (let i = 0; i < value.items.length && text.length <= room; i++) text += (i > 0 ? ', ' : '') + showFull(value.items[i], room - text.length);
      return `${text}]`;
    }
    case 'string':
      return JSON.stringify(value.v);
    case 'float':
      // 6.0, not 6: "needs an integer, but this is a float (6)" would read as a contradiction.
      return Number.isInteger(value.v) ? value.v.toFixed(1) : String(value.v);
    case 'tensor':
      return `tensor [${value.shape.join(', ')}]`;
    default:
      return String(value.v);
  }
}

/** Lexically scoped variables: block and family parameters, `let`s and loop variables. */
export class Env {
  private readonly vars = new Map<string, Value>();
  /** Shared with every child, so one elaboration has one budget. */
  readonly budget: Budget;

  constructor(
    private readonly parent?: Env,
    budget?: Budget,
  ) {
    this.budget = budget ?? parent?.budget ?? new Budget();
  }

  get(name: string): Value | undefined {
    return this.vars.get(name) ?? this.parent?.get(name);
  }

  set(name: string, value: Value): void {
    this.vars.set(name, value);
  }

  child(): Env {
    return new Env(this);
  }
}

export const builtins: Readonly<Record<string, { readonly minArgs: number; readonly maxArgs: number; readonly doc: string }>> = {
  len: { minArgs: 1, maxArgs: 1, doc: 'length of a list' },
  min: { minArgs: 1, maxArgs: Infinity, doc: 'smallest of its numbers (or of one list)' },
  max: { minArgs: 1, maxArgs: Infinity, doc: 'largest of its numbers (or of one list)' },
  sum: { minArgs: 1, maxArgs: 1, doc: 'sum of a list of numbers' },
};

function expectNumber(value: Value, loc: SourceLoc, what: string): number {
  if (value.t !== 'int' && value.t !== 'float') throw userError(`${what} needs a number, but this is ${typeName(value)} (${show(value)})`, loc);
  return value.v;
}

function expectInt(value: Value, loc: SourceLoc, what: string): number {
  if (value.t !== 'int') throw userError(`${what} needs an integer, but this is ${typeName(value)} (${show(value)})`, loc);
  return value.v;
}

export function expectBool(value: Value, loc: SourceLoc, what: string): boolean {
  if (value.t !== 'bool') throw userError(`${what} needs a bool (true or false), but this is ${typeName(value)} (${show(value)})`, loc);
  return value.v;
}

function numbersOf(args: readonly Value[], locs: readonly SourceLoc[], fn: string): { values: number[]; allInt: boolean } {
  const list = args.length === 1 && args[0].t === 'list' ? args[0].items : args;
  if (list.length === 0) throw userError(`${fn}() of an empty list`, locs[0]);
  const values = list.map((v, i) => expectNumber(v, locs[Math.min(i, locs.length - 1)], `${fn}()`));
  return { values, allInt: list.every((v) => v.t === 'int') };
}

function equal(a: Value, b: Value, budget: Budget, loc: SourceLoc): boolean {
  if (a.t === 'list' || b.t === 'list') {
    if (!(a.t === 'list' && b.t === 'list' && a.items.length === b.items.length)) return false;
    budget.charge(a.items.length, loc);
    return a.items.every((x, i) => equal(x, b.items[i], budget, loc));
  }
  if (a.t === 'tensor' || b.t === 'tensor') return a.t === 'tensor' && b.t === 'tensor' && a.id === b.id;
  return a.v === b.v;
}

export function evaluate(expr: Expr, env: Env): Value {
  env.budget.charge(1, expr.loc);
  switch (expr.kind) {
    case 'int':
      return checkedInt(expr.value, expr.loc);
    case 'float':
      return checkedFloat(expr.value, expr.loc);
    case 'bool':
      return { t: 'bool', v: expr.value };
    case 'string':
      return { t: 'string', v: expr.value };
    case 'error':
      throw new Error('internal: elaborating an expression that failed to parse');
    case 'name': {
      const value = env.get(expr.name);
      if (!value) throw userError(`'${expr.name}' is not defined here`, expr.loc);
      return value;
    }
    case 'list':
      if (expr.items.length > MAX_LIST_LENGTH) throw userError(`a list may hold at most ${MAX_LIST_LENGTH} items; this one has ${expr.items.length}`, expr.loc);
      return { t: 'list', items: expr.items.map((item) => evaluate(item, env)) };
    case 'index': {
      const target = evaluate(expr.target, env);
      if (target.t !== 'list') throw userError(`only lists can be indexed, but this is ${typeName(target)} (${show(target)})`, expr.target.loc);
      const index = expectInt(evaluate(expr.index, env), expr.index.loc, 'an index');
      const resolved = index < 0 ? target.items.length + index : index;
      if (resolved < 0 || resolved >= target.items.length) {
        throw userError(`index ${index} is out of range for a list of length ${target.items.length} (${show(target)})`, expr.loc);
      }
      return target.items[resolved];
    }
    case 'call': {
      const args = expr.args.map((a) => evaluate(a.value, env));
      const locs = expr.args.map((a) => a.value.loc);
      switch (expr.callee) {
        case 'len': {
          const [list] = args;
          if (list.t !== 'list') throw userError(`len() needs a list, but this is ${typeName(list)}`, locs[0]);
          return int(list.items.length);
        }
        case 'min':
        case 'max': {
          const { values, allInt } = numbersOf(args, locs, expr.callee);
          env.budget.charge(values.length, expr.loc);
          // A loop, not Math.min(...values): spreading a long list overflows the call stack.
          let v = values[0];
          for (const x of values) v = expr.callee === 'min' ? Math.min(v, x) : Math.max(v, x);
          return allInt ? int(v) : { t: 'float', v };
        }
        case 'sum': {
          const [list] = args;
          if (list.t !== 'list') throw userError(`sum() needs a list, but this is ${typeName(list)}`, locs[0]);
          if (list.items.length === 0) return int(0);
          const { values, allInt } = numbersOf(args, locs, 'sum');
          env.budget.charge(values.length, expr.loc);
          const v = values.reduce((a, b) => a + b, 0);
          return allInt ? checkedInt(v, expr.loc) : checkedFloat(v, expr.loc);
        }
        default:
          throw userError(`unknown function '${expr.callee}'`, expr.loc);
      }
    }
    case 'unary': {
      const operand = evaluate(expr.operand, env);
      if (expr.op === 'not') return { t: 'bool', v: !expectBool(operand, expr.operand.loc, "'not'") };
      const v = expectNumber(operand, expr.operand.loc, "'-'");
      return operand.t === 'int' ? checkedInt(-v, expr.loc) : { t: 'float', v: -v };
    }
    case 'binary': {
      const left = evaluate(expr.left, env);
      if (expr.op === 'and' || expr.op === 'or') {
        const l = expectBool(left, expr.left.loc, `'${expr.op}'`);
        if (expr.op === 'and' ? !l : l) return { t: 'bool', v: l };
        return { t: 'bool', v: expectBool(evaluate(expr.right, env), expr.right.loc, `'${expr.op}'`) };
      }
      const right = evaluate(expr.right, env);
      if (expr.op === '==') return { t: 'bool', v: equal(left, right, env.budget, expr.loc) };
      if (expr.op === '!=') return { t: 'bool', v: !equal(left, right, env.budget, expr.loc) };
      const what = `'${expr.op}'`;
      const a = expectNumber(left, expr.left.loc, what);
      const b = expectNumber(right, expr.right.loc, what);
      const ints = left.t === 'int' && right.t === 'int';
      const number = (v: number): Value => (ints ? checkedInt(v, expr.loc) : checkedFloat(v, expr.loc));
      switch (expr.op) {
        case '+':
          return number(a + b);
        case '-':
          return number(a - b);
        case '*':
          return number(a * b);
        case '/':
          if (b === 0) throw userError('division by zero', expr.loc);
          return checkedFloat(a / b, expr.loc);
        case '//':
          if (b === 0) throw userError('division by zero', expr.loc);
          return number(Math.floor(a / b));
        case '%':
          if (b === 0) throw userError('division by zero', expr.loc);
          return number(a - b * Math.floor(a / b));
        case '<':
          return { t: 'bool', v: a < b };
        case '<=':
          return { t: 'bool', v: a <= b };
        case '>':
          return { t: 'bool', v: a > b };
        case '>=':
          return { t: 'bool', v: a >= b };
      }
    }
  }
}
