// Graph -> WgslProgram in three steps: each node's kernel program (src/kernel), the memory plan
// (src/kernel/memory-plan.ts), and the programs rendered to WGSL; weights packed in the
// layouts kernels read. Fusion, math and schedules were decided before this point.
import { planMemory, type PlannedKernel } from '../../kernel/memory-plan.js';
import { lowerModel, weightPackings } from '../../kernel/lower/index.js';
import { callerShape, modelInputs } from '../../kernel/model-io.js';
import { splitForKernels } from '../../kernel/split.js';
import type { Schedule } from '../../kernel/schedule.js';
import { f16Bits } from '../../kernel/f16.js';
import type { KernelProgram, StorageType } from '../../kernel/ir.js';
import { renderingBucket, sameRendering } from '../../kernel/same.js';
import { bindingBytes, portableTarget, programNeeds, type TargetDescription } from '../../kernel/target.js';
import type { WeightMap } from '../reference/executor.js';
import { formatShape, numel, type Graph, type Node } from '../../ir/types.js';
import { commentSafe } from './text.js';
import type { Dispatch, PackedWeight, ProgramBuffer, ShaderModuleSource, WgslProgram } from './program.js';
import { renderWgsl } from './render.js';

export interface LowerOptions {
  /** The device every kernel must fit; by default WebGPU's default limits, so the runner is portable. */
  readonly target?: TargetDescription;
  /** How activations and weights are stored (arithmetic is f32 either way); f32 by default. */
  readonly precision?: StorageType;
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

/** The visible patches a graph's regions under patch mask `mask` were compacted for, if any. */
function compactedFor(graph: Graph, mask: number): number | undefined {
  const visible = graph.nodes.find((n) => n.op === 'visible_patches' && graph.nodes[n.inputs[0]].inputs[0] === mask);
  return visible?.attrs.count as number | undefined;
}

export function lowerToWgsl(given: Graph, options: LowerOptions = {}): WgslProgram {
  const precision = options.precision ?? 'f32';
  const target = options.target ?? portableTarget(precision);
  const graph = splitForKernels(given);
  // 1. Kernel programs, one per node (and each image output's layout change).
  const kernels: PlannedKernel[] = lowerModel(graph, target, (node) => options.schedule?.(node), precision);
  // 2. Which buffer each binding uses.
  const plan = planMemory(graph, kernels);
  // 3. WGSL. Identical kernels (same op, shapes and schedule) share one shader module; their
  // header comment names the first node they were made for.
  const shaders: ShaderModuleSource[] = [];
  const shaderIndex = new Map<string, number>();
  // Rendering is most of lowering's time and a model repeats its kernels (every block of a
  // stage), so a program equal to an earlier one but for the nodes it covers (its header line)
  // and where its buffers come from (which the renderer does not read) is not rendered again.
  const rendered = new Map<string, { readonly program: KernelProgram; readonly shader: number }[]>();
  const dispatches: Dispatch[] = kernels.map(({ program, node }, i) => {
    const bucket = renderingBucket(program);
    const alike = rendered.get(bucket) ?? [];
    let shader = alike.find((earlier) => sameRendering(earlier.program, program))?.shader;
    if (shader === undefined) {
      const code = renderWgsl(program);
      const key = code.replace(/^\/\/ Computes IR node\(s\):.*$/m, '');
      shader = shaderIndex.get(key);
      if (shader === undefined) {
        shader = shaders.length;
        shaderIndex.set(key, shader);
        shaders.push({ name: program.name, code, needs: programNeeds(program) });
      }
      rendered.set(bucket, [...alike, { program, shader }]);
    }
    // What it computes: its value's buffer, not partial sums written beside it.
    const written = program.buffers.findIndex((b) => b.access === 'read_write' && b.ref.kind !== 'partials');
    return {
      shader,
      workgroups: dispatchGrid(program.workgroups),
      buffers: plan.bindings[i],
      covers: commentSafe(program.covers),
      ...(node !== undefined && graph.nodes[node].type.compact !== undefined ? { sparse: true as const } : {}),
      bytes: program.buffers.reduce((sum, b) => sum + bindingBytes(b), 0),
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
  // The caller's inputs and outputs stay f32; everything else is stored as `precision`.
  const buffers: ProgramBuffer[] = plan.buffers.map(({ floats, role, weight }) => ({
    floats,
    role,
    // Scratch (partial sums) stays f32, as the kernels declare it.
    dtype: role === 'input' || role === 'output' || role === 'scratch' ? 'f32' : precision,
    ...(weight ? { weight } : {}),
  }));
  // Every binding must see its buffer's storage type; a mismatch would reinterpret bytes.
  kernels.forEach(({ program }, i) =>
    program.buffers.forEach((decl, binding) => {
      const planned = buffers[plan.bindings[i][binding]];
      if (decl.dtype !== planned.dtype) throw new Error(`internal: ${program.name} binds ${decl.name} as ${decl.dtype}, but its buffer (${planned.role}) stores ${planned.dtype}`);
    }),
  );
  const inputs = modelInputs(graph).map(({ name, node }, i) => {
    const keeps = compactedFor(graph, node.id);
    return { name, shape: callerShape(node), buffer: plan.inputs[i].buffer, ...(keeps !== undefined ? { keeps } : {}) };
  });
  const outputs = graph.outputs.map(({ name, id }, i) => ({ name, shape: graph.nodes[id].type.shape, buffer: plan.outputs[i].buffer }));
  return {
    model: graph.name,
    precision,
    inputShape: inputs[0].shape,
    outputShape: outputs[0].shape,
    inputs,
    outputs,
    shaders,
    buffers,
    dispatches,
    programs: kernels.map((k) => k.program),
    weights,
    inputBuffer: plan.inputBuffer,
    outputBuffer: plan.outputBuffer,
    largestBufferBytes: buffers.reduce((largest, b) => Math.max(largest, bufferBytes(b)), 0),
  };
}

/** Bytes of a planned buffer: its values at its storage type's size. */
export function bufferBytes(buffer: ProgramBuffer): number {
  return buffer.floats * (buffer.dtype === 'f16' ? 2 : 4);
}

/** The runner's weights file: f32 values, or f16 bit patterns for an f16 program. */
export type PackedWeights = Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>;

/** All weights in the packed layouts, concatenated in program order, stored as the program stores them. */
export function packWeights(graph: Graph, program: WgslProgram, weights: WeightMap): PackedWeights {
  const values = packWeightValues(graph, program, weights);
  return program.precision === 'f16' ? Uint16Array.from(values, f16Bits) : values;
}

/** All weights in the packed layouts as f32 values, whatever the program stores. */
export function packWeightValues(graph: Graph, program: WgslProgram, weights: WeightMap): Float32Array<ArrayBuffer> {
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
