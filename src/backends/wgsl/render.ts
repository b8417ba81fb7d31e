// Renders a kernel-IR program (src/kernel/ir.ts) as one complete WGSL module: the generic
// successor of module.ts's hand templates. Reductions are expanded first (kernel/expand.ts), so
// the WGSL holds the same loads, stores and barriers the interpreter runs.
//
// Vectors: memory declared `vector: 4` becomes array<vec4<f32>> (buffers) or
// array<vec4<f32>, length / 4> (shared), while IR indices keep counting f32 elements: a vector
// load or store at i is `mem[i / 4u]` (i is a multiple of 4; `x * 4u` prints as `x`), and a
// scalar one on such memory is `mem[i / 4u][i % 4u]`. WGSL requires a storage buffer bound as
// array<vec4<f32>> to be a multiple of 16 bytes long, so the host (lower.ts) rounds buffer
// sizes up to 16 bytes.
//
// Storage types: a buffer declared f16 is array<f16> (or array<vec4<f16>>) under `enable f16;`;
// its loads are wrapped in f32(...) / vec4<f32>(...) and its stores in f16(...), so every
// expression the body computes stays f32, as the IR says.
import { erfCoefficients, erfP } from '../../kernel/erf.js';
import { expandReductions } from '../../kernel/expand.js';
import type { BinaryOp, Expr, KernelProgram, ScalarType, Stmt, UnaryOp } from '../../kernel/ir.js';
import { infixNeedsParentheses, infixOperators, layoutText, namedConstants, registerNames, walkExprs, walkStmts } from '../../kernel/print.js';
import { commentSafe, f32Literal } from './text.js';

const erfHelper = 'erf_approx';

const infix = infixOperators;

function identifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name.startsWith('__')) throw new Error(`internal: ${what} ${JSON.stringify(name)} is not a WGSL identifier`);
  return name;
}

function literal(type: ScalarType, value: number | boolean): string {
  if (type === 'vec4f') throw new Error(`internal: a vec4f constant`);
  if (type === 'bool') {
    if (typeof value !== 'boolean') throw new Error(`internal: bool constant ${value}`);
    return String(value);
  }
  if (typeof value !== 'number') throw new Error(`internal: ${type} constant ${value}`);
  switch (type) {
    case 'f32':
      // f32Literal prints -0 as 0.0; the sign of zero can matter (1 / -0).
      return Object.is(value, -0) ? '-0.0' : f32Literal(value);
    case 'u32':
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`internal: ${value} is not a u32`);
      return `${value}u`;
    case 'i32':
      if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) throw new Error(`internal: ${value} is not an i32`);
      // 2147483648i does not exist, so its negation cannot be written directly.
      return value === -(2 ** 31) ? '(-2147483647i - 1i)' : `${value}i`;
  }
}

// A Record, so a new UnaryOp fails to compile here until it has a spelling.
const unary: Readonly<Record<UnaryOp, (a: string) => string>> = {
  neg: (a) => `-(${a})`,
  not: (a) => `!(${a})`,
  abs: (a) => `abs(${a})`,
  sqrt: (a) => `sqrt(${a})`,
  exp: (a) => `exp(${a})`,
  rsqrt: (a) => `inverseSqrt(${a})`,
  erf: (a) => `${erfHelper}(${a})`,
};

/** WGSL's spelling of a value type. */
function wgslType(type: ScalarType): string {
  return type === 'vec4f' ? 'vec4<f32>' : type;
}

const componentNames = ['x', 'y', 'z', 'w'] as const;

/** What the renderer must know of memory to name its cells. */
interface MemoryKinds {
  /** Declared `vector: 4`: arrays of vec4 (f32 or f16). */
  readonly vectors: ReadonlySet<string>;
  /** Buffers stored as f16: loads widen to f32, stores narrow. */
  readonly halves: ReadonlySet<string>;
}

function operand(e: Expr, parent: BinaryOp, left: boolean, mem: MemoryKinds): string {
  const text = expr(e, mem);
  if (e.kind === 'binary' && infix[e.op] !== undefined && infixNeedsParentheses(e.op, parent, left)) return `(${text})`;
  return text;
}

/**
 * The vec4 index of f32 element `index` (a multiple of 4 for vector access): `index / 4u`, or
 * `x` for `x * 4u` (the same cell unless x * 4u wraps past 2^32, which no real index does).
 */
