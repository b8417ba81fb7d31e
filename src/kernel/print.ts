// A target-neutral text form of a kernel program, for `convc inspect --kernel N`: what one
// dispatch computes, before any target's syntax or the expansion of reductions gets in the way.
// Also home of the walk that collects a program's named constants, which every renderer needs
// and must agree on (kernel/ is the one place both this printer and the backends import from).
//
// Vectors: memory declared `vector: 4` prints as `f32x4[length]` (length and indices still
// count f32 elements, as everywhere in the IR); a vector load as `load4 x[i]`, a vector store as
// `store4 out[i] <- v`, the constructor as `vec4(a, b, c, d)` and a component as `v.x`.
import type { BinaryOp, BufferLayout, BufferRef, Expr, KernelProgram, ScalarType, Stmt, StorageType } from './ir.js';

/** A constant the program names (Expr `const` with `name`), declared once by renderers. */
export interface NamedConstant {
  readonly name: string;
  readonly type: ScalarType;
  readonly value: number | boolean;
}

function exprChildren(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'const':
    case 'ref':
    case 'builtin':
      return [];
    case 'binary':
      return [e.a, e.b];
    case 'unary':
    case 'cast':
      return [e.a];
    case 'select':
      return [e.cond, e.a, e.b];
    case 'load':
      return [e.index];
    case 'vector':
      return e.parts;
    case 'component':
      return [e.a];
  }
}

/** Every statement of a statement list, nested ones included, parents before children. */
export function walkStmts(body: readonly Stmt[]): Stmt[] {
  const found: Stmt[] = [];
  const walk = (list: readonly Stmt[]): void => {
    for (const s of list) {
      found.push(s);
      if (s.kind === 'loop') walk(s.body);
      else if (s.kind === 'if') {
        walk(s.then);
        if (s.else) walk(s.else);
      }
    }
  };
  walk(body);
  return found;
}

/** The names of the per-thread register arrays a body declares, anywhere in it. */
export function registerNames(body: readonly Stmt[]): Set<string> {
  return new Set(walkStmts(body).flatMap((s) => (s.kind === 'registers' ? [s.name] : [])));
}

/**
 * Every expression of a statement list, parents before children, in reading order. Collected
 * into an array by plain recursion: nested generators cost a resumption per level per
 * expression, and renderers walk every kernel's body more than once.
 */
export function walkExprs(stmts: readonly Stmt[]): Expr[] {
  const found: Expr[] = [];
  const expr = (e: Expr): void => {
    found.push(e);
    for (const c of exprChildren(e)) expr(c);
  };
  const walk = (list: readonly Stmt[]): void => {
    for (const s of list) {
      switch (s.kind) {
        case 'comment':
        case 'registers':
        case 'barrier':
          break;
        case 'let':
        case 'var':
        case 'assign':
          expr(s.value);
          break;
        case 'store':
          expr(s.index);
          expr(s.value);
          break;
        case 'loop':
          expr(s.from);
          expr(s.to);
          expr(s.step);
          walk(s.body);
          break;
        case 'if':
          expr(s.cond);
          walk(s.then);
          if (s.else) walk(s.else);
          break;
        case 'reduce':
        case 'shuffle-xor':
          expr(s.value);
          break;
      }
    }
  };
  walk(stmts);
  return found;
}

/**
 * The named constants of a body, each once, in order of first appearance. A name used with two
 * different types or values is a lowering bug (one declaration cannot mean both), so it throws.
 */
export function namedConstants(stmts: readonly Stmt[]): NamedConstant[] {
  const found = new Map<string, NamedConstant>();
  for (const e of walkExprs(stmts)) {
    if (e.kind !== 'const' || e.name === undefined) continue;
    const seen = found.get(e.name);
    if (!seen) found.set(e.name, { name: e.name, type: e.type, value: e.value });
    else if (seen.type !== e.type || !Object.is(seen.value, e.value)) {
      throw new Error(`internal: constant ${e.name} is both ${seen.type} ${String(seen.value)} and ${e.type} ${String(e.value)}`);
    }
  }
  return [...found.values()];
}

