// Renders kernel-IR programs (src/kernel/ir.ts) as gpu.js kernel functions: JavaScript that
// gpu.js runs as is in its CPU mode and translates to a WebGL fragment shader in its GPU mode.
// A fragment shader computes the one output element it runs for and returns it, so a program
// must have the form the gpu.js target's schedules give (target.ts, threadWrites): one thread
// per element of its value, writing only that element, the one its global index numbers. The
// renderer checks that form and refuses anything else as a compiler bug; it never re-decides
// math or fusion.
//
// Numbers: gpu.js's WebGL code has floats only (GLSL ES 1.0 as gpu.js writes it), so u32 index
// arithmetic is rendered as float arithmetic, exact on integers below 2^24 (target.ts keeps
// tensors under 2^22 elements), with division and remainder through convc_udiv/convc_urem,
// which correct the float quotient. Loop bounds are literal constants: gpu.js cuts a loop whose
// bound is not a constant at loopMaxIterations without a word.
import { erfCoefficients, erfP } from '../../kernel/erf.js';
import { expandReductions } from '../../kernel/expand.js';
import type { BinaryOp, Expr, KernelProgram, ScalarType, Stmt } from '../../kernel/ir.js';
import { infixNeedsParentheses, infixOperators, layoutText } from '../../kernel/print.js';
import { commentSafe } from '../../kernel/comment-safe.js';

// JavaScript's reserved words and the names gpu.js gives meaning to in a kernel. The IR's names
// come from lowering (never from the user), so a clash is a compiler bug, reported as such.
const reserved = new Set(
  (
    'break case catch class const continue debugger default delete do else export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with yield let static enum await implements ' +
    'package protected interface private public arguments eval undefined NaN Infinity Math result'
  ).split(' '),
);

function identifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name.startsWith('convc_') || name.startsWith('user_') || reserved.has(name)) {
    throw new Error(`internal: ${what} ${JSON.stringify(name)} cannot be a gpu.js kernel identifier`);
  }
  return name;
}

