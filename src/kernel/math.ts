// How an op declares its math for kernels, once, in its op definition (src/ir/ops/*). Kernel
// lowering composes these into programs (prologue -> op -> epilogue) under any schedule; no
// backend writes an op's formula again. The reference executor keeps its own plain
// `evaluate`, so kernels are judged against something that shares none of this.
import type { Expr } from './ir.js';
import type { Attrs } from '../ir/types.js';

/** Where an element sits, and how an op's math reads the rest of what it needs there. */
export interface ElementContext {
  /** The element's sample and channel (u32). */
  readonly n: Expr;
  readonly c: Expr;
  /**
   * The value of the op's operand `i` (0 for its first tensor input after the running value)
   * at this element, broadcast by the operand's shape ([N, C] operands by sample and channel).
   * `name` names the binding in generated code.
   */
  operand(i: number, name: string): Expr;
  /** Element `index` (u32) of the op's weight with this role. */
  param(role: string, index: Expr): Expr;
}

/**
 * The context of a statistic's term where lowering knows no element's site (a pixel's channels
 * in a fused kernel, partial sums): the terms of ops reduced there read no operand or weight.
 */
export const sitelessContext: ElementContext = {
  get n(): Expr {
    throw new Error('internal: a statistic read its element\'s sample where lowering gives no site');
  },
  get c(): Expr {
    throw new Error('internal: a statistic read its element\'s channel where lowering gives no site');
  },
  operand: () => {
    throw new Error('internal: a statistic read an operand where lowering gives no site');
  },
  param: () => {
    throw new Error('internal: a statistic read a weight where lowering gives no site');
  },
};

/** out = apply(x) element by element. */
export interface ElementwiseMath {
  readonly kind: 'elementwise';
  readonly apply: (x: Expr, at: ElementContext, attrs: Attrs) => Expr;
}

/**
 * A statistic over the reduced axis: finish(sum of term(x)), where terms may use earlier
 * statistics. `at` is the element's context, for terms that read an operand there; only
 * reductions over the whole tensor ('all') give one, others throw if a term asks.
 */
export interface Statistic {
  readonly name: string;
  readonly term: (x: Expr, stats: Readonly<Record<string, Expr>>, attrs: Attrs, at: ElementContext) => Expr;
  /** `count` is the reduced axis's length as f32. */
  readonly finish: (sum: Expr, count: Expr, stats: Readonly<Record<string, Expr>>, attrs: Attrs) => Expr;
  /**
   * Set when `term` is (x - m)^2, m being the earlier statistic of this name, a mean (the sum of
   * x over count). Lowering may then compute both in one pass over the elements (Welford's
   * update), where a second pass would read them from memory again.
   */
  readonly centredOn?: string;
}

/**
 * Statistics over channels (of each pixel), over space (of each sample and channel) or over
 * the whole tensor ('all': every element of every sample, into one value), then either each
 * element mapped with them (`apply`: same shape out), or the last statistic as the output (the
 * axes reduced away). `then` reduces that output again over channels.
 */
export interface ReductionMath {
  readonly kind: 'reduction';
  readonly over: 'channels' | 'spatial' | 'all';
  readonly stats: readonly Statistic[];
  readonly apply?: (x: Expr, stats: Readonly<Record<string, Expr>>, at: ElementContext, attrs: Attrs) => Expr;
  readonly then?: ReductionMath & { readonly over: 'channels' };
  /**
   * For a spatial reduction with `then`: whether its statistics span the whole batch (every
   * sample's positions, then one reduction over channels), the result repeated for each sample.
   */
  readonly spansBatch?: (attrs: Attrs) => boolean;
}

/**
 * A grouped 2-D convolution over the input window (a linear layer is the 1x1 case):
 * out[n, o, y, x] = bias[o] + sum over (ky, kx, i in o's group) in[n, i, y*s + ky - p, x*s + kx - p] * w[o, i, ky, kx],
 * zero outside the input. The weight is stored [out, in/groups, kh, kw] (or [out, in]).
 */
export interface Contraction {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly groups: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Weight roles. */
  readonly weight: string;
  readonly bias?: string;
}

export interface ContractionMath {
  readonly kind: 'contraction';
  readonly contraction: (attrs: Attrs) => Contraction;
}

/**
 * Each output element read from the op's inputs at places computed from its coordinates: index
 * tables and data movement (FCMAE's patch compaction). Reads are of clamped coordinates, kept or
 * dropped by a select, so no coordinate ever leaves its tensor.
 */
export interface GatherMath {
  readonly kind: 'gather';
  readonly value: (at: GatherContext, attrs: Attrs) => Expr;
}

export interface GatherContext {
  /** The output element's logical coordinates, one u32 per axis of the output's shape. */
  readonly coords: readonly Expr[];
  readonly shape: readonly number[];
  /** The inputs' shapes. */
  readonly shapes: readonly (readonly number[])[];
  /** Input `i` at logical coordinates (u32, one per axis of its shape, each within its axis). */
  read(input: number, coords: readonly Expr[]): Expr;
  /** The f32 sum of term(i) over i (u32) from 0 to `count` - 1, `count` a constant. */
  sum(count: number, term: (i: Expr) => Expr): Expr;
}

/** The graph's input: the layout kernel reads it; it has no math of its own. */
export interface InputMath {
  readonly kind: 'input';
}

/** Ops that kernels only ever see split by a pass (named here) into ops with math of their own. */
export interface SplitMath {
  readonly kind: 'split';
  readonly pass: string;
}

export type KernelMath = ElementwiseMath | ReductionMath | ContractionMath | GatherMath | InputMath | SplitMath;
