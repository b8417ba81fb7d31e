// Graph -> CudaProgram: the target-neutral model lowering (kernel/model-program.ts) with every
// kernel rendered as a CUDA C function, and the module kernels.cu that holds them all. Fusion,
// math and schedules were decided before this point; schedules are fitted to the CUDA target.
import { lowerModelProgram, type KernelRenderer, type ModelProgram } from '../../kernel/model-program.js';
import type { StorageType } from '../../kernel/ir.js';
import type { Schedule } from '../../kernel/schedule.js';
import type { Graph, Node } from '../../ir/types.js';
import { renderCudaKernel, renderCudaModule } from './render.js';
import { cudaTarget, type CudaTarget } from './target.js';

export interface CudaProgram extends ModelProgram {
  /** kernels.cu: every kernel (`shaders[i].code`, entry `shaders[i].name`) and their helpers. */
  readonly module: string;
  readonly target: CudaTarget;
}

export interface CudaLowerOptions {
  /** The GPU kernels are fitted to; sm_90 by default. */
  readonly target?: CudaTarget;
  /** How activations and weights are stored (arithmetic is f32 either way); f32 by default. */
  readonly precision?: StorageType;
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
  /** Buffers of exactly each value's size, none shared: so AddressSanitizer sees any overrun (tests). */
  readonly exactBuffers?: boolean;
}

/** One module holds every kernel, so entry points are unique across the model. */
const cudaRenderer: KernelRenderer = { render: renderCudaKernel, uniqueEntries: true };

export function lowerToCuda(graph: Graph, options: CudaLowerOptions = {}): CudaProgram {
  const target = options.target ?? cudaTarget();
  const program = lowerModelProgram(
    graph,
    { target, precision: options.precision ?? 'f32', ...(options.schedule ? { schedule: options.schedule } : {}), ...(options.exactBuffers ? { exactBuffers: true } : {}) },
    cudaRenderer,
  );
  const module = renderCudaModule({ model: program.model, precision: program.precision, dispatches: program.dispatches.length, kernels: program.shaders.map((s) => s.code) });
  return { ...program, module, target };
}