function vectorIndex(index: Expr, mem: MemoryKinds): string {
  if (index.kind === 'binary' && index.op === 'mul') {
    const four = (e: Expr): boolean => e.kind === 'const' && e.name === undefined && e.value === 4 && e.type === index.type;
    if (four(index.b)) return expr(index.a, mem);
    if (four(index.a)) return expr(index.b, mem);
  }
  return `${operand(index, 'div', true, mem)} / ${literal(index.type, 4)}`;
}

/** How a load or store names its cells: `mem[i]`, `mem[i / 4u]` (vector access) or `mem[i / 4u][i % 4u]` (a scalar in vector memory). */
function access(memory: string, index: Expr, type: ScalarType, mem: MemoryKinds): string {
  const vectorMemory = mem.vectors.has(memory);
  if (type === 'vec4f') {
    if (!vectorMemory) throw new Error(`internal: vector access to ${memory}, which is not declared vector: 4`);
    return `${memory}[${vectorIndex(index, mem)}]`;
  }
  if (!vectorMemory) return `${memory}[${expr(index, mem)}]`;
  return `${memory}[${operand(index, 'div', true, mem)} / ${literal(index.type, 4)}][${operand(index, 'rem', true, mem)} % ${literal(index.type, 4)}]`;
}

function bitwiseOperand(e: Expr, mem: MemoryKinds): string {
  const text = expr(e, mem);
  return e.kind === 'binary' && e.op !== 'xor' && infix[e.op] !== undefined ? `(${text})` : text;
}

function expr(e: Expr, mem: MemoryKinds): string {
  switch (e.kind) {
    case 'const':
      return e.name ?? literal(e.type, e.value);
    case 'ref':
      return e.name;
    case 'builtin':
      return e.name;
    case 'binary': {
      // WGSL's bitwise operators take only unary expressions as operands and never mix with
      // others unparenthesised: ((a) ^ (b)).
      if (e.op === 'xor') return `(${bitwiseOperand(e.a, mem)} ^ ${bitwiseOperand(e.b, mem)})`;
      const op = infix[e.op];
      if (op === undefined) return `${e.op}(${expr(e.a, mem)}, ${expr(e.b, mem)})`;
      return `${operand(e.a, e.op, true, mem)} ${op} ${operand(e.b, e.op, false, mem)}`;
    }
    case 'unary':
      return unary[e.op](expr(e.a, mem));
    case 'cast':
      return `${wgslType(e.type)}(${expr(e.a, mem)})`;
    case 'select':
      // WGSL's select takes the false value first.
      return `select(${expr(e.b, mem)}, ${expr(e.a, mem)}, ${expr(e.cond, mem)})`;
    case 'load': {
      const cell = access(e.memory, e.index, e.type, mem);
      return mem.halves.has(e.memory) ? `${wgslType(e.type)}(${cell})` : cell;
    }
    case 'vector':
      return `vec4<f32>(${e.parts.map((p) => expr(p, mem)).join(', ')})`;
    case 'component': {
      const text = expr(e.a, mem);
      return `${e.a.kind === 'binary' && infix[e.a.op] !== undefined ? `(${text})` : text}.${componentNames[e.index]}`;
    }
  }
}

/** The value of a constant loop bound, for unrolling. */
function constantBound(e: Expr, loopIndex: string): number {
  if (e.kind !== 'const' || e.type !== 'u32' || typeof e.value !== 'number') throw new Error(`internal: loop ${loopIndex} is unrolled but its bounds are not u32 constants`);
  return e.value;
}

interface Memories extends MemoryKinds {
  readonly readable: ReadonlySet<string>;
  readonly writable: ReadonlySet<string>;
}

