// The kernel IR: one small typed program per dispatch. Lowering builds these from the graph's
// fused nodes and a schedule; renderers (WGSL today) print them and the interpreter runs them
// on the CPU with real workgroup and barrier semantics. Nothing here knows a target language.
//
// Execution model: `workgroups` workgroups of `workgroupSize` threads (one dimension) run
// `body`. Every thread sees the builtins `local` (its index in the workgroup) and `group` (its
// workgroup's index). Memory is named: storage buffers (bound, shared by all workgroups),
// workgroup-shared arrays and per-thread register arrays, all of f32. Scalars live in `let`
// bindings (immutable) and `var` registers (mutable).

/** Scalar types. Memory holds f32 only; u32 and i32 are for index arithmetic. */
export type ScalarType = 'f32' | 'u32' | 'i32' | 'bool';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'rem'
  | 'min'
  | 'max'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge'
  | 'eq'
  | 'ne'
  | 'and'
  | 'or';

/** `erf` is the error function of f32 (src/kernel/erf.ts fixes the approximation all targets use). */
export type UnaryOp = 'neg' | 'abs' | 'sqrt' | 'rsqrt' | 'exp' | 'erf' | 'not';

export type Expr =
  /** A literal; with `name`, renderers declare it once as a named constant (e.g. C_OUT). */
  | { readonly kind: 'const'; readonly type: ScalarType; readonly value: number | boolean; readonly name?: string }
  /** A `let`, a `var` or a loop index in scope. */
  | { readonly kind: 'ref'; readonly type: ScalarType; readonly name: string }
  | { readonly kind: 'builtin'; readonly type: 'u32'; readonly name: 'local' | 'group' }
  /** Comparisons and and/or give bool; the rest give the operands' type (both the same). */
  | { readonly kind: 'binary'; readonly type: ScalarType; readonly op: BinaryOp; readonly a: Expr; readonly b: Expr }
  | { readonly kind: 'unary'; readonly type: ScalarType; readonly op: UnaryOp; readonly a: Expr }
  /** Numeric conversion: f32 -> u32/i32 truncates toward zero; u32 <-> i32 reinterpret as the targets do. */
  | { readonly kind: 'cast'; readonly type: ScalarType; readonly a: Expr }
  /** `cond ? a : b`; both sides are evaluated (as WGSL's select does), so neither may fault. */
  | { readonly kind: 'select'; readonly type: ScalarType; readonly cond: Expr; readonly a: Expr; readonly b: Expr }
  /** Element `index` of a buffer, shared array or register array. */
  | { readonly kind: 'load'; readonly type: 'f32'; readonly memory: string; readonly index: Expr };

export type Stmt =
  | { readonly kind: 'comment'; readonly text: string }
  | { readonly kind: 'let'; readonly name: string; readonly value: Expr }
  | { readonly kind: 'var'; readonly name: string; readonly value: Expr }
  | { readonly kind: 'assign'; readonly name: string; readonly value: Expr }
  /** A per-thread f32 array, zero-initialised. */
  | { readonly kind: 'registers'; readonly name: string; readonly length: number }
  | { readonly kind: 'store'; readonly memory: string; readonly index: Expr; readonly value: Expr }
  /**
   * `for (index = from; index < to; index += step)` over u32. `unroll` asks renderers to
   * repeat the body (bounds must then be constants); it never changes the meaning.
   */
  | {
      readonly kind: 'loop';
      readonly index: string;
      readonly from: Expr;
      readonly to: Expr;
      readonly step: Expr;
      readonly body: readonly Stmt[];
      readonly unroll?: boolean;
    }
  | { readonly kind: 'if'; readonly cond: Expr; readonly then: readonly Stmt[]; readonly else?: readonly Stmt[] }
  /** Every thread of the workgroup waits here, and workgroup memory writes before it are seen after it. */
  | { readonly kind: 'barrier' }
  /**
   * A sum across threads: the threads of each run of `lanes` consecutive threads (a power of
   * two dividing the workgroup size) add their `value`s, and each of them gets the run's total
   * as `let into`. Every thread of the workgroup must reach it (it holds barriers). `strategy`
   * says how: 'tree' in workgroup memory (see expand.ts). It is expanded before rendering or
   * interpretation, so both see the same barriers.
   */
  | { readonly kind: 'reduce'; readonly into: string; readonly value: Expr; readonly lanes: number; readonly strategy: 'tree' };

/** Where a bound buffer's data lives; the backend's memory plan maps these to real buffers. */
export type BufferRef =
  | { readonly kind: 'value'; readonly id: number }
  | { readonly kind: 'weight'; readonly key: string }
  | { readonly kind: 'scratch'; readonly name: string; readonly floats: number }
  /**
   * Several small weights (per-channel scales and shifts of fused steps) concatenated into one
   * buffer, so a fused kernel stays within WebGPU's default of 8 storage buffers per stage.
   */
  | { readonly kind: 'weight-group'; readonly keys: readonly string[] }
  /** The model's NCHW input and output as the caller passes and receives them. */
  | { readonly kind: 'model-input' }
  | { readonly kind: 'model-output' };

export interface BufferDecl {
  readonly name: string;
  readonly access: 'read' | 'read_write';
  /** Elements the kernel may touch, from 0. */
  readonly length: number;
  readonly ref: BufferRef;
}

export interface SharedDecl {
  readonly name: string;
  readonly length: number;
}

/** A schedule as printed and compared: its strategy and parameters. */
export type ScheduleValue = Readonly<Record<string, string | number | boolean>>;

export interface KernelProgram {
  /** Entry-point name, an identifier: e.g. conv2d_depthwise_7x7_layernorm. */
  readonly name: string;
  /** What it computes, for headers and `convc inspect`. */
  readonly summary: string;
  /** The IR nodes it computes, as text (user-given names: renderers must escape it). */
  readonly covers: string;
  /** In binding order; exactly one is read_write, and it is the only buffer the kernel writes. */
  readonly buffers: readonly BufferDecl[];
  readonly shared: readonly SharedDecl[];
  readonly workgroupSize: number;
  readonly workgroups: number;
  readonly schedule: ScheduleValue;
  readonly body: readonly Stmt[];
}
