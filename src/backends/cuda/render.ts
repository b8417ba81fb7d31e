// Renders kernel-IR programs (src/kernel/ir.ts) as CUDA C: one `extern "C" __global__` function
// per program, and the module (kernels.cu) that holds a model's kernels with the few helpers they
// call. Reductions are expanded first (kernel/expand.ts), so the CUDA holds the same loads,
// stores and barriers the interpreter and the WGSL run.
//
// The same bytes are compiled two ways: by nvcc for the GPU, and by g++ with the host emulation
// header (emulation/cuda-emulation.h) for the CPU, so everything here is plain CUDA C++ that
// both accept: no intrinsics beyond the ones that header provides.
//
// Memory: every buffer is a pointer to its storage type (float or __half), indexed in elements
// as the IR counts them, so a scalar access is `x[i]` whatever the vector declarations say. A
// vector access (memory declared `vector: 4`, index a multiple of 4) goes through
// convc_load4/convc_store4, which read and write a float4 (a 16-byte access) or four halves.
// Shared arrays are `__shared__` floats aligned to 16 bytes for the same reason.
// Builtins: `local` is threadIdx.x and `group` the block's index in a 2-D grid, numbered as the
// WGSL numbers its workgroups (the host's grid is the same dispatchGrid).
import { erfCoefficients, erfP } from '../../kernel/erf.js';
import { expandReductions } from '../../kernel/expand.js';
import type { BinaryOp, Expr, KernelProgram, ScalarType, StorageType, Stmt, UnaryOp } from '../../kernel/ir.js';
import { infixNeedsParentheses, infixOperators, layoutText, namedConstants, registerNames, walkStmts } from '../../kernel/print.js';
import { commentSafe } from '../../kernel/comment-safe.js';

/** A warp: CUDA's subgroup, 32 consecutive threads of a block. */
export const warpSize = 32;

// Words a kernel's own names must not take: C++ keywords and the names CUDA and the emulation
// header give meaning to. The IR's names come from lowering (never from the user), so a clash
// is a compiler bug, reported as such.
const reserved = new Set(
  (
    'alignas alignof asm auto bool break case catch char class const constexpr const_cast continue decltype default delete do double ' +
    'dynamic_cast else enum explicit export extern false float for friend goto if inline int long mutable namespace new noexcept ' +
    'nullptr operator private protected public register reinterpret_cast return short signed sizeof static static_assert ' +
    'static_cast struct switch template this thread_local throw true try typedef typeid typename union unsigned using virtual void ' +
    'volatile wchar_t while and or not xor bitand bitor compl threadIdx blockIdx blockDim gridDim warpSize float4 make_float4 ' +
    'local group main'
  ).split(' '),
);

function identifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name.startsWith('__') || name.startsWith('convc_') || reserved.has(name)) {
    throw new Error(`internal: ${what} ${JSON.stringify(name)} cannot be a CUDA C identifier`);
  }
  return name;
}

/** The shortest round-tripping decimal as a float literal: `1.0f`, `1e-6f`. */
function floatLiteral(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`internal: ${value} has no CUDA literal`);
  // -0 keeps its sign: 1 / -0 is -inf.
  if (Object.is(value, -0)) return '-0.0f';
  const text = String(value);
  return `${/[.e]/.test(text) ? text : `${text}.0`}f`;
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
      return floatLiteral(value);
    case 'u32':
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`internal: ${value} is not a u32`);
      return `${value}u`;
    case 'i32':
      if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) throw new Error(`internal: ${value} is not an i32`);
      // 2147483648 is not an int literal, so its negation cannot be written directly.
      return value === -(2 ** 31) ? '(-2147483647 - 1)' : String(value);
  }
}

/** C's spelling of a value type. */
function cType(type: ScalarType): string {
  switch (type) {
    case 'f32':
      return 'float';
    case 'u32':
      return 'unsigned int';
    case 'i32':
      return 'int';
    case 'bool':
      return 'bool';
    case 'vec4f':
      return 'float4';
  }
}

