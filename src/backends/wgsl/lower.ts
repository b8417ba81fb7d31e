// Graph -> WgslProgram in three steps: each node's kernel program (src/kernel), the memory plan
// (src/kernel/memory-plan.ts), and the programs rendered to WGSL; weights packed in the
// layouts kernels read. Fusion, math and schedules were decided before this point.
import { planMemory, type PlannedKernel } from '../../kernel/memory-plan.js';
import { lowerNode, lowerOutputLayout, weightPackings } from '../../kernel/lower/index.js';
import { splitForKernels } from '../../kernel/split.js';
import type { Schedule } from '../../kernel/schedule.js';
import { programNeeds, webgpuDefaultTarget, type TargetDescription } from '../../kernel/target.js';
import type { WeightMap } from '../reference/executor.js';
import { formatShape, numel, type Graph, type Node } from '../../ir/types.js';
import { commentSafe } from './text.js';
import type { Dispatch, PackedWeight, ShaderModuleSource, WgslProgram } from './program.js';
import { renderWgsl } from './render.js';

export interface LowerOptions {
  /** The device every kernel must fit; by default WebGPU's default limits, so the runner is portable. */
  readonly target?: TargetDescription;
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
}

/** WebGPU's guaranteed maximum workgroups per grid dimension. */
export const maxWorkgroupsPerDimension = 65535;

/**
 * A 2-D grid of at least `workgroups` workgroups: x wraps at the per-dimension limit; the
 * rendered kernel numbers its workgroup wg.y * num_workgroups.x + wg.x and skips the extra.
 */
export function dispatchGrid(workgroups: number): [number, number, number] {
  const groups = Math.max(1, workgroups);
  if (groups <= maxWorkgroupsPerDimension) return [groups, 1, 1];
  const y = Math.ceil(groups / maxWorkgroupsPerDimension);
  return [Math.ceil(groups / y), y, 1];
}

export function lowerToWgsl(given: Graph, options: LowerOptions = {}): WgslProgram {
  const target = options.target ?? webgpuDefaultTarget;
  const graph = splitForKernels(given);
  // 1. Kernel programs, one per node (and the output's layout change).
  const kernels: PlannedKernel[] = graph.nodes.map((node) => ({ node: node.id, program: lowerNode(graph, node, target, options.schedule?.(node)) }));
  if (graph.nodes[graph.output].type.shape.length === 4) kernels.push({ program: lowerOutputLayout(graph, target) });
  // 2. Which buffer each binding uses.
  const plan = planMemory(graph, kernels);
  // 3. WGSL. Identical kernels (same op, shapes and schedule) share one shader module; their
  // header comment names the first node they were made for.
  const shaders: ShaderModuleSource[] = [];
  const shaderIndex = new Map<string, number>();
  const dispatches: Dispatch[] = kernels.map(({ program }, i) => {
    const code = renderWgsl(program);
    const key = code.replace(/^\/\/ Computes IR node\(s\):.*$/m, '');
    let shader = shaderIndex.get(key);
    if (shader === undefined) {
      shader = shaders.length;
      shaderIndex.set(key, shader);
      shaders.push({ name: program.name, code, needs: programNeeds(program) });
    }
    const written = program.buffers.findIndex((b) => b.access === 'read_write');
    return {
      shader,
      workgroups: dispatchGrid(program.workgroups),
      buffers: plan.bindings[i],
      covers: commentSafe(program.covers),
      bytes: program.buffers.reduce((sum, b) => sum + b.length * 4, 0),
      writes: [plan.bindings[i][written], program.buffers[written].length],
    };
  });

  const packingOf = weightPackings(graph);
  const weights: PackedWeight[] = [];
  let offset = 0;
  for (const b of plan.buffers) {
    if (b.role !== 'weight') continue;
    const key = b.weight!;
    const floats = (b.parts ?? [key]).reduce((sum, k) => sum + numel(graph.params.get(k)!.shape), 0);
    const layout = b.parts ? `concatenation of ${b.parts.join(', ')}` : (packingOf(key)?.layout ?? `${formatShape(graph.params.get(key)!.shape)} as stored`);
    weights.push({ key, floats, offset, layout, ...(b.parts ? { parts: b.parts } : {}) });
    offset += floats;
  }
  const inputNode = graph.nodes.find((n) => n.op === 'input')!;
  return {
    model: graph.name,
    inputShape: inputNode.type.shape,
    outputShape: graph.nodes[graph.output].type.shape,
    shaders,
    buffers: plan.buffers.map(({ floats, role, weight }) => ({ floats, role, ...(weight ? { weight } : {}) })),
    dispatches,
    programs: kernels.map((k) => k.program),
    weights,
    inputBuffer: plan.inputBuffer,
    outputBuffer: plan.outputBuffer,
    largestBufferBytes: plan.buffers.reduce((largest, b) => Math.max(largest, b.floats * 4), 0),
  };
}

/** All weights in the packed layouts, concatenated in program order (the runner's weights file). */
export function packWeights(graph: Graph, program: WgslProgram, weights: WeightMap): Float32Array {
  const packed = new Float32Array(program.weights.reduce((sum, w) => sum + w.floats, 0));
  const packingOf = weightPackings(graph);
  for (const w of program.weights) {
    let offset = w.offset;
    for (const key of w.parts ?? [w.key]) {
      const tensor = weights.get(key);
      if (!tensor) throw new Error(`internal: weight '${key}' was not bound`);
      const data = w.parts ? tensor.data : (packingOf(key)?.pack(tensor) ?? tensor.data);
      packed.set(data, offset);
      offset += data.length;
    }
  }
  return packed;
}
