// What a GPU backend produces from a graph, whatever its language: specialised kernels, the
// buffers they read and write, and the order of dispatches. Runner generators and in-process
// runners consume this, so the plan is made once; only the rendering of kernels differs by
// target (a renderer is passed in).
import { planMemory, type PlannedKernel } from './memory-plan.js';
import { lowerModel, weightPackings } from './lower/index.js';
import { callerShape, modelInputs } from './model-io.js';
import { splitForKernels } from './split.js';
import type { Schedule } from './schedule.js';
import { f16Bits } from './f16.js';
import type { KernelProgram, StorageType } from './ir.js';
import { renderingBucket, sameRendering } from './same.js';
import { bindingBytes, programNeeds, type KernelNeeds, type TargetDescription } from './target.js';
import type { WeightMap } from '../backends/reference/executor.js';
import { formatShape, numel, type Graph, type Node } from '../ir/types.js';
import { commentSafe } from './comment-safe.js';

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
  /** The entry point's name: the program's, made unique across the model where the target needs it. */
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

export interface ModelProgram {
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

/** How a target writes kernel programs: the renderer's whole part in lowering a model. */
export interface KernelRenderer {
  /** The complete source of `program`'s kernel, whose entry point is named `entry`. */
  render(program: KernelProgram, entry: string): string;
  /**
   * Whether entry points must be unique across the model (CUDA: one module holds every kernel);
   * otherwise each program keeps its own name (WGSL: a module per kernel).
   */
  readonly uniqueEntries: boolean;
}

export interface ModelLowerOptions {
  /** The device every kernel must fit. */
  readonly target: TargetDescription;
  /** How activations and weights are stored (arithmetic is f32 either way); f32 by default. */
  readonly precision?: StorageType;
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
  /** Buffers of exactly each value's size, none shared (MemoryPlanOptions.exact): for sanitizer runs. */
  readonly exactBuffers?: boolean;
}

/** WebGPU's guaranteed maximum workgroups per grid dimension (CUDA's grid y and z have the same). */
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

/** The header line every renderer writes naming the IR nodes a kernel covers; kernels equal but for it are one. */
const coversLine = /^\/\/ Computes IR node\(s\):.*$/m;

/**
 * Graph -> ModelProgram in three steps: each node's kernel program, the memory plan
 * (memory-plan.ts), and the programs rendered by `renderer`; weights packed in the layouts
 * kernels read. Fusion, math and schedules were decided before this point.
 */
export function lowerModelProgram(given: Graph, options: ModelLowerOptions, renderer: KernelRenderer): ModelProgram {
  const precision = options.precision ?? 'f32';
  const target = options.target;
  const graph = splitForKernels(given);
  // 1. Kernel programs, one per node (and each image output's layout change).
  const kernels: PlannedKernel[] = lowerModel(graph, target, (node) => options.schedule?.(node), precision);
  // 2. Which buffer each binding uses.
  const plan = planMemory(graph, kernels, { exact: options.exactBuffers === true });
  // 3. Kernel sources. Identical kernels (same op, shapes and schedule) share one; their header
  // comment names the first node they were made for.
  const shaders: ShaderModuleSource[] = [];
  const shaderIndex = new Map<string, number>();
  const entries = new Map<string, number>();
  // Rendering is most of lowering's time and a model repeats its kernels (every block of a
  // stage), so a program equal to an earlier one but for the nodes it covers (its header line)
  // and where its buffers come from (which the renderer does not read) is not rendered again.
  const rendered = new Map<string, { readonly program: KernelProgram; readonly shader: number }[]>();
  const dispatches: Dispatch[] = kernels.map(({ program, node }, i) => {
    const bucket = renderingBucket(program);
    const alike = rendered.get(bucket) ?? [];
    let shader = alike.find((earlier) => sameRendering(earlier.program, program))?.shader;
    if (shader === undefined) {
      // A unique entry is the program's name, then name_2, name_3, ... for later kernels of it.
      const taken = renderer.uniqueEntries ? (entries.get(program.name) ?? 0) : 0;
      const entry = taken === 0 ? program.name : `${program.name}_${taken + 1}`;
      const code = renderer.render(program, entry);
      const key = code.replace(coversLine, '').replace(new RegExp(`\\b${entry}\\b`, 'g'), program.name);
      shader = shaderIndex.get(key);
      if (shader === undefined) {
        shader = shaders.length;
        shaderIndex.set(key, shader);
        shaders.push({ name: entry, code, needs: programNeeds(program) });
        entries.set(program.name, taken + 1);
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
export function packWeights(graph: Graph, program: ModelProgram, weights: WeightMap): PackedWeights {
  const values = packWeightValues(graph, program, weights);
  return program.precision === 'f16' ? Uint16Array.from(values, f16Bits) : values;
}

/** All weights in the packed layouts as f32 values, whatever the program stores. */
export function packWeightValues(graph: Graph, program: ModelProgram, weights: WeightMap): Float32Array<ArrayBuffer> {
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