// A Record, so a new UnaryOp fails to compile here until it has a spelling.
const unary: Readonly<Record<UnaryOp, (a: string, type: ScalarType) => string>> = {
  neg: (a) => `-(${a})`,
  not: (a) => `!(${a})`,
  abs: (a, type) => (type === 'f32' ? `fabsf(${a})` : type === 'i32' ? `abs(${a})` : a),
  sqrt: (a) => `sqrtf(${a})`,
  exp: (a) => `expf(${a})`,
  rsqrt: (a) => `rsqrtf(${a})`,
  erf: (a) => `convc_erf(${a})`,
};

/** Componentwise vec4f ops are helpers (CUDA's float4 has no operators). */
const vectorHelper: Partial<Readonly<Record<BinaryOp, string>>> = { add: 'convc_add4', sub: 'convc_sub4', mul: 'convc_mul4', div: 'convc_div4', min: 'convc_min4', max: 'convc_max4' };

const componentNames = ['x', 'y', 'z', 'w'] as const;

/** What the renderer must know of memory to name its cells. */
interface Memories {
  /** Buffers stored as f16: loads widen to f32, stores narrow. */
  readonly halves: ReadonlySet<string>;
  /** Declared `vector: 4`: may be read and written four elements at a time. */
  readonly vectors: ReadonlySet<string>;
  readonly readable: ReadonlySet<string>;
  readonly writable: ReadonlySet<string>;
}

function operand(e: Expr, parent: BinaryOp, left: boolean, mem: Memories): string {
  const text = expr(e, mem);
  if (e.kind === 'select') return `(${text})`;
  // Vector ops, min, max, xor and f32 remainders print as calls or parenthesised already.
  const infix = e.kind === 'binary' && e.type !== 'vec4f' && e.a.type !== 'vec4f' && infixOperators[e.op] !== undefined && !(e.op === 'rem' && e.type === 'f32');
  return infix && infixNeedsParentheses(e.op, parent, left) ? `(${text})` : text;
}

function bitwiseOperand(e: Expr, mem: Memories): string {
  const text = expr(e, mem);
  return (e.kind === 'binary' && e.op !== 'xor' && infixOperators[e.op] !== undefined) || e.kind === 'select' || e.kind === 'unary' ? `(${text})` : text;
}

function expr(e: Expr, mem: Memories): string {
  switch (e.kind) {
    case 'const':
      return e.name ?? literal(e.type, e.value);
    case 'ref':
    case 'builtin':
      return e.name;
    case 'binary': {
      if (e.a.type === 'vec4f') {
        const helper = vectorHelper[e.op];
        if (helper === undefined) throw new Error(`internal: ${e.op} of vec4f`);
        return `${helper}(${expr(e.a, mem)}, ${expr(e.b, mem)})`;
      }
      // ^ binds looser than comparisons and arithmetic: operands other than names, calls and
      // loads are parenthesised.
      if (e.op === 'xor') return `(${bitwiseOperand(e.a, mem)} ^ ${bitwiseOperand(e.b, mem)})`;
      if (e.op === 'min' || e.op === 'max') return e.type === 'f32' ? `f${e.op}f(${expr(e.a, mem)}, ${expr(e.b, mem)})` : `convc_${e.op}(${expr(e.a, mem)}, ${expr(e.b, mem)})`;
      // WGSL's % on f32 is the truncated remainder, C's fmodf.
      if (e.op === 'rem' && e.type === 'f32') return `fmodf(${expr(e.a, mem)}, ${expr(e.b, mem)})`;
      const op = infixOperators[e.op];
      if (op === undefined) throw new Error(`internal: no CUDA spelling of ${e.op}`);
      return `${operand(e.a, e.op, true, mem)} ${op} ${operand(e.b, e.op, false, mem)}`;
    }
    case 'unary':
      return unary[e.op](expr(e.a, mem), e.type);
    case 'cast':
      // f32 -> u32/i32 saturates (and NaN gives 0) as GPUs and WGSL convert; C++ leaves it undefined.
      if (e.a.type === 'f32' && e.type !== 'f32') return `convc_f32_to_${e.type}(${expr(e.a, mem)})`;
      return `static_cast<${cType(e.type)}>(${expr(e.a, mem)})`;
    case 'select':
      return `${operand(e.cond, 'and', true, mem)} ? ${expr(e.a, mem)} : ${expr(e.b, mem)}`;
    case 'load': {
      if (!mem.readable.has(e.memory)) throw new Error(`internal: load from ${e.memory}, which is not declared`);
      if (e.type === 'vec4f') {
        if (!mem.vectors.has(e.memory)) throw new Error(`internal: vector load from ${e.memory}, which is not declared vector: 4`);
        return `convc_load4(${e.memory}, ${expr(e.index, mem)})`;
      }
      const cell = `${e.memory}[${expr(e.index, mem)}]`;
      return mem.halves.has(e.memory) ? `__half2float(${cell})` : cell;
    }
    case 'vector':
      return `make_float4(${e.parts.map((p) => expr(p, mem)).join(', ')})`;
    case 'component': {
      const text = expr(e.a, mem);
      return `${e.a.kind === 'ref' ? text : `(${text})`}.${componentNames[e.index]}`;
    }
  }
}

