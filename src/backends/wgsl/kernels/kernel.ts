// The contract between the WGSL lowering and each op's kernels.
import type { HostTensor, Node, TensorType } from '../../../ir/types.js';
import type { BufferRef, KernelSpec } from '../program.js';
import type { Schedule } from '../schedule.js';

export interface LoweringContext {
  readonly node: Node;
  readonly inputs: readonly TensorType[];
  readonly input: (index: number) => BufferRef;
  readonly weight: (role: string) => BufferRef;
  /** The shape of a weight of the graph. */
  readonly paramShape: (key: string) => readonly number[];
  /** A temporary buffer that lives for this node's kernels only. */
  readonly scratch: (name: string, floats: number) => BufferRef;
  readonly output: BufferRef;
  readonly schedule: Schedule;
}

export interface WeightPacking {
  /** E.g. "[out, in] -> [in, out]". */
  readonly layout: string;
  readonly pack: (tensor: HostTensor) => Float32Array;
}

export interface WgslKernels {
  /** The kernels computing one IR node, in dispatch order. */
  readonly lower: (ctx: LoweringContext) => readonly KernelSpec[];
  /** How a weight of this role is rearranged for the kernels; absent or undefined: as stored. */
  readonly packing?: (role: string) => WeightPacking | undefined;
}

/** NHWC view of a logical NCHW (or NC) shape: batch, positions (H*W, 1 if pooled), channels. */
export function nhwc(type: TensorType): { n: number; positions: number; channels: number } {
  const [n, channels, ...spatial] = type.shape;
  return { n, channels, positions: spatial.reduce((a, b) => a * b, 1) };
}
