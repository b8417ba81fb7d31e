// The IR's vocabulary: one node type, tensor types, attribute values. Every op, pass and
// backend speaks in these terms (see ../../../shared/DESIGN.md, "one node type").
import type { SourceLoc } from '../util/diagnostics.js';

/**
 * Element types. Only f32 is produced today; the others are here so that storage in f16/bf16
 * (WebGPU's shader-f16, half-precision checkpoints) needs no change to the node type.
 */
export type DType = 'f32' | 'f16' | 'bf16';

/**
 * A value's type. Tensors are logically NCHW (or NC after pooling) whatever layout a backend
 * chooses; the channel axis is always axis 1.
 */
export interface TensorType {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /**
   * Set on the values of a sparse region (FCMAE's encoder, `sparse(mask) { ... }`): the id of
   * the patch mask ([N, rows, cols], 1 = masked) whose masked patches the value is zero at, and
   * which a kernel need not compute.
   */
  readonly mask?: ValueId;
  /**
   * Set on a sparse region's values once compacted (compact-sparse-regions): the id of the patch
   * mask whose visible patches the value holds, one per sample ([V, C, h, w]).
   */
  readonly compact?: ValueId;
}

/** A node's id is also the id of the value it produces (one output per node). */
export type ValueId = number;

export type AttrValue = number | boolean | readonly number[];
export type Attrs = Readonly<Record<string, AttrValue>>;

/**
 * An op folded into a fused node's kernel: applied to the node's input before its own op
 * (prologue) or to its result after (epilogue). Only ops whose fusion kind allows it get here.
 */
export interface FusedStep {
  readonly op: string;
  readonly attrs: Attrs;
  readonly params: Readonly<Record<string, string>>;
  /** Further operands, as positions in the fused node's inputs (e.g. a residual's shortcut). */
  readonly operands: readonly number[];
  /** The original node's name, for comments and error messages. */
  readonly name: string;
}

export interface Fusion {
  readonly prologue: readonly FusedStep[];
  readonly epilogue: readonly FusedStep[];
  /**
   * Set on a node whose kernel also writes partial sums of a spatial statistic of its value
   * for a statistics node to finish (its `fromPartials`): for each sample, channel and run of
   * `positions` consecutive positions (row-major over H, W), the sum of the op's first
   * statistic's term (GRN: x squared). It changes no value of the graph, only which kernel
   * reads what; the reference executor ignores it.
   */
  readonly partials?: PartialSums;
  /**
   * Set on a spatial statistics node (grn_stats) whose kernel finishes the partial sums its
   * input's producer writes (that node's `partials`, over runs of this many positions) instead
   * of reading the input.
   */
  readonly fromPartials?: number;
}

export interface PartialSums {
  /** The statistics op whose term is summed (its first statistic's). */
  readonly op: string;
  readonly attrs: Attrs;
  /** Positions per partial sum; divides the value's H x W. */
  readonly positions: number;
  /** The statistics node's name, for comments. */
  readonly name: string;
}

export interface Node {
  readonly id: ValueId;
  readonly op: string;
  readonly inputs: readonly ValueId[];
  readonly attrs: Attrs;
  /** Weight tensors this node reads: role (e.g. "weight") -> key in Graph.params. */
  readonly params: Readonly<Record<string, string>>;
  readonly type: TensorType;
  /** The scope path the user gave the node, e.g. "stages.0.0.dwconv"; "" when unnamed. */
  readonly name: string;
  /** Where the node came from, so a later pass can still point at the user's line. */
  readonly loc?: SourceLoc;
  /**
   * Set by fusion passes. The node computes epilogue(op(prologue(inputs[0]), inputs[1..arity-1]));
   * inputs past the op's arity are the steps' operands.
   */
  readonly fusion?: Fusion;
}

/** How to draw a weight for --random-weights: values chosen so that no op is an identity. */
export type RandomInit =
  | { readonly kind: 'fan-in'; readonly fanIn: number }
  | { readonly kind: 'uniform'; readonly lo: number; readonly hi: number };

/**
 * A weight computed from others when weights are bound, never read from a checkpoint: a
 * constant-folding pass's output. `scale-rows`: out[o, ...] = source[o, ...] * scale[o].
 */
export interface DerivedWeight {
  readonly rule: 'scale-rows';
  readonly source: string;
  readonly scale: string;
}

export interface ParamSpec {
  readonly key: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly init: RandomInit;
  readonly derived?: DerivedWeight;
}

/**
 * Another checkpoint's name for a weight, e.g. timm's "stages.{i}.blocks.{j}.conv_dw" for
 * the official "stages.{i}.{j}.dwconv". `{x}` matches one dot-separated segment; whatever
 * follows the matched prefix is carried over.
 */
export interface WeightAlias {
  readonly from: string;
  readonly to: string;
  /** The layout tensors named `from` are stored in, when not the dense one (src/weights/layouts.ts). */
  readonly layout?: string;
  readonly loc?: SourceLoc;
}

/** A value the caller gets back, by name (`output` for a model's single result). */
export interface GraphOutput {
  readonly name: string;
  readonly id: ValueId;
}

export interface Graph {
  readonly name: string;
  /**
   * In topological order: a node's inputs come before it. The graph's inputs are its nodes whose
   * op is a graph input (OpDef.graphInput), at most one of each kind.
   */
  readonly nodes: readonly Node[];
  /** At least one; the first is the model's main result (a classifier's logits, FCMAE's pred). */
  readonly outputs: readonly GraphOutput[];
  readonly params: ReadonlyMap<string, ParamSpec>;
  readonly aliases: readonly WeightAlias[];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A tensor held on the host in f32, row-major (C order), as .npy and safetensors store it. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
