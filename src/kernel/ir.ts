// The kernel IR: one small typed program per dispatch. Lowering builds these from the graph's
// fused nodes and a schedule; renderers (WGSL today) print them and the interpreter runs them
// on the CPU with real workgroup and barrier semantics. Nothing here knows a target language.
//
// Execution model: `workgroups` workgroups of `workgroupSize` threads (one dimension) run
// `body`. Every thread sees the builtins `local` (its index in the workgroup) and `group` (its
// workgroup's index). Memory is named: storage buffers (bound, shared by all workgroups),
// workgroup-shared arrays and per-thread register arrays. Registers and shared arrays hold f32;
// a buffer declares its storage type (f32 or f16) and layout, and its loads and stores convert
// at the boundary, so every value the body computes with is f32. Scalars live in `let`
// bindings (immutable) and `var` registers (mutable).
//
// Vectors: `vec4f` is four f32 components, for loads and stores of four consecutive elements
// at once (a target's 16-byte memory access) and componentwise arithmetic on them. Every index
// still counts elements, not vectors. The rules:
//  - A vector load (`load` of type vec4f) reads elements index .. index+3; a store whose value
//    is vec4f writes them. `index` must be a multiple of 4 (unaligned vector access faults), and
//    the memory must be a buffer or shared array declared `vector: 4` (whose length is then a
//    multiple of 4). Scalar loads and stores on such memory stay allowed, element by element.
//    Register arrays are never vector.
//  - vec4f values come only from vector loads, `vector` (four f32 parts), refs to vec4f
//    lets/vars and binary add, sub, mul, div, min and max of two vec4f operands (componentwise,
//    each component rounded as f32 arithmetic is; never a vec4f with an f32: build the vector).
//    `component` takes one f32 back out. There are no vec4f constants, and comparisons, rem,
//    and/or, unary ops, casts and select are scalar only.

/**
 * Value types. Memory values load as f32 (from f32 or f16 storage); u32 and i32 are for index
 * arithmetic; vec4f is four f32 (see the vector rules above).
 */
export type ScalarType = 'f32' | 'u32' | 'i32' | 'bool' | 'vec4f';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'rem'
  | 'min'
  | 'max'
  /** Bitwise exclusive or, of u32 only (a lane's partner in a subgroup butterfly). */
  | 'xor'
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
  /**
   * Comparisons and and/or give bool; the rest give the operands' type (both the same). On two
   * vec4f operands only add, sub, mul, div, min and max are allowed, componentwise.
   */
  | { readonly kind: 'binary'; readonly type: ScalarType; readonly op: BinaryOp; readonly a: Expr; readonly b: Expr }
  | { readonly kind: 'unary'; readonly type: ScalarType; readonly op: UnaryOp; readonly a: Expr }
  /** Numeric conversion: f32 -> u32/i32 truncates toward zero; u32 <-> i32 reinterpret as the targets do. */
  | { readonly kind: 'cast'; readonly type: ScalarType; readonly a: Expr }
  /** `cond ? a : b`; both sides are evaluated (as WGSL's select does), so neither may fault. */
  | { readonly kind: 'select'; readonly type: ScalarType; readonly cond: Expr; readonly a: Expr; readonly b: Expr }
  /**
   * Element `index` of a buffer, shared array or register array; as vec4f, elements index ..
   * index+3 of memory declared `vector: 4`, with index a multiple of 4.
   */
  | { readonly kind: 'load'; readonly type: 'f32' | 'vec4f'; readonly memory: string; readonly index: Expr }
  /** A vec4f of four f32 parts, in component order x, y, z, w. */
  | { readonly kind: 'vector'; readonly type: 'vec4f'; readonly parts: readonly [Expr, Expr, Expr, Expr] }
  /** Component `index` (0 = x .. 3 = w) of a vec4f. */
  | { readonly kind: 'component'; readonly type: 'f32'; readonly a: Expr; readonly index: 0 | 1 | 2 | 3 };

