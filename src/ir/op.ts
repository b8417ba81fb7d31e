// What an op is: everything about it lives in one OpDef (attributes, shape rule, cost,
// fusion kind, weights, and its meaning as plain TypeScript for the reference executor).
import type { KernelMath } from '../kernel/math.js';
import type { Attrs, AttrValue, HostTensor, RandomInit, TensorType } from './types.js';

/**
 * Fusion kinds, from most to least fusable (TVM's op-pattern lattice). Passes decide what
 * may fuse from these kinds, never from op names.
 * - elementwise: out[i] depends on in[i] (GELU, add).
 * - broadcast: elementwise with a per-channel operand (layer scale).
 * - reduction: reduces over some axes, possibly re-broadcasting (LayerNorm, GRN, pooling).
 * - out-elementwise-fusable: a heavy op whose output can take an elementwise epilogue (conv, linear).
 * - opaque: fuses with nothing (graph input).
 */
export type FusionKind = 'elementwise' | 'broadcast' | 'reduction' | 'out-elementwise-fusable' | 'opaque';

export type AttrType = 'int' | 'float' | 'bool' | 'int-pair';

export interface AttrSpec {
  readonly name: string;
  readonly type: AttrType;
  /** Absent means the attribute is required. */
  readonly default?: AttrValue;
  readonly doc: string;
}

export interface ParamDecl {
  readonly role: string;
  /** Appended to the node's name with a dot to form the weight key; "" uses the name itself. */
  readonly suffix: string;
  readonly shape: readonly number[];
  readonly init: RandomInit;
}

/** A shape rule's complaint; the elaborator attaches the source location of the call. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export interface OpDef {
  readonly name: string;
  readonly summary: string;
  readonly kind: FusionKind;
  /** For reductions: the axes reduced. A channel reduction fits in a kernel that owns a pixel. */
  readonly reduces?: 'channels' | 'spatial';
  /**
   * For out-elementwise-fusable ops: whether each input element is read as is, so an elementwise
   * prologue can be applied on load. Zero padding breaks this: padding must stay zero.
   */
  readonly readsInputElementwise?: (attrs: Attrs) => boolean;
  /**
   * For out-elementwise-fusable ops: whether one kernel can also normalise over channels what
   * it computes. True where the op is computed pixel by pixel (convolutions); false for a GEMM
   * tiled over output channels (linear), where a pixel's channels lie in different workgroups.
   */
  readonly channelEpilogue?: boolean;
  /**
   * For out-elementwise-fusable ops: whether one kernel can normalise its input over channels
   * as it loads it (a LayerNorm before it). Convolutions without padding can, when the input
   * window of one output pixel fits in workgroup memory.
   */
  readonly channelPrologue?: (attrs: Attrs, input: TensorType) => boolean;
  /**
   * For out-elementwise-fusable ops: whether one kernel can also pool its input over space
   * first (the head's global average pool before its LayerNorm and linear).
   */
  readonly spatialPrologue?: (attrs: Attrs, input: TensorType) => boolean;
  /** For binary elementwise ops: whether the operands may be swapped (a + b = b + a). */
  readonly commutative?: boolean;
  /**
   * Set on ops that are the graph's inputs (arity 0): the name a caller passes the tensor by
   * (`input` for the image, `mask` for a patch mask).
   */
  readonly graphInput?: string;
  /**
   * Names of the tensor inputs after the running value (inputs 1..arity-1), for ops the language
   * calls with them as arguments before any attribute: `mask_fill(mask, 512)`.
   */
  readonly tensorArgs?: readonly string[];
  /**
   * Set on ops whose values are integers that index something (FCMAE's patch tables): stored
   * as f16 they stay exact only up to 2048, which lowering checks.
   */
  readonly holdsIndices?: boolean;
  /** Number of tensor inputs. Ops called from the language take the running value as input 0. */
  readonly arity: number;
  /** False for ops the language may not call directly (the residual add is written `residual { }`). */
  readonly callable: boolean;
  /** Arguments in the order the language accepts them positionally. */
  readonly attrs: readonly AttrSpec[];
  readonly params: (attrs: Attrs) => readonly ParamDecl[];
  /** Output type, or a ShapeError saying what the user must change. */
  readonly infer: (inputs: readonly TensorType[], attrs: Attrs) => TensorType;
  /** Multiply-adds of one forward pass (the papers' "FLOPs"): conv and linear only. */
  readonly macs: (inputs: readonly TensorType[], out: TensorType, attrs: Attrs) => number;
  /**
   * The op's math for kernels, declared once: a scalar expression, reduction statistics, or a
   * contraction, which kernel lowering composes under any schedule (src/kernel/math.ts).
   */
  readonly kernel: KernelMath;
  /** The op's meaning: plain, obviously correct f32 code. The ground truth for every backend. */
  readonly evaluate: (
    inputs: readonly HostTensor[],
    weights: Readonly<Record<string, HostTensor>>,
    attrs: Attrs,
    out: TensorType,
  ) => Float32Array;
}

export function intAttr(attrs: Attrs, name: string): number {
  const v = attrs[name];
  if (typeof v !== 'number') throw new Error(`internal: attribute '${name}' is not a number`);
  return v;
}

export function boolAttr(attrs: Attrs, name: string): boolean {
  const v = attrs[name];
  if (typeof v !== 'boolean') throw new Error(`internal: attribute '${name}' is not a bool`);
  return v;
}

export function pairAttr(attrs: Attrs, name: string): readonly [number, number] {
  const v = attrs[name];
  if (!Array.isArray(v) || v.length !== 2) throw new Error(`internal: attribute '${name}' is not a pair`);
  return [v[0] as number, v[1] as number];
}

/** Shape rules for ops that read the channel axis of an [N, C, ...] tensor. */
export function expectChannels(t: TensorType, channels: number, what: string): void {
  if (t.shape.length < 2) {
    throw new ShapeError(`${what} needs a tensor with a channel axis, got shape [${t.shape.join(', ')}]`);
  }
  if (t.shape[1] !== channels) {
    throw new ShapeError(
      `${what} expects ${channels} channels, but its input has ${t.shape[1]} (shape [${t.shape.join(', ')}])`,
    );
  }
}

export function expectRank(t: TensorType, rank: number, what: string): void {
  if (t.shape.length !== rank) {
    throw new ShapeError(`${what} needs a rank-${rank} tensor, got shape [${t.shape.join(', ')}]`);
  }
}

export const noParams = (): readonly ParamDecl[] => [];
export const noMacs = (): number => 0;
/** Biases and shifts: small but non-zero, so a missed bias shows in the output. */
export const shiftInit: RandomInit = { kind: 'uniform', lo: -0.5, hi: 0.5 };
/** Affine scales: around one, never zero. */
export const scaleInit: RandomInit = { kind: 'uniform', lo: 0.5, hi: 1.5 };