function stmts(body: readonly Stmt[], depth: number, memories: Memories, out: string[]): void {
  const pad = '  '.repeat(depth);
  const text = (e: Expr): string => expr(e, memories);
  const checkWrite = (memory: string): string => {
    if (!memories.writable.has(memory)) throw new Error(`internal: store to ${memory}, which is not a read_write buffer, a shared array or registers`);
    return memory;
  };
  for (const s of body) {
    switch (s.kind) {
      case 'comment':
        out.push(`${pad}// ${commentSafe(s.text)}`);
        break;
      case 'let':
      case 'var':
        // A bare literal says its type, so the binding cannot end up an abstract-typed one.
        out.push(`${pad}${s.kind} ${identifier(s.name, s.kind)}${s.value.kind === 'const' ? `: ${wgslType(s.value.type)}` : ''} = ${text(s.value)};`);
        break;
      case 'assign':
        out.push(`${pad}${s.name} = ${text(s.value)};`);
        break;
      case 'registers':
        if (!Number.isInteger(s.length) || s.length < 1) throw new Error(`internal: registers ${s.name} of length ${s.length}`);
        out.push(`${pad}var ${identifier(s.name, 'registers')}: array<f32, ${s.length}>;`);
        break;
      case 'store':
        out.push(
          `${pad}${access(checkWrite(s.memory), s.index, s.value.type, memories)} = ${memories.halves.has(s.memory) ? `${s.value.type === 'vec4f' ? 'vec4<f16>' : 'f16'}(${text(s.value)})` : text(s.value)};`,
        );
        break;
      case 'loop': {
        const i = identifier(s.index, 'loop index');
        for (const bound of [s.from, s.to, s.step]) if (bound.type !== 'u32') throw new Error(`internal: loop ${i} has a ${bound.type} bound`);
        if (!s.unroll) {
          out.push(`${pad}for (var ${i} = ${text(s.from)}; ${i} < ${text(s.to)}; ${i} += ${text(s.step)}) {`);
          stmts(s.body, depth + 1, memories, out);
          out.push(`${pad}}`);
          break;
        }
        const [from, to, step] = [constantBound(s.from, i), constantBound(s.to, i), constantBound(s.step, i)];
        if (step < 1) throw new Error(`internal: loop ${i} is unrolled with step ${step}`);
        out.push(`${pad}// for ${i} in ${from}..${to} step ${step}, unrolled`);
        for (let v = from; v < to; v += step) {
          out.push(`${pad}{`);
          out.push(`${pad}  let ${i} = ${literal('u32', v)};`);
          stmts(s.body, depth + 1, memories, out);
          out.push(`${pad}}`);
        }
        break;
      }
      case 'if':
        out.push(`${pad}if (${text(s.cond)}) {`);
        stmts(s.then, depth + 1, memories, out);
        if (s.else) {
          out.push(`${pad}} else {`);
          stmts(s.else, depth + 1, memories, out);
        }
        out.push(`${pad}}`);
        break;
      case 'barrier':
        out.push(`${pad}workgroupBarrier();`);
        break;
      case 'reduce':
        throw new Error(`internal: reduce into ${s.into} survived expandReductions`);
      case 'shuffle-xor':
        if (s.value.type !== 'f32' || !Number.isInteger(s.mask) || s.mask < 1) throw new Error(`internal: shuffle into ${s.into} of a ${s.value.type} by ${s.mask}`);
        out.push(`${pad}let ${identifier(s.into, 'let')} = subgroupShuffleXor(${text(s.value)}, ${literal('u32', s.mask)});`);
        break;
    }
  }
}

/** erf.ts's approximation in erfF32's operation order, coefficients printed from erf.ts itself. */
function erfFunction(): string[] {
  const a = erfCoefficients;
  const lines = [
    `// erf by Abramowitz & Stegun 7.1.26 in the f32 steps of src/kernel/erf.ts (erfF32), so every target agrees.`,
    `fn ${erfHelper}(x: f32) -> f32 {`,
    `  let t = 1.0 / (1.0 + ${f32Literal(erfP)} * abs(x));`,
    `  var poly: f32 = ${f32Literal(a[a.length - 1])};`,
  ];
  for (let i = a.length - 2; i >= 0; i--) lines.push(`  poly = ${f32Literal(a[i])} + t * poly;`);
  lines.push('  poly = t * poly;');
  lines.push('  return sign(x) * (1.0 - poly * exp(-(x * x)));');
  lines.push('}');
  return lines;
}

