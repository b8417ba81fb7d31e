// Graph -> WgslProgram: the target-neutral model lowering (kernel/model-program.ts) with every
// kernel rendered as a WGSL module. Fusion, math and schedules were decided before this point.
import { lowerModelProgram, type KernelRenderer } from '../../kernel/model-program.js';
import type { Schedule } from '../../kernel/schedule.js';
import type { StorageType } from '../../kernel/ir.js';
import { portableTarget, type TargetDescription } from '../../kernel/target.js';
import type { Graph, Node } from '../../ir/types.js';
import type { WgslProgram } from './program.js';
import { renderWgsl } from './render.js';

export { bufferBytes, dispatchGrid, maxWorkgroupsPerDimension, packWeights, packWeightValues, type PackedWeights } from '../../kernel/model-program.js';

export interface LowerOptions {
  /** The device every kernel must fit; by default WebGPU's default limits, so the runner is portable. */
  readonly target?: TargetDescription;
  /** How activations and weights are stored (arithmetic is f32 either way); f32 by default. */
  readonly precision?: StorageType;
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
}

/** WGSL modules are one per kernel, so an entry point keeps its program's name. */
const wgslRenderer: KernelRenderer = { render: (program) => renderWgsl(program), uniqueEntries: false };

export function lowerToWgsl(given: Graph, options: LowerOptions = {}): WgslProgram {
  const precision = options.precision ?? 'f32';
  return lowerModelProgram(given, { target: options.target ?? portableTarget(precision), precision, ...(options.schedule ? { schedule: options.schedule } : {}) }, wgslRenderer);
}
