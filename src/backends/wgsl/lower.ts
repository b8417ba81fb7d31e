// Graph -> WgslProgram: each node's kernel program (src/kernel) rendered to WGSL, activation
// buffers reused once their last reader has run, weights packed in the layouts kernels read.
// Fusion and math were decided before this point; here they are only rendered and planned.
import type { BufferRef, KernelProgram } from '../../kernel/ir.js';
import { lowerNode, lowerOutputLayout, weightPackings } from '../../kernel/lower/index.js';
import type { Schedule } from '../../kernel/schedule.js';
import { programNeeds, webgpuDefaultTarget, type TargetDescription } from '../../kernel/target.js';
import type { WeightMap } from '../reference/executor.js';
import { formatShape, numel, type Graph, type Node } from '../../ir/types.js';
import { commentSafe } from './text.js';
import type { Dispatch, PackedWeight, ProgramBuffer, ShaderModuleSource, WgslProgram } from './program.js';
import { renderWgsl } from './render.js';

/**
 * Buffers for activations and scratch are reused once free: best fit, the smallest free
 * buffer that is large enough. Kernels index by their own shape constants, so a buffer may
 * be larger than the value it holds; later (smaller) stages reuse the first stage's buffers.
 */
class BufferPool {
  readonly buffers: ProgramBuffer[] = [];
  private readonly free: number[] = [];

  allocate(floats: number, role: ProgramBuffer['role'], weight?: string): number {
    if (role === 'activation' || role === 'scratch') {
      let best = -1;
      for (const [i, index] of this.free.entries()) {
        const size = this.buffers[index].floats;
        if (size >= floats && (best < 0 || size < this.buffers[this.free[best]].floats)) best = i;
      }
      if (best >= 0) return this.free.splice(best, 1)[0];
    }
    this.buffers.push({ floats, role, ...(weight ? { weight } : {}) });
    return this.buffers.length - 1;
  }

  release(index: number): void {
    this.free.push(index);
  }
}

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

export function lowerToWgsl(graph: Graph, options: LowerOptions = {}): WgslProgram {
  const target = options.target ?? webgpuDefaultTarget;
  const pool = new BufferPool();
  const shaders: ShaderModuleSource[] = [];
  const shaderIndex = new Map<string, number>();
  const dispatches: Dispatch[] = [];
  const programs: KernelProgram[] = [];
  const valueBuffer = new Map<number, number>();
  const weightBuffer = new Map<string, number>();
  const weights: PackedWeight[] = [];
  let weightOffset = 0;

  const inputNode = graph.nodes.find((n) => n.op === 'input')!;
  const outputNode = graph.nodes[graph.output];
  const lastUse = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) lastUse[input] = node.id;

  const weightIndex = (key: string, parts?: readonly string[]): number => {
    let index = weightBuffer.get(key);
    if (index === undefined) {
      const floats = (parts ?? [key]).reduce((sum, k) => sum + numel(graph.params.get(k)!.shape), 0);
      index = pool.allocate(floats, 'weight', key);
      weightBuffer.set(key, index);
      weights.push({ key, floats, offset: weightOffset, layout: '', ...(parts ? { parts } : {}) });
      weightOffset += floats;
    }
    return index;
  };
  const groupKey = (keys: readonly string[]) => `group(${keys.join(', ')})`;

  const inputBuffer = pool.allocate(numel(inputNode.type.shape), 'input');
  let outputBuffer = -1;

  const emit = (program: KernelProgram, resolve: (ref: BufferRef) => number): void => {
    const code = renderWgsl(program);
    // Identical kernels (same op, shapes and schedule) share one shader module; their header
    // comment names the first node they were made for.
    const key = code.replace(/^\/\/ Computes IR node\(s\):.*$/m, '');
    let shader = shaderIndex.get(key);
    if (shader === undefined) {
      shader = shaders.length;
      shaderIndex.set(key, shader);
      shaders.push({ name: program.name, code, needs: programNeeds(program) });
    }
    const written = program.buffers.find((b) => b.access === 'read_write')!;
    programs.push(program);
    dispatches.push({
      shader,
      workgroups: dispatchGrid(program.workgroups),
      buffers: program.buffers.map((b) => resolve(b.ref)),
      covers: commentSafe(program.covers),
      bytes: program.buffers.reduce((sum, b) => sum + b.length * 4, 0),
      writes: [resolve(written.ref), written.length],
    });
  };

  for (const node of graph.nodes) {
    const scratch = new Map<string, number>();
    const resolve = (ref: BufferRef): number => {
      switch (ref.kind) {
        case 'value':
          return valueBuffer.get(ref.id)!;
        case 'weight':
          return weightIndex(ref.key);
        case 'weight-group':
          return weightIndex(groupKey(ref.keys), ref.keys);
        case 'scratch': {
          let index = scratch.get(ref.name);
          if (index === undefined) {
            index = pool.allocate(ref.floats, 'scratch');
            scratch.set(ref.name, index);
          }
          return index;
        }
        case 'model-input':
          return inputBuffer;
        case 'model-output':
          return outputBuffer;
      }
    };
    const isOutput = node.id === graph.output && node.type.shape.length !== 4;
    const out = pool.allocate(numel(node.type.shape), isOutput ? 'output' : 'activation');
    valueBuffer.set(node.id, out);
    emit(lowerNode(graph, node, target, options.schedule?.(node)), resolve);
    for (const index of scratch.values()) pool.release(index);
    for (const input of new Set(node.inputs)) if (lastUse[input] === node.id && input !== graph.output) pool.release(valueBuffer.get(input)!);
    if (isOutput) outputBuffer = out;
  }

  if (outputNode.type.shape.length === 4) {
    outputBuffer = pool.allocate(numel(outputNode.type.shape), 'output');
    emit(lowerOutputLayout(graph, target), (ref) => (ref.kind === 'model-output' ? outputBuffer : valueBuffer.get(outputNode.id)!));
  }

  const packingOf = weightPackings(graph);
  return {
    model: graph.name,
    inputShape: inputNode.type.shape,
    outputShape: outputNode.type.shape,
    shaders,
    buffers: pool.buffers,
    dispatches,
    programs,
    weights: weights.map((w) => ({
      ...w,
      layout: w.parts ? `concatenation of ${w.parts.join(', ')}` : (packingOf(w.key)?.layout ?? `${formatShape(graph.params.get(w.key)!.shape)} as stored`),
    })),
    inputBuffer,
    outputBuffer,
    largestBufferBytes: pool.buffers.reduce((largest, b) => Math.max(largest, b.floats * 4), 0),
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