function stmts(body: readonly Stmt[], depth: number, mem: Memories, shuffleMask: string, out: string[]): void {
  const pad = '  '.repeat(depth);
  const text = (e: Expr): string => expr(e, mem);
  for (const s of body) {
    switch (s.kind) {
      case 'comment':
        out.push(`${pad}// ${commentSafe(s.text)}`);
        break;
      case 'let':
        out.push(`${pad}const ${cType(s.value.type)} ${identifier(s.name, 'let')} = ${text(s.value)};`);
        break;
      case 'var':
        out.push(`${pad}${cType(s.value.type)} ${identifier(s.name, 'var')} = ${text(s.value)};`);
        break;
      case 'assign':
        out.push(`${pad}${s.name} = ${text(s.value)};`);
        break;
      case 'registers':
        if (!Number.isInteger(s.length) || s.length < 1) throw new Error(`internal: registers ${s.name} of length ${s.length}`);
        out.push(`${pad}float ${identifier(s.name, 'registers')}[${s.length}] = {};`);
        break;
      case 'store': {
        if (!mem.writable.has(s.memory)) throw new Error(`internal: store to ${s.memory}, which is not a read_write buffer, a shared array or registers`);
        if (s.value.type === 'vec4f') {
          if (!mem.vectors.has(s.memory)) throw new Error(`internal: vector store to ${s.memory}, which is not declared vector: 4`);
          out.push(`${pad}convc_store4(${s.memory}, ${text(s.index)}, ${text(s.value)});`);
        } else {
          out.push(`${pad}${s.memory}[${text(s.index)}] = ${mem.halves.has(s.memory) ? `__float2half_rn(${text(s.value)})` : text(s.value)};`);
        }
        break;
      }
      case 'loop': {
        const i = identifier(s.index, 'loop index');
        for (const bound of [s.from, s.to, s.step]) if (bound.type !== 'u32') throw new Error(`internal: loop ${i} has a ${bound.type} bound`);
        if (s.unroll) out.push(`${pad}#pragma unroll`);
        out.push(`${pad}for (unsigned int ${i} = ${text(s.from)}; ${i} < ${text(s.to)}; ${i} += ${text(s.step)}) {`);
        stmts(s.body, depth + 1, mem, shuffleMask, out);
        out.push(`${pad}}`);
        break;
      }
      case 'if':
        out.push(`${pad}if (${text(s.cond)}) {`);
        stmts(s.then, depth + 1, mem, shuffleMask, out);
        if (s.else) {
          out.push(`${pad}} else {`);
          stmts(s.else, depth + 1, mem, shuffleMask, out);
        }
        out.push(`${pad}}`);
        break;
      case 'barrier':
        out.push(`${pad}__syncthreads();`);
        break;
      case 'reduce':
        throw new Error(`internal: reduce into ${s.into} survived expandReductions`);
      case 'shuffle-xor':
        if (s.value.type !== 'f32' || !Number.isInteger(s.mask) || s.mask < 1 || s.mask >= warpSize) throw new Error(`internal: shuffle into ${s.into} of a ${s.value.type} by ${s.mask}`);
        out.push(`${pad}const float ${identifier(s.into, 'let')} = __shfl_xor_sync(${shuffleMask}, ${text(s.value)}, ${s.mask});`);
        break;
    }
  }
}