// Covers and weight keys carry user-chosen names; a newline or a terminal escape in one must not
// break the layout or reach the terminal raw.
function displaySafe(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u{${c.codePointAt(0)!.toString(16)}}`,
  );
}

/** Literal syntax of the printout: bare integers are u32, `i` marks i32, f32 has a point or exponent. */
function literal(type: ScalarType, value: number | boolean): string {
  if (type === 'bool') return String(value);
  if (typeof value !== 'number') return String(value);
  if (type === 'f32') {
    // Shortest round-tripping decimal, marked as a float as the WGSL renderer marks it.
    const text = Object.is(value, -0) ? '-0' : String(value);
    return !Number.isFinite(value) || /[.e]/.test(text) ? text : `${text}.0`;
  }
  return type === 'i32' ? `${value}i` : String(value);
}

/** The infix spelling of each binary op (min and max are calls); renderers share it. */
export const infixOperators: Partial<Readonly<Record<BinaryOp, string>>> = {
  add: '+',
  sub: '-',
  mul: '*',
  div: '/',
  rem: '%',
  lt: '<',
  le: '<=',
  gt: '>',
  ge: '>=',
  eq: '==',
  ne: '!=',
  and: '&&',
  or: '||',
};
const infix = infixOperators;

// Binding strength as in C and WGSL, so that `a * b + c` needs no parentheses; comparisons
// never chain and && never mixes with || unparenthesised, so no reader needs a table (and WGSL,
// which has no precedence between relational operators or between && and ||, parses it).
const level: Partial<Readonly<Record<BinaryOp, number>>> = { mul: 3, div: 3, rem: 3, add: 2, sub: 2, lt: 1, le: 1, gt: 1, ge: 1, eq: 1, ne: 1, and: 0, or: 0 };

/**
 * Whether infix operand `child` of infix `parent` needs parentheses, the same in every printer
 * and renderer: when it binds no tighter than its parent, except down the left of a
 * left-associative chain (`a - b + c`, `a * b * c`, `a && b && c`), which parses as the IR nests
 * it. Mixed `*`, `/` and `%` chains get them anyway, for readers.
 */
export function infixNeedsParentheses(child: BinaryOp, parent: BinaryOp, left: boolean): boolean {
  const c = level[child]!;
  const p = level[parent]!;
  if (c !== p) return c < p;
  if (!left || p === 1) return true;
  return p === 2 ? false : child !== parent;
}

function operand(e: Expr, parentOp: BinaryOp, left: boolean): string {
  const text = printExpr(e);
  if (e.kind === 'select') return `(${text})`;
  if (e.kind !== 'binary' || !(e.op in infix)) return text;
  return infixNeedsParentheses(e.op, parentOp, left) ? `(${text})` : text;
}

function unaryOperand(e: Expr): string {
  const text = printExpr(e);
  return (e.kind === 'binary' && e.op in infix) || e.kind === 'select' || (e.kind === 'const' && e.name === undefined && typeof e.value === 'number' && text.startsWith('-')) ? `(${text})` : text;
}

const componentNames = ['x', 'y', 'z', 'w'] as const;

/** The operand of `.x`: anything that is not a name, a call or a plain load gets parentheses. */
function postfixOperand(e: Expr): string {
  const text = printExpr(e);
  return e.kind === 'ref' || e.kind === 'vector' || (e.kind === 'load' && e.type !== 'vec4f') ? text : `(${text})`;
}

function wrapped(e: Expr): string {
  return (e.kind === 'binary' && e.op in infix) || e.kind === 'select' ? `(${printExpr(e)})` : printExpr(e);
}

/** One expression in the printout's syntax. */
export function printExpr(e: Expr): string {
  switch (e.kind) {
    case 'const':
      return e.name ?? literal(e.type, e.value);
    case 'ref':
    case 'builtin':
      return e.name;
    case 'binary': {
      const op = infix[e.op];
      if (op === undefined) return `${e.op}(${printExpr(e.a)}, ${printExpr(e.b)})`;
      return `${operand(e.a, e.op, true)} ${op} ${operand(e.b, e.op, false)}`;
    }
    case 'unary':
      if (e.op === 'neg') return `-${unaryOperand(e.a)}`;
      if (e.op === 'not') return `!${unaryOperand(e.a)}`;
      return `${e.op}(${printExpr(e.a)})`;
    case 'cast':
      return `${e.type}(${printExpr(e.a)})`;
    case 'select':
      // Not select(...): WGSL's select takes its arguments in another order, and this text
      // should be unambiguous to readers of either.
      return `${wrapped(e.cond)} ? ${wrapped(e.a)} : ${wrapped(e.b)}`;
    case 'load':
      return `${e.type === 'vec4f' ? 'load4 ' : ''}${e.memory}[${printExpr(e.index)}]`;
    case 'vector':
      return `vec4(${e.parts.map(printExpr).join(', ')})`;
    case 'component':
      return `${postfixOperand(e.a)}.${componentNames[e.index]}`;
  }
}

function printStmts(stmts: readonly Stmt[], depth: number, out: string[]): void {
  const pad = '  '.repeat(depth);
  for (const s of stmts) {
    switch (s.kind) {
      case 'comment':
        out.push(`${pad}// ${displaySafe(s.text)}`);
        break;
      case 'let':
      case 'var':
        out.push(`${pad}${s.kind} ${s.name}: ${s.value.type} = ${printExpr(s.value)}`);
        break;
      case 'assign':
        out.push(`${pad}${s.name} = ${printExpr(s.value)}`);
        break;
      case 'registers':
        out.push(`${pad}registers ${s.name}: f32[${s.length}]`);
        break;
      case 'store':
        out.push(`${pad}${s.value.type === 'vec4f' ? 'store4 ' : ''}${s.memory}[${printExpr(s.index)}] <- ${printExpr(s.value)}`);
        break;
      case 'loop':
        out.push(`${pad}for ${s.index} in ${printExpr(s.from)}..${printExpr(s.to)} step ${printExpr(s.step)}${s.unroll ? ' unroll' : ''} {`);
        printStmts(s.body, depth + 1, out);
        out.push(`${pad}}`);
        break;
      case 'if':
        out.push(`${pad}if ${printExpr(s.cond)} {`);
        printStmts(s.then, depth + 1, out);
        if (s.else) {
          out.push(`${pad}} else {`);
          printStmts(s.else, depth + 1, out);
        }
        out.push(`${pad}}`);
        break;
      case 'barrier':
        out.push(`${pad}barrier`);
        break;
      case 'reduce':
        out.push(`${pad}let ${s.into}: f32 = reduce.sum(${printExpr(s.value)}) over ${s.lanes} lanes (${s.strategy})`);
        break;
      case 'shuffle-xor':
        out.push(`${pad}let ${s.into}: f32 = subgroup.shuffle_xor(${printExpr(s.value)}, ${s.mask})`);
        break;
    }
  }
}