/** A number as a JavaScript literal; f32 ones keep a point, so gpu.js types them as floats. */
function literal(type: ScalarType, value: number | boolean): string {
  if (type === 'bool') {
    if (typeof value !== 'boolean') throw new Error(`internal: bool constant ${value}`);
    return String(value);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`internal: ${type} constant ${value}`);
  if (type === 'vec4f') throw new Error('internal: a vec4f constant');
  if (type !== 'f32') {
    if (!Number.isInteger(value) || Math.abs(value) >= 2 ** 24) throw new Error(`internal: ${type} constant ${value} is not an integer below 2^24, exact in a float`);
    return String(value);
  }
  if (Object.is(value, -0)) return '-0.0';
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function unsupported(what: string): never {
  throw new Error(`internal: gpu.js kernels cannot express ${what}`);
}

/** What the renderer knows of a kernel's memory and its thread index. */
interface Scope {
  readonly reads: ReadonlySet<string>;
  readonly output: string;
  /** The let holding the thread's global index (group x workgroup size + local). */
  readonly index: string;
}

function operand(e: Expr, parent: BinaryOp, left: boolean, scope: Scope): string {
  const text = expr(e, scope);
  if (e.kind === 'select') return `(${text})`;
  const infix = e.kind === 'binary' && infixOperators[e.op] !== undefined && !((e.op === 'div' || e.op === 'rem') && e.type !== 'f32');
  return infix && infixNeedsParentheses(e.op, parent, left) ? `(${text})` : text;
}

function expr(e: Expr, scope: Scope): string {
  if (e.type === 'vec4f') unsupported('vec4f values (the gpu.js target never vectorises)');
  switch (e.kind) {
    case 'const':
      // Named constants are inlined: gpu.js's loops need literal bounds.
      return literal(e.type, e.value);
    case 'ref':
      return e.name;
    case 'builtin':
      return unsupported(`the builtin '${e.name}' outside the thread's index (a thread knows only its element)`);
    case 'binary': {
      const [a, b] = [expr(e.a, scope), expr(e.b, scope)];
      if (e.op === 'xor') unsupported('xor (no subgroups)');
      // Math.min of an integer and a float has no GLSL overload as gpu.js types it: integers
      // go through helpers whose parameters are declared floats.
      if (e.op === 'min' || e.op === 'max') return e.type === 'f32' ? `Math.${e.op}(${a}, ${b})` : `convc_${e.op}(${a}, ${b})`;
      if (e.op === 'div' || e.op === 'rem') {
        if (e.type === 'f32') {
          if (e.op === 'rem') unsupported('an f32 remainder');
        } else {
          if (e.type !== 'u32') unsupported(`${e.op} of ${e.type}`);
          return `convc_u${e.op}(${a}, ${b})`;
        }
      }
      const op = infixOperators[e.op];
      if (op === undefined) throw new Error(`internal: no JavaScript spelling of ${e.op}`);
      return `${operand(e.a, e.op, true, scope)} ${op} ${operand(e.b, e.op, false, scope)}`;
    }
    case 'unary': {
      const a = expr(e.a, scope);
      switch (e.op) {
        case 'neg':
          return `-(${a})`;
        case 'not':
          return `!(${a})`;
        case 'abs':
          return `Math.abs(${a})`;
        case 'sqrt':
          return `Math.sqrt(${a})`;
        case 'exp':
          return `Math.exp(${a})`;
        case 'rsqrt':
          return `1.0 / Math.sqrt(${a})`;
        case 'erf':
          return `convc_erf(${a})`;
      }
      break;
    }
    case 'cast': {
      const a = expr(e.a, scope);
      if (e.a.type === 'f32' && e.type === 'u32') return `Math.floor(Math.max(${a}, 0.0))`;
      if (e.a.type === 'f32' && e.type === 'i32') return `convc_trunc(${a})`;
      // u32 <-> i32 and integers to f32: the same number in a float.
      return a;
    }
    case 'select':
      return `${operand(e.cond, 'and', true, scope)} ? ${expr(e.a, scope)} : ${expr(e.b, scope)}`;
    case 'load':
      if (e.memory === scope.output) unsupported(`a load from the kernel's own output ${e.memory}`);
      if (!scope.reads.has(e.memory)) throw new Error(`internal: load from ${e.memory}, which is not a bound input`);
      return `${e.memory}[${expr(e.index, scope)}]`;
    case 'component':
      return unsupported('vec4f values');
  }
  throw new Error(`internal: expression ${(e as Expr).kind}`);
}

/** A literal integer bound of a loop: anything else gpu.js would cut at loopMaxIterations. */
function constantBound(e: Expr, loop: string): string {
  if (e.kind !== 'const' || e.type !== 'u32') throw new Error(`internal: loop ${loop} has a bound that is not a compile-time constant; gpu.js would cut it at loopMaxIterations`);
  return literal('u32', e.value);
}

function stmts(body: readonly Stmt[], depth: number, scope: Scope, out: string[]): void {
  const pad = '  '.repeat(depth);
  for (const s of body) {
    switch (s.kind) {
      case 'comment':
        out.push(`${pad}// ${commentSafe(s.text)}`);
        break;
      case 'let':
        if (s.name === scope.index) out.push(`${pad}const ${s.name} = this.thread.x;`);
        else out.push(`${pad}const ${identifier(s.name, 'let')} = ${expr(s.value, scope)};`);
        break;
      case 'var':
        out.push(`${pad}let ${identifier(s.name, 'var')} = ${expr(s.value, scope)};`);
        break;
      case 'assign':
        out.push(`${pad}${s.name} = ${expr(s.value, scope)};`);
        break;
      case 'store':
        if (s.memory !== scope.output) unsupported(`a store to ${s.memory}, not the kernel's value`);
        if (s.index.kind !== 'ref' || s.index.name !== scope.index) unsupported(`a store to another element than the thread's own (${s.memory})`);
        out.push(`${pad}result = ${expr(s.value, scope)};`);
        break;
      case 'loop': {
        const i = identifier(s.index, 'loop index');
        const [from, to, step] = [constantBound(s.from, i), constantBound(s.to, i), constantBound(s.step, i)];
        out.push(`${pad}for (let ${i} = ${from}; ${i} < ${to}; ${i} += ${step}) {`);
        stmts(s.body, depth + 1, scope, out);
        out.push(`${pad}}`);
        break;
      }
      case 'if':
        out.push(`${pad}if (${expr(s.cond, scope)}) {`);
        stmts(s.then, depth + 1, scope, out);
        if (s.else) {
          out.push(`${pad}} else {`);
          stmts(s.else, depth + 1, scope, out);
        }
        out.push(`${pad}}`);
        break;
      case 'registers':
        return unsupported(`the register array ${s.name}`);
      case 'barrier':
        return unsupported('barriers');
      case 'reduce':
      case 'shuffle-xor':
        return unsupported(`sums across threads (${s.kind} into ${s.into})`);
    }
  }
}

/** Whether `e` is group * workgroupSize + local: the thread's global index. */
function isGlobalIndex(e: Expr, workgroupSize: number): boolean {
  return (
    e.kind === 'binary' &&
    e.op === 'add' &&
    e.a.kind === 'binary' &&
    e.a.op === 'mul' &&
    e.a.a.kind === 'builtin' &&
    e.a.a.name === 'group' &&
    e.a.b.kind === 'const' &&
    e.a.b.value === workgroupSize &&
    e.b.kind === 'builtin' &&
    e.b.name === 'local'
  );
}

/** A kernel as gpu.js runs it: the function's source, what it reads and the elements it returns. */
export interface GpuJsKernel {
  /** The function's name, an identifier. */
  readonly name: string;
  /** `function name(inputs...) { ... }`, with a header comment; ends with a newline. */
  readonly source: string;
  /** The buffers it reads, in parameter order (the program's read bindings, in binding order). */
  readonly parameters: readonly string[];
  /** Elements of its value: gpu.js runs the function once for each (output: [elements]). */
  readonly elements: number;
}

/**
 * One kernel as a gpu.js kernel function named `entry`, with a header naming what it computes
 * and the IR nodes it covers.
 */
export function renderGpuJsKernel(program: KernelProgram, entry: string = program.name): GpuJsKernel {
  const p = expandReductions(program);
  if (p.shared.length > 0) unsupported(`workgroup memory (${p.name})`);
  const written = p.buffers.filter((b) => b.access === 'read_write');
  if (written.length !== 1 || written[0].ref.kind === 'partials') throw new Error(`internal: ${p.name} must write exactly one buffer, its value`);
  const output = written[0];
  const reads = p.buffers.filter((b) => b.access === 'read');
  const names = new Set<string>();
  for (const b of p.buffers) {
    identifier(b.name, 'buffer');
    if (names.has(b.name)) throw new Error(`internal: ${p.name} binds ${b.name} twice`);
    names.add(b.name);
  }
  const first = p.body[0];
  if (first?.kind !== 'let' || !isGlobalIndex(first.value, p.workgroupSize)) throw new Error(`internal: ${p.name} does not begin by naming its thread's global index`);
  const scope: Scope = { reads: new Set(reads.map((b) => b.name)), output: output.name, index: first.name };

  const schedule = Object.entries(p.schedule).map(([k, v]) => `${k}=${String(v)}`);
  const lines: string[] = [];
  lines.push(`// ${commentSafe(entry)}: ${commentSafe(p.summary)}`);
  lines.push(`// Computes IR node(s): ${commentSafe(p.covers)}`);
  lines.push(`// Schedule: ${schedule.length > 0 ? commentSafe(schedule.join(', ')) : 'none'}`);
  lines.push(`// Runs once for each of the ${output.length} elements of ${commentSafe(output.name)} ${commentSafe(layoutText(output.layout))} and returns it; reads:`);
  for (const b of reads) lines.push(`//   ${commentSafe(b.name)} ${commentSafe(layoutText(b.layout))}`);
  lines.push(`function ${identifier(entry, 'kernel')}(${reads.map((b) => b.name).join(', ')}) {`);
  lines.push('  let result = 0.0;');
  stmts(p.body, 1, scope, lines);
  lines.push('  return result;');
  lines.push('}');
  return { name: entry, source: `${lines.join('\n')}\n`, parameters: reads.map((b) => b.name), elements: output.length };
}

/** A helper kernels call: gpu.js compiles it beside each kernel that does (GPU.addFunction). */
export interface GpuJsHelper {
  readonly name: string;
  readonly source: string;
  /**
   * Its parameters, all floats ('Number'): declared, because gpu.js otherwise types them from
   * the first call it sees and then refuses calls with integer arguments.
   */
  readonly parameters: readonly string[];
}

/**
 * The helpers, as function sources. Division first takes the float quotient of a + 1/2 (never
 * on an integer, so rounding cannot carry it across one), then corrects it once by the
 * remainder, exact in a float for a < 2^24.
 */
export function gpuJsHelpers(): readonly GpuJsHelper[] {
  const a = erfCoefficients;
  const helper = (name: string, lines: readonly string[]): GpuJsHelper => {
    const signature = lines.find((line) => line.startsWith('function '))!;
    const parameters = signature.slice(signature.indexOf('(') + 1, signature.indexOf(')')).split(', ');
    return { name, source: `${lines.join('\n')}\n`, parameters };
  };
  return [
    helper('convc_udiv', [
      '// The quotient of integers a >= 0 and b >= 1 held in floats.',
      'function convc_udiv(a, b) {',
      '  let q = Math.floor((a + 0.5) / b);',
      '  const r = a - q * b;',
      '  if (r < 0.0) {',
      '    q = q - 1.0;',
      '  }',
      '  if (r >= b) {',
      '    q = q + 1.0;',
      '  }',
      '  return q;',
      '}',
    ]),
    helper('convc_urem', ['// The remainder of integers a >= 0 and b >= 1 held in floats.', 'function convc_urem(a, b) {', '  return a - convc_udiv(a, b) * b;', '}']),
    helper('convc_min', ['// The smaller of two integers held in floats.', 'function convc_min(a, b) {', '  if (a < b) {', '    return a;', '  }', '  return b;', '}']),
    helper('convc_max', ['// The larger of two integers held in floats.', 'function convc_max(a, b) {', '  if (a > b) {', '    return a;', '  }', '  return b;', '}']),
    helper('convc_trunc', ['// Toward zero, as f32 -> i32 converts.', 'function convc_trunc(x) {', '  if (x < 0.0) {', '    return Math.ceil(x);', '  }', '  return Math.floor(x);', '}']),
    helper('convc_erf', [
      '// erf by Abramowitz & Stegun 7.1.26 in the steps of src/kernel/erf.ts, the approximation every target computes.',
      'function convc_erf(x) {',
      `  const t = 1.0 / (1.0 + ${literal('f32', erfP)} * Math.abs(x));`,
      `  let poly = ${literal('f32', a[a.length - 1])};`,
      ...a
        .slice(0, -1)
        .reverse()
        .map((c) => `  poly = ${literal('f32', c)} + t * poly;`),
      '  poly = t * poly;',
      '  let sign = 0.0;',
      '  if (x > 0.0) {',
      '    sign = 1.0;',
      '  }',
      '  if (x < 0.0) {',
      '    sign = -1.0;',
      '  }',
      '  return sign * (1.0 - poly * Math.exp(-(x * x)));',
      '}',
    ]),
  ];
}
