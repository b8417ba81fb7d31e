// Per-element ops as WGSL expressions, so that one definition serves both their standalone
// kernels and their place in a fused kernel's prologue or epilogue.
import type { BufferRef, KernelBinding } from './program.js';
import { erfHelper } from './kernels/erf.js';
import type { FusedStep } from '../../ir/types.js';

/** Where the value being transformed sits: WGSL expressions for its NHWC index, sample, channel. */
export interface ElementAt {
  readonly index: string;
  readonly n: string;
  readonly c: string;
}

export interface RenderedStep {
  readonly bindings: readonly KernelBinding[];
  readonly helpers: readonly string[];
  readonly constants: Readonly<Record<string, number>>;
  /** WGSL expression for the step's result, given the running value `v`. */
  readonly apply: (v: string, at: ElementAt) => string;
  readonly summary: string;
}

export interface StepSources {
  /** The buffer holding the node input at this position (a step's operand). */
  readonly operand: (position: number) => BufferRef;
  /** A WGSL expression reading element `index` of weight `key`; the caller binds the weight. */
  readonly param: (key: string, index: string) => string;
}

const geluHelper = `
fn gelu_erf(x: f32) -> f32 {
  return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}`;

/**
 * Renders one per-element step. `tag` keeps its binding and constant names apart from the
 * other steps of the same kernel; `channels` is the channel count of the value it sees.
 */
export function renderStep(step: FusedStep, tag: string, channels: number, sources: StepSources): RenderedStep {
  switch (step.op) {
    case 'gelu':
      return { bindings: [], helpers: [erfHelper, geluHelper], constants: {}, apply: (v) => `gelu_erf(${v})`, summary: 'GELU (erf)' };
    case 'drop_path':
      return { bindings: [], helpers: [], constants: {}, apply: (v) => v, summary: 'drop_path (identity)' };
    case 'add': {
      const name = `addend${tag}`;
      return {
        bindings: [{ name, access: 'read', buffer: sources.operand(step.operands[0]) }],
        helpers: [],
        constants: {},
        apply: (v, at) => `(${v} + ${name}[${at.index}])`,
        summary: 'residual add',
      };
    }
    case 'layer_scale':
      return {
        bindings: [],
        helpers: [],
        constants: {},
        apply: (v, at) => `(${v} * ${sources.param(step.params.scale, at.c)})`,
        summary: 'layer scale',
      };
    case 'grn_apply': {
      const [nx, count] = [`grn_nx${tag}`, `GRN_C${tag}`];
      return {
        bindings: [{ name: nx, access: 'read', buffer: sources.operand(step.operands[0]) }],
        helpers: [],
        constants: { [count]: channels },
        apply: (v, at) =>
          `(${sources.param(step.params.gamma, at.c)} * (${v} * ${nx}[${at.n} * ${count} + ${at.c}]) + ${sources.param(step.params.beta, at.c)} + ${v})`,
        summary: 'GRN apply (gamma * x * Nx + beta + x)',
      };
    }
    default:
      throw new Error(`internal: '${step.op}' has no per-element WGSL form`);
  }
}

/** Whether renderStep knows the op. */
export const perElementOps: ReadonlySet<string> = new Set(['gelu', 'drop_path', 'add', 'layer_scale', 'grn_apply']);