function printRef(ref: BufferRef): string {
  switch (ref.kind) {
    case 'value':
      return `value %${ref.id}`;
    case 'weight':
      return `weight ${displaySafe(ref.key)}`;
    case 'scratch':
      return `scratch ${displaySafe(ref.name)}`;
    case 'partials':
      return `partial sums of %${ref.id}`;
    case 'weight-group':
      return `weights [${ref.keys.map(displaySafe).join(', ')}]`;
    case 'model-input':
      return `model input ${displaySafe(ref.name)}`;
    case 'model-output':
      return `model output ${displaySafe(ref.name)}`;
  }
}

/** A buffer layout as text: `[n=1, h=56, w=56, c=40]`. */
export function layoutText(layout: BufferLayout): string {
  return `[${layout.axes.map((axis, i) => `${axis}=${layout.shape[i]}`).join(', ')}]`;
}

/** The program as text, reductions unexpanded; ends with a newline. */
export function printKernel(program: KernelProgram): string {
  const lines: string[] = [];
  const schedule = Object.entries(program.schedule).map(([k, v]) => `${k}=${String(v)}`);
  lines.push(`kernel ${displaySafe(program.name)}`);
  lines.push(`  summary: ${displaySafe(program.summary)}`);
  lines.push(`  covers: ${displaySafe(program.covers)}`);
  lines.push(`  schedule: ${schedule.length > 0 ? displaySafe(schedule.join(', ')) : 'none'}`);
  lines.push(`  dispatch: ${program.workgroups} x ${program.workgroupSize} (workgroups x threads)`);
  lines.push('  buffers:');
  const memoryType = (m: { readonly length: number; readonly vector?: 4; readonly dtype?: StorageType }): string => `${m.dtype ?? 'f32'}${m.vector === 4 ? 'x4' : ''}[${m.length}]`;
  program.buffers.forEach((b, i) => lines.push(`    ${i} ${b.name}: ${memoryType(b)} ${displaySafe(layoutText(b.layout))} ${b.access} <- ${printRef(b.ref)}`));
  if (program.shared.length === 0) lines.push('  shared: none');
  else {
    lines.push('  shared:');
    for (const s of program.shared) lines.push(`    ${s.name}: ${memoryType(s)}`);
  }
  const constants = namedConstants(program.body);
  if (constants.length === 0) lines.push('  constants: none');
  else {
    lines.push('  constants:');
    for (const c of constants) lines.push(`    ${c.name}: ${c.type} = ${literal(c.type, c.value)}`);
  }
  lines.push('body:');
  printStmts(program.body, 1, lines);
  return `${lines.join('\n')}\n`;
}
