// Graph -> GpuJsProgram: the target-neutral model lowering (kernel/model-program.ts) with every
// kernel rendered as a gpu.js kernel function. Fusion, math and schedules were decided before
// this point; schedules are fitted to the gpu.js target, whose threads write their own element.
import { lowerModelProgram, type KernelRenderer, type ModelProgram } from '../../kernel/model-program.js';
import type { Schedule } from '../../kernel/schedule.js';
import type { Graph, Node } from '../../ir/types.js';
import { gpuJsHelpers, renderGpuJsKernel, type GpuJsHelper } from './render.js';
import { gpujsTarget } from './target.js';

/** What a dispatch hands gpu.js: its kernel, the buffer behind each parameter, its output size. */
export interface GpuJsDispatch {
  /** Index into `shaders` (each shader's code is a kernel function's source). */
  readonly kernel: number;
  /** The buffer each of the function's parameters reads, in parameter order. */
  readonly reads: readonly number[];
  /** The buffer it writes, and its elements: gpu.js runs the function once for each. */
  readonly writes: number;
  readonly elements: number;
}

export interface GpuJsProgram extends ModelProgram {
  readonly steps: readonly GpuJsDispatch[];
  /** The helper functions kernels call, to be added to the GPU before the kernels. */
  readonly helpers: readonly GpuJsHelper[];
}

export interface GpuJsLowerOptions {
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
}

/** Each kernel is its own gpu.js kernel function, named by its program. */
const gpuJsRenderer: KernelRenderer = { render: (program, entry) => renderGpuJsKernel(program, entry).source, uniqueEntries: true };

/** The graph as gpu.js kernels, stored f32 (gpu.js's 'single' precision; it has no f16 storage). */
export function lowerToGpuJs(graph: Graph, options: GpuJsLowerOptions = {}): GpuJsProgram {
  const program = lowerModelProgram(graph, { target: gpujsTarget, precision: 'f32', ...(options.schedule ? { schedule: options.schedule } : {}) }, gpuJsRenderer);
  const steps = program.dispatches.map((dispatch, i): GpuJsDispatch => {
    const decls = program.programs[i].buffers;
    const reads = decls.flatMap((decl, binding) => (decl.access === 'read' ? [dispatch.buffers[binding]] : []));
    const [writes, elements] = dispatch.writes;
    return { kernel: dispatch.shader, reads, writes, elements };
  });
  const code = program.shaders.map((s) => s.code).join('\n');
  const helpers = gpuJsHelpers().filter((h) => new RegExp(`\\b${h.name}\\(`).test(code));
  // convc_urem calls convc_udiv.
  if (helpers.some((h) => h.name === 'convc_urem') && !helpers.some((h) => h.name === 'convc_udiv')) helpers.unshift(gpuJsHelpers().find((h) => h.name === 'convc_udiv')!);
  return { ...program, steps, helpers };
}
