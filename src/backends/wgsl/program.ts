// What the WGSL backend produces from a graph: specialised kernels, the buffers they read and
// write, and the order of dispatches. The runner generator and the in-process runner both
// consume this, so the plan is made once.
import type { ValueId } from '../../ir/types.js';
import type { KernelNeeds } from './target.js';

/** Where a kernel binding's data lives. */
export type BufferRef =
  | { readonly kind: 'value'; readonly id: ValueId }
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

export interface KernelBinding {
  /** The WGSL variable name, e.g. "input", "weight". */
  readonly name: string;
  readonly access: 'read' | 'read_write';
  readonly buffer: BufferRef;
}

/** One kernel specialised for one node's shapes: the math, before any schedule is chosen. */
export interface KernelSpec {
  /** A readable WGSL entry-point name, e.g. "conv2d_depthwise_7x7". */
  readonly name: string;
  /** What the kernel computes, for its header comment. */
  readonly summary: string;
  readonly bindings: readonly KernelBinding[];
  /** Number of independent outputs (threads) the kernel computes. */
  readonly invocations: number;
  /** `const` u32 declarations (shapes) baked into the shader. */
  readonly constants: Readonly<Record<string, number>>;
  /** `const` f32 declarations (epsilons) baked into the shader. */
  readonly floats?: Readonly<Record<string, number>>;
  /** WGSL helper functions the body calls. */
  readonly helpers?: readonly string[];
  /** The body of the per-invocation function; `index` is this invocation's output index. */
  readonly body: string;
  /**
   * Set for kernels whose workgroups cooperate (reductions): the body runs once per thread with
   * `group` (the workgroup's index, < groups) and `local` (the thread's index in it), and may use
   * the workgroup variables it declares and workgroupBarrier(). `invocations` and `index` are
   * then unused.
   */
  readonly cooperative?: {
    readonly groups: number;
    /** Workgroup-memory declarations, e.g. `tile: array<f32, 512>` (f32 arrays only). */
    readonly workgroupVars: readonly string[];
  };
}

/** A weight as the GPU wants it: the checkpoint tensor rearranged for coalesced reads. */
export interface PackedWeight {
  readonly key: string;
  readonly floats: number;
  /** Offset in floats inside the packed weights file. */
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
  /** Bytes of the tensors it binds: an estimate of the memory traffic it causes. */
  readonly bytes: number;
  /** The buffer its one read_write binding writes, and how many floats of it (from 0) it writes. */
  readonly writes: readonly [buffer: number, floats: number];
}

export interface ProgramBuffer {
  readonly floats: number;
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

export interface WgslProgram {
  readonly model: string;
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly shaders: readonly ShaderModuleSource[];
  readonly buffers: readonly ProgramBuffer[];
  readonly dispatches: readonly Dispatch[];
  readonly weights: readonly PackedWeight[];
  readonly inputBuffer: number;
  readonly outputBuffer: number;
  /** Bytes of the largest single buffer, to check against maxStorageBufferBindingSize. */
  readonly largestBufferBytes: number;
}