/** One complete WGSL module for `program`, whose entry point is named `program.name`; ends with a newline. */
export function renderWgsl(program: KernelProgram): string {
  const p = expandReductions(program);
  const moduleNames = new Set<string>();
  const declare = (name: string, what: string): string => {
    identifier(name, what);
    if (moduleNames.has(name)) throw new Error(`internal: ${p.name} declares ${name} twice at module scope`);
    moduleNames.add(name);
    return name;
  };
  const lines: string[] = [];
  const usesSubgroups = walkStmts(p.body).some((s) => s.kind === 'shuffle-xor');
  if (usesSubgroups && p.subgroupSize === undefined) throw new Error(`internal: ${p.name} uses subgroup operations but names no subgroup size`);
  const schedule = Object.entries(p.schedule).map(([k, v]) => `${k}=${String(v)}`);
  lines.push(`// ${commentSafe(p.name)}: ${commentSafe(p.summary)}`);
  lines.push(`// Computes IR node(s): ${commentSafe(p.covers)}`);
  lines.push(`// Schedule: ${schedule.length > 0 ? commentSafe(schedule.join(', ')) : 'none'}`);
  lines.push(`// ${p.workgroups} workgroups of ${p.workgroupSize} threads; buffers in the layouts named beside them.`);
  if (usesSubgroups) lines.push(`// Needs the subgroups feature, with subgroups of ${p.subgroupSize} consecutive threads.`, 'enable subgroups;');
  if (p.buffers.some((b) => b.dtype === 'f16')) lines.push('// Stores f16 (the shader-f16 feature); arithmetic stays f32.', 'enable f16;');
  lines.push('');

  const written = p.buffers.filter((b) => b.access === 'read_write');
  if (written.filter((b) => b.ref.kind !== 'partials').length !== 1 || written.length > 2) throw new Error(`internal: ${p.name} must bind one read_write buffer for its value, and at most one for partial sums`);
  const vectorDecl = (d: { readonly name: string; readonly length: number; readonly vector?: number }): boolean => {
    if (d.vector === undefined) return false;
    if (d.vector !== 4 || d.length % 4 !== 0) throw new Error(`internal: ${d.name} is vector: ${d.vector} with length ${d.length}`);
    return true;
  };
  // An array<vec4<f32>> binding must be a multiple of 16 bytes long; the host rounds sizes up.
  p.buffers.forEach((b, i) => {
    const element = vectorDecl(b) ? `vec4<${b.dtype}>` : b.dtype;
    lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${declare(b.name, 'buffer')}: array<${element}>; // ${commentSafe(layoutText(b.layout))}`);
  });
  lines.push('');

  // WORKGROUP_SIZE and WORKGROUPS come first; a body constant of the same name and value is
  // the same declaration, one with another value a conflict.
  const constants = namedConstants([
    { kind: 'let', name: '_', value: { kind: 'const', type: 'u32', value: p.workgroupSize, name: 'WORKGROUP_SIZE' } },
    { kind: 'let', name: '_', value: { kind: 'const', type: 'u32', value: p.workgroups, name: 'WORKGROUPS' } },
    ...p.body,
  ]);
  for (const c of constants) lines.push(`const ${declare(c.name, 'constant')}: ${c.type} = ${literal(c.type, c.value)};`);

  if (p.shared.length > 0) lines.push('');
  for (const s of p.shared) {
    if (!Number.isInteger(s.length) || s.length < 1) throw new Error(`internal: shared ${s.name} of length ${s.length}`);
    lines.push(`var<workgroup> ${declare(s.name, 'shared array')}: ${vectorDecl(s) ? `array<vec4<f32>, ${s.length / 4}>` : `array<f32, ${s.length}>`};`);
  }

  let usesErf = false;
  for (const e of walkExprs(p.body)) if (e.kind === 'unary' && e.op === 'erf') usesErf = true;
  if (usesErf) lines.push('', ...erfFunction());
  declare(erfHelper, 'helper');

  const registers = registerNames(p.body);
  const memories: Memories = {
    readable: new Set([...p.buffers.map((b) => b.name), ...p.shared.map((s) => s.name), ...registers]),
    writable: new Set([...p.buffers.filter((b) => b.access === 'read_write').map((b) => b.name), ...p.shared.map((s) => s.name), ...registers]),
    // A register array (never vector) of the same name would shadow the module-scope array.
    vectors: new Set([...p.buffers, ...p.shared].filter((m) => m.vector === 4 && !registers.has(m.name)).map((m) => m.name)),
    halves: new Set(p.buffers.filter((b) => b.dtype === 'f16').map((b) => b.name)),
  };
  for (const e of walkExprs(p.body)) {
    if (e.kind === 'load' && !memories.readable.has(e.memory)) throw new Error(`internal: ${p.name} loads from ${e.memory}, which it does not declare`);
    if (e.kind === 'load' && e.type === 'vec4f' && !memories.vectors.has(e.memory)) throw new Error(`internal: ${p.name} loads a vec4f from ${e.memory}, which is not declared vector: 4`);
  }

  lines.push('');
  lines.push('@compute @workgroup_size(WORKGROUP_SIZE)');
  lines.push(
    `fn ${declare(p.name, 'entry point')}(@builtin(workgroup_id) workgroup_id: vec3u, @builtin(local_invocation_index) local: u32, @builtin(num_workgroups) num_workgroups: vec3u) {`,
  );
  lines.push('  let group = workgroup_id.y * num_workgroups.x + workgroup_id.x;');
  // The host may round a 2-D grid up. `group` is uniform across the workgroup, so barriers
  // inside stay in uniform control flow.
  lines.push('  if (group < WORKGROUPS) {');
  stmts(p.body, 2, memories, lines);
  lines.push('  }');
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