/**
 * The lanes a warp's shuffles involve: every lane of full warps; a block smaller than a warp
 * has only its own threads, and naming absent lanes in the mask is undefined behaviour.
 */
function shuffleMaskOf(program: KernelProgram): string {
  if (program.workgroupSize >= warpSize) {
    if (program.workgroupSize % warpSize !== 0) throw new Error(`internal: ${program.name} shuffles in blocks of ${program.workgroupSize} threads, not whole warps`);
    return '0xffffffffu';
  }
  return `0x${((2 ** program.workgroupSize - 1) >>> 0).toString(16)}u`;
}

/**
 * One kernel: `extern "C" __global__ void <entry>(buffers...)`, with a header naming what it
 * computes and the IR nodes it covers. Ends with a newline.
 */
export function renderCudaKernel(program: KernelProgram, entry: string = program.name): string {
  const p = expandReductions(program);
  const names = new Set<string>();
  const declare = (name: string, what: string): string => {
    identifier(name, what);
    if (names.has(name)) throw new Error(`internal: ${p.name} declares ${name} twice at kernel scope`);
    names.add(name);
    return name;
  };
  const usesShuffles = walkStmts(p.body).some((s) => s.kind === 'shuffle-xor');
  if (usesShuffles && p.subgroupSize !== warpSize) throw new Error(`internal: ${p.name} shuffles in subgroups of ${p.subgroupSize ?? 'unknown size'}, not warps of ${warpSize}`);
  const written = p.buffers.filter((b) => b.access === 'read_write');
  if (written.filter((b) => b.ref.kind !== 'partials').length !== 1 || written.length > 2) throw new Error(`internal: ${p.name} must bind one read_write buffer for its value, and at most one for partial sums`);
  for (const m of [...p.buffers, ...p.shared]) {
    if (m.vector !== undefined && (m.vector !== 4 || m.length % 4 !== 0)) throw new Error(`internal: ${m.name} is vector: ${m.vector} with length ${m.length}`);
  }

  const schedule = Object.entries(p.schedule).map(([k, v]) => `${k}=${String(v)}`);
  const lines: string[] = [];
  lines.push(`// ${commentSafe(entry)}: ${commentSafe(p.summary)}`);
  lines.push(`// Computes IR node(s): ${commentSafe(p.covers)}`);
  lines.push(`// Schedule: ${schedule.length > 0 ? commentSafe(schedule.join(', ')) : 'none'}`);
  lines.push(`// ${p.workgroups} blocks of ${p.workgroupSize} threads${usesShuffles ? ', shuffling within warps' : ''}; buffers in the layouts named beside them.`);
  // No __launch_bounds__: with it ptxas spilled registers where it did not without (V2-atto's
  // stage-3 downsample at 64 threads: 8 bytes). The registers a block needs are checked against
  // the target from ptxas's report instead (nvcc.ts).
  lines.push(`extern "C" __global__ void ${declare(entry, 'kernel')}(`);
  p.buffers.forEach((b, i) => {
    const type = `${b.access === 'read' ? 'const ' : ''}${b.dtype === 'f16' ? '__half' : 'float'}* __restrict__`;
    lines.push(`    ${type} ${declare(b.name, 'buffer')}${i + 1 < p.buffers.length ? ',' : ') {'} // ${commentSafe(layoutText(b.layout))}`);
  });
  if (p.buffers.length === 0) throw new Error(`internal: ${p.name} binds no buffers`);

  // WORKGROUP_SIZE and WORKGROUPS first; a body constant of the same name and value is the
  // same declaration, one with another value a conflict.
  const constants = namedConstants([
    { kind: 'let', name: '_', value: { kind: 'const', type: 'u32', value: p.workgroupSize, name: 'WORKGROUP_SIZE' } },
    { kind: 'let', name: '_', value: { kind: 'const', type: 'u32', value: p.workgroups, name: 'WORKGROUPS' } },
    ...p.body,
  ]);
  for (const c of constants) lines.push(`  constexpr ${cType(c.type)} ${declare(c.name, 'constant')} = ${literal(c.type, c.value)};`);
  for (const s of p.shared) {
    if (!Number.isInteger(s.length) || s.length < 1) throw new Error(`internal: shared ${s.name} of length ${s.length}`);
    lines.push(`  __shared__ __align__(16) float ${declare(s.name, 'shared array')}[${s.length}];`);
  }
  lines.push('  const unsigned int local = threadIdx.x;');
  lines.push('  const unsigned int group = blockIdx.y * gridDim.x + blockIdx.x;');

  const registers = registerNames(p.body);
  const memories: Memories = {
    readable: new Set([...p.buffers.map((b) => b.name), ...p.shared.map((s) => s.name), ...registers]),
    writable: new Set([...written.map((b) => b.name), ...p.shared.map((s) => s.name), ...registers]),
    // A register array (never vector) of the same name would shadow the kernel-scope array.
    vectors: new Set([...p.buffers, ...p.shared].filter((m) => m.vector === 4 && !registers.has(m.name)).map((m) => m.name)),
    halves: new Set(p.buffers.filter((b) => b.dtype === 'f16').map((b) => b.name)),
  };
  // The host may round a 2-D grid up. `group` is uniform across the block, so barriers inside
  // stay reached by every thread or none.
  lines.push('  if (group < WORKGROUPS) {');
  stmts(p.body, 2, memories, usesShuffles ? shuffleMaskOf(p) : '', lines);
  lines.push('  }');
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The helpers kernels call, each defined only where some kernel of the module uses it. */
function helpers(halves: boolean): readonly { readonly name: string; readonly lines: readonly string[] }[] {
  const a = erfCoefficients;
  const erf = [
    `// erf by Abramowitz & Stegun 7.1.26 in the f32 steps of src/kernel/erf.ts (erfF32), the approximation every`,
    `// target computes (nvcc may fuse a multiply and an add into one FMA, rounding once: within 1 ulp a step).`,
    `static __device__ __forceinline__ float convc_erf(float x) {`,
    `  const float t = 1.0f / (1.0f + ${floatLiteral(erfP)} * fabsf(x));`,
    `  float poly = ${floatLiteral(a[a.length - 1])};`,
    ...a
      .slice(0, -1)
      .reverse()
      .map((c) => `  poly = ${floatLiteral(c)} + t * poly;`),
    '  poly = t * poly;',
    '  // sign(x), with sign(0) = 0 as WGSL and the interpreter have it.',
    '  const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);',
    '  return sign * (1.0f - poly * expf(-(x * x)));',
    '}',
  ];
  const vector = (name: string, op: (a: string, b: string) => string): { name: string; lines: string[] } => ({
    name,
    lines: [`static __device__ __forceinline__ float4 ${name}(float4 a, float4 b) { return make_float4(${componentNames.map((c) => op(`a.${c}`, `b.${c}`)).join(', ')}); }`],
  });
  const list = [
    { name: 'convc_erf', lines: erf },
    {
      name: 'convc_f32_to_u32',
      lines: [
        '// f32 -> u32 as GPUs and WGSL convert: toward zero, NaN and negatives to 0, large values clamped.',
        'static __device__ __forceinline__ unsigned int convc_f32_to_u32(float x) { return !(x > 0.0f) ? 0u : x >= 4294967296.0f ? 4294967295u : static_cast<unsigned int>(x); }',
      ],
    },
    {
      name: 'convc_f32_to_i32',
      lines: [
        '// f32 -> i32 likewise: toward zero, NaN to 0, out-of-range values clamped.',
        'static __device__ __forceinline__ int convc_f32_to_i32(float x) { return x != x ? 0 : x <= -2147483648.0f ? (-2147483647 - 1) : x >= 2147483648.0f ? 2147483647 : static_cast<int>(x); }',
      ],
    },
    { name: 'convc_min', lines: ['static __device__ __forceinline__ unsigned int convc_min(unsigned int a, unsigned int b) { return a < b ? a : b; }', 'static __device__ __forceinline__ int convc_min(int a, int b) { return a < b ? a : b; }'] },
    { name: 'convc_max', lines: ['static __device__ __forceinline__ unsigned int convc_max(unsigned int a, unsigned int b) { return a > b ? a : b; }', 'static __device__ __forceinline__ int convc_max(int a, int b) { return a > b ? a : b; }'] },
    vector('convc_add4', (x, y) => `${x} + ${y}`),
    vector('convc_sub4', (x, y) => `${x} - ${y}`),
    vector('convc_mul4', (x, y) => `${x} * ${y}`),
    vector('convc_div4', (x, y) => `${x} / ${y}`),
    vector('convc_min4', (x, y) => `fminf(${x}, ${y})`),
    vector('convc_max4', (x, y) => `fmaxf(${x}, ${y})`),
    {
      name: 'convc_load4',
      lines: [
        '// Four consecutive elements from element i (a multiple of 4): one 16-byte load of floats.',
        'static __device__ __forceinline__ float4 convc_load4(const float* p, unsigned int i) { return *reinterpret_cast<const float4*>(p + i); }',
        ...(halves
          ? ['static __device__ __forceinline__ float4 convc_load4(const __half* p, unsigned int i) { return make_float4(__half2float(p[i]), __half2float(p[i + 1u]), __half2float(p[i + 2u]), __half2float(p[i + 3u])); }']
          : []),
      ],
    },
    {
      name: 'convc_store4',
      lines: [
        'static __device__ __forceinline__ void convc_store4(float* p, unsigned int i, float4 v) { *reinterpret_cast<float4*>(p + i) = v; }',
        ...(halves
          ? [
              'static __device__ __forceinline__ void convc_store4(__half* p, unsigned int i, float4 v) {',
              '  p[i] = __float2half_rn(v.x); p[i + 1u] = __float2half_rn(v.y); p[i + 2u] = __float2half_rn(v.z); p[i + 3u] = __float2half_rn(v.w);',
              '}',
            ]
          : []),
      ],
    },
  ];
  return list;
}

/** What the module's header says, and its kernels. */
export interface CudaModuleSource {
  readonly model: string;
  readonly precision: StorageType;
  /** Launches a forward pass. */
  readonly dispatches: number;
  /** Each kernel, rendered by renderCudaKernel, in module order. */
  readonly kernels: readonly string[];
}

/**
 * The whole module, kernels.cu: a header, the helpers its kernels call, then the kernels in the
 * order given (each already rendered by renderCudaKernel). Ends with a newline.
 */
export function renderCudaModule(source: CudaModuleSource): string {
  const code = source.kernels.join('\n');
  const halves = source.precision === 'f16';
  const lines = [
    `// CUDA kernels of model '${commentSafe(source.model)}', generated by convc. Do not edit; recompile instead.`,
    `// ${source.kernels.length} kernels for ${source.dispatches} launches a forward pass; each kernel's header names the IR nodes it covers.`,
    '// Built by nvcc for the GPU, and unchanged by g++ with convc\'s host emulation header for the CPU.',
    ...(halves ? ['// Activations and weights are stored as __half; arithmetic is f32.', '#include <cuda_fp16.h>'] : []),
    '',
  ];
  for (const helper of helpers(halves)) if (new RegExp(`\\b${helper.name}\\(`).test(code)) lines.push(...helper.lines, '');
  return `${lines.join('\n')}\n${code}`;
}