export type Stmt =
  | { readonly kind: 'comment'; readonly text: string }
  | { readonly kind: 'let'; readonly name: string; readonly value: Expr }
  | { readonly kind: 'var'; readonly name: string; readonly value: Expr }
  | { readonly kind: 'assign'; readonly name: string; readonly value: Expr }
  /** A per-thread f32 array, zero-initialised; never vector. */
  | { readonly kind: 'registers'; readonly name: string; readonly length: number }
  /**
   * Writes element `index`; with a vec4f value, elements index .. index+3 of memory declared
   * `vector: 4`, index a multiple of 4.
   */
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
   * says how: 'tree' in workgroup memory, or 'subgroup' by shuffles within a subgroup (lanes
   * must divide the program's `subgroupSize`). It is expanded (expand.ts) before rendering or
   * interpretation, so both see the same code.
   */
  | { readonly kind: 'reduce'; readonly into: string; readonly value: Expr; readonly lanes: number; readonly strategy: 'tree' | 'subgroup' }
  /**
   * `let into` = the f32 `value` of the thread whose index in the subgroup is this thread's XOR
   * `mask` (mask < the program's subgroupSize). Subgroups are taken to be runs of subgroupSize
   * consecutive threads, as on the drivers we know (lavapipe included); WGSL does not promise
   * it, so schedules use subgroups only on a target with a fixed subgroup size. Every thread of
   * the workgroup must reach it together.
   */
  | { readonly kind: 'shuffle-xor'; readonly into: string; readonly value: Expr; readonly mask: number };

/** Where a bound buffer's data lives; the backend's memory plan maps these to real buffers. */
export type BufferRef =
  | { readonly kind: 'value'; readonly id: number }
  | { readonly kind: 'weight'; readonly key: string }
  | { readonly kind: 'scratch'; readonly name: string; readonly floats: number }
  /**
   * Partial sums of a statistic of value `id` (the graph's Fusion.partials), written by the
   * kernel computing that value beside it and read by the kernel finishing the statistic. Kept
   * in f32 whatever the storage type: sums of squares outgrow f16.
   */
  | { readonly kind: 'partials'; readonly id: number; readonly floats: number }
  /**
   * Several small weights (per-channel scales and shifts of fused steps) concatenated into one
   * buffer, so a fused kernel stays within WebGPU's default of 8 storage buffers per stage.
   */
  | { readonly kind: 'weight-group'; readonly keys: readonly string[] }
  /**
   * A model input or output by name, as the caller passes and receives it: an image NCHW (its
   * layout kernel reads or writes it), any other input (a patch mask) as the value of its node.
   */
  | { readonly kind: 'model-input'; readonly name: string }
  | { readonly kind: 'model-output'; readonly name: string };

/**
 * How a buffer stores its elements. Arithmetic is f32 whatever the storage: a load from f16
 * memory widens to f32, a store narrows (rounding to nearest even).
 */
export type StorageType = 'f32' | 'f16';

/**
 * What a buffer holds, for readers and for hosts that fill it: its axes in memory order (the
 * last varies fastest) and their sizes, e.g. activations as n, h, w, c (NHWC). The index
 * arithmetic in the body is what the kernel actually does; the layout names its intent, and
 * the interpreter checks that the two agree in size.
 */
export interface BufferLayout {
  readonly axes: readonly string[];
  readonly shape: readonly number[];
}

export interface BufferDecl {
  readonly name: string;
  readonly access: 'read' | 'read_write';
  /** Elements the kernel may touch, from 0: the layout's element count. */
  readonly length: number;
  readonly dtype: StorageType;
  readonly layout: BufferLayout;
  readonly ref: BufferRef;
  /**
   * 4: the kernel may load and store vec4f here (length then a multiple of 4). Targets bind such
   * a buffer as an array of 4-vectors, so the bound byte size must be a multiple of 16 (WGSL
   * requires it for array<vec4<f32>>): the host rounds buffer sizes up.
   */
  readonly vector?: 4;
}

export interface SharedDecl {
  readonly name: string;
  /** Elements (f32). */
  readonly length: number;
  /** 4: the kernel may load and store vec4f here (length then a multiple of 4). */
  readonly vector?: 4;
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
  /**
   * In binding order. The kernel writes only read_write buffers: the value it computes, and at
   * most one 'partials' buffer beside it.
   */
  readonly buffers: readonly BufferDecl[];
  readonly shared: readonly SharedDecl[];
  readonly workgroupSize: number;
  readonly workgroups: number;
  /** The device's (fixed) subgroup size; set when the program uses subgroup operations. */
  readonly subgroupSize?: number;
  readonly schedule: ScheduleValue;
  readonly body: readonly Stmt[];
}
