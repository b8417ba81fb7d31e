// What the WGSL backend produces from a graph: specialised kernels, the buffers they read and
// write, and the order of dispatches. The runner generator and the in-process runner both
// consume this, so the plan is made once.
import type { KernelProgram, StorageType } from '../../kernel/ir.js';
import type { KernelNeeds } from '../../kernel/target.js';

/** A weight as the GPU wants it: the checkpoint tensor rearranged for coalesced reads. */
export interface PackedWeight {
  readonly key: string;
  readonly floats: number;
  /** Offset in values inside the packed weights file (f32, or f16 for an f16 program). */
  readonly offset: number;
  /** How the checkpoint layout maps to this one, e.g. "[O, I, kh, kw] -> [kh, kw, I, O]". */
  readonly layout: string;
  /** For a weight group: the weights concatenated, in order. */
  readonly parts?: readonly string[];
}

export interface Dispatch {
  readonly shader: number;
  readonly workgroups: readonly [number, number, number];
  /** One buffer index per binding, in binding order. */
  readonly buffers: readonly number[];
  /** The IR nodes this dispatch computes, for comments and profiles. */
  readonly covers: string;
  /**
   * Set when it computes a sparse region's value on visible patches only (compact-sparse-regions):
   * its work is in proportion to the visible fraction.
   */
  readonly sparse?: true;
  /** Bytes of the tensors it binds: an estimate of the memory traffic it causes. */
  readonly bytes: number;
  /** The buffer its one read_write binding writes, and how many floats of it (from 0) it writes. */
  readonly writes: readonly [buffer: number, floats: number];
}

export interface ProgramBuffer {
  /** Values it holds, each stored as `dtype`. */
  readonly floats: number;
  readonly dtype: StorageType;
  readonly role: 'input' | 'output' | 'activation' | 'scratch' | 'weight';
  /** For weight buffers: the packed weight's key. */
  readonly weight?: string;
}

export interface ShaderModuleSource {
  readonly name: string;
  readonly code: string;
  /** What it needs of the device; the runner checks these against the device's limits. */
  readonly needs: KernelNeeds;
}

/** A model input or output as the caller sees it: f32, images NCHW, in a buffer of its own. */
export interface ProgramTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly buffer: number;
  /**
   * For a patch mask whose sparse region was compacted (compact-sparse-regions): how many
   * patches the masks it runs with keep, in all; run() refuses any other mask.
   */
  readonly keeps?: number;
}

export interface WgslProgram {
  readonly model: string;
  /** How activations and weights are stored; the caller's inputs and outputs are f32 either way. */
  readonly precision: StorageType;
  /** The image input's shape and the main output's (inputs[0], outputs[0]). */
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** Every input in the order a runner's run() takes them (the image first), and every output. */
  readonly inputs: readonly ProgramTensor[];
  readonly outputs: readonly ProgramTensor[];
  readonly shaders: readonly ShaderModuleSource[];
  readonly buffers: readonly ProgramBuffer[];
  readonly dispatches: readonly Dispatch[];
  /** The kernel program of each dispatch, in the same order. */
  readonly programs: readonly KernelProgram[];
  readonly weights: readonly PackedWeight[];
  /** The buffers of inputs[0] and outputs[0]. */
  readonly inputBuffer: number;
  readonly outputBuffer: number;
  /** Bytes of the largest single buffer, to check against maxStorageBufferBindingSize. */
  readonly largestBufferBytes: number;
}
